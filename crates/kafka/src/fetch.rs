//! Reading single records back by position: how resend and recover find an event body after
//! the fact, while the topic retains it.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::{KafkaConfig, KafkaError};

/// How long a read may bring nothing before it is taken to have started in the wrong place.
const QUIET: Duration = Duration::from_secs(2);

/// Reads records at given positions, outside any consumer group.
pub struct Fetcher {
    client: rdkafka::ClientConfig,
}

impl Fetcher {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let mut client = config.admin_config();
        client
            // Never joins the group (it only assigns) and never commits: the id is required only.
            .set("group.id", format!("{}fetcher", config.topic_prefix))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A position that is no longer retained must not silently turn into another record.
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", "10");
        for (key, value) in &config.consumer {
            if !key.starts_with("session.") && !key.starts_with("heartbeat.") {
                client.set(key, value);
            }
        }
        Ok(Self { client })
    }

    /// The payload of the record at `offset`; `None` when the topic no longer has it.
    /// Blocking: call it from a blocking task. Times out with an error rather than `None`: a
    /// slow broker must not pass for a record that is gone.
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, KafkaError> {
        let deadline = Instant::now() + timeout;
        // Some brokers (tansu among them) answer a fetch from the middle of a record batch with
        // the next batch; starting further back and reading forward finds the record anyway.
        let mut back = 0;
        loop {
            let start = (offset - back).max(0);
            match self.read_from(topic, partition, start, offset, deadline)? {
                Found::Record(payload) => return Ok(Some(payload)),
                Found::Gone => return Ok(None),
                // Even the partition's start is past it.
                Found::Skipped if start == 0 => return Ok(None),
                Found::Skipped if Instant::now() < deadline => back = (back * 2).max(1),
                Found::Skipped | Found::TimedOut => {
                    return Err(KafkaError::FetchTimeout { topic: topic.into(), partition, offset });
                }
            }
        }
    }

    /// Reads from `start` until the record at `offset` or one past it.
    fn read_from(
        &self,
        topic: &str,
        partition: i32,
        start: i64,
        offset: i64,
        deadline: Instant,
    ) -> Result<Found, KafkaError> {
        // A fresh consumer per read: a reassigned one can hand back records prefetched for its
        // previous position.
        let consumer: BaseConsumer =
            self.client.create().map_err(|source| KafkaError::Client { what: "fetcher", source })?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(start)).map_err(KafkaError::Consume)?;
        consumer.assign(&list).map_err(KafkaError::Consume)?;
        let mut first = true;
        let read_started = Instant::now();
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                // Nothing at all from a position in the middle of the partition's last batch is
                // another form of the quirk above: start further back.
                None if first && start > 0 && read_started.elapsed() > QUIET => return Ok(Found::Skipped),
                None => continue,
                Some(Ok(m)) if m.offset() < offset => first = false,
                Some(Ok(m)) if m.offset() == offset => {
                    return Ok(Found::Record(m.payload().unwrap_or_default().to_vec()));
                }
                // Past it on the first record: the read started too late. Past it after earlier
                // ones: the record is not there (compacted or deleted).
                Some(Ok(_)) => return Ok(if first { Found::Skipped } else { Found::Gone }),
                Some(Err(e))
                    if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::OffsetOutOfRange) =>
                {
                    return Ok(Found::Gone);
                }
                Some(Err(e)) => return Err(KafkaError::Consume(e)),
            }
        }
        Ok(Found::TimedOut)
    }
}

enum Found {
    Record(Vec<u8>),
    /// The first record read was past the wanted one.
    Skipped,
    Gone,
    TimedOut,
}
