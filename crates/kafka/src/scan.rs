//! Reading a whole topic as it stands now: what `synap-admin redrive` does with a dead-letter
//! topic. Outside any consumer group, committing nothing.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::{KafkaConfig, KafkaError};

/// How long the broker may send nothing before the scan gives up on reaching the end.
const QUIET: Duration = Duration::from_secs(15);

/// Calls `each` with every record of `topic` up to each partition's end as of the call, in
/// offset order within a partition. Blocking: call it from a blocking task or a command.
/// Returns how many records were read.
pub fn scan(
    config: &KafkaConfig,
    topic: &str,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> Result<usize, KafkaError> {
    let mut client = config.admin_config();
    client
        .set("group.id", format!("{}scan", config.topic_prefix))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer =
        client.create().map_err(|source| KafkaError::Client { what: "scanner", source })?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(KafkaError::Consume)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaError::CreateTopic { topic: topic.to_owned(), reason: "no such topic".into() });
    }
    // The end of each partition now; records written during the scan are left for the next one.
    let mut remaining = Vec::new();
    let mut list = TopicPartitionList::new();
    for partition in partitions {
        let (low, high) =
            consumer.fetch_watermarks(topic, partition, timeout).map_err(KafkaError::Consume)?;
        if high > low {
            remaining.push((partition, high));
            list.add_partition_offset(topic, partition, Offset::Offset(low)).map_err(KafkaError::Consume)?;
        }
    }
    if remaining.is_empty() {
        return Ok(0);
    }
    consumer.assign(&list).map_err(KafkaError::Consume)?;
    let mut read = 0;
    let mut last_progress = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            None if last_progress.elapsed() > QUIET => {
                let (partition, _) = remaining[0];
                return Err(KafkaError::FetchTimeout { topic: topic.to_owned(), partition, offset: -1 });
            }
            None => {}
            Some(Err(e)) => return Err(KafkaError::Consume(e)),
            Some(Ok(message)) => {
                last_progress = Instant::now();
                let Some(index) = remaining.iter().position(|(p, _)| *p == message.partition()) else {
                    continue;
                };
                let end = remaining[index].1;
                if message.offset() < end {
                    each(&message);
                    read += 1;
                }
                if message.offset() + 1 >= end {
                    remaining.swap_remove(index);
                }
            }
        }
    }
    Ok(read)
}
