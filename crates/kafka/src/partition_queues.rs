//! Each partition's records in a queue of their own, for consumers that hold records until due.
//!
//! librdkafka serves a rebalance only while the consumer's queue is polled, and by default that
//! queue carries the records too. A consumer holding its limit of records in flight stops
//! polling, so a retry tier holding its limit of retries due in hours (every tier, during a long
//! outage) held up its group's rebalance (a replica joining, a rolling deployment) until
//! `max.poll.interval.ms` ran out: five minutes in which no member read the tier.
//!
//! Split off, each partition's records go to their own queue
//! (`rd_kafka_queue_get_partition`, forwarded nowhere), read only while there is room; the
//! consumer's queue then carries only events, and is polled all the time. Nothing is paused or
//! fetched again: the records wait in librdkafka's queue, as before, bounded by the read-ahead,
//! which applies to each partition's queue ([`crate::KafkaConfig::holding_consumer`]). Pausing and
//! resuming instead was tried: a resume fetches again from inside a record batch, which tansu
//! answers with nothing until the partition's next write (docs/BENCHMARKS.md, seventh round).
//!
//! A partition stays split through rebalances (librdkafka keeps an application's forwarding).
//! One the consumer had not split (a partition added to the topic since it started) delivers its
//! first records through the consumer's queue; it is split then.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::{BoxStream, SelectAll};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message as _, OwnedMessage};

use crate::client::Consumer;

#[derive(Default)]
pub(crate) struct PartitionQueues {
    queues: SelectAll<BoxStream<'static, KafkaResult<OwnedMessage>>>,
    split: HashSet<(String, i32)>,
}

impl PartitionQueues {
    /// Splits every partition `topics` have now. Before subscribing: what librdkafka fetches
    /// for a partition before it is split lands in the consumer's queue.
    pub async fn split_all(consumer: &Arc<Consumer>, topics: &[String]) -> Self {
        let mut queues = Self::default();
        for topic in topics {
            let (reader, name) = (consumer.clone(), topic.clone());
            let partitions = tokio::task::spawn_blocking(move || {
                let metadata = reader.fetch_metadata(Some(&name), Duration::from_secs(10))?;
                Ok::<_, rdkafka::error::KafkaError>(
                    metadata.topics().first().map(|t| t.partitions().len()).unwrap_or_default(),
                )
            })
            .await
            .expect("the metadata request does not panic");
            match partitions {
                Ok(partitions) => {
                    for partition in 0..partitions as i32 {
                        queues.split(consumer, topic, partition);
                    }
                }
                // Each partition is split at its first record instead.
                Err(error) => tracing::warn!(topic, %error, "cannot list the topic's partitions"),
            }
        }
        queues
    }

    /// Splits the partition of a record that came through the consumer's queue, unless done.
    pub fn split_for(&mut self, consumer: &Arc<Consumer>, message: &OwnedMessage) {
        if !self.split.contains(&(message.topic().to_owned(), message.partition())) {
            self.split(consumer, message.topic(), message.partition());
        }
    }

    fn split(&mut self, consumer: &Arc<Consumer>, topic: &str, partition: i32) {
        let Some(queue) = consumer.split_partition_queue(topic, partition) else {
            tracing::warn!(
                topic,
                partition,
                "cannot split the partition's queue: read through the consumer's"
            );
            return;
        };
        self.split.insert((topic.to_owned(), partition));
        self.queues.push(
            futures::stream::unfold(queue, |queue| async move {
                let received = queue.recv().await.map(|m| m.detach());
                Some((received, queue))
            })
            .boxed(),
        );
    }

    /// The next record of any partition, from their queues in turn. Pending for ever when no
    /// partition is split.
    pub async fn next(&mut self) -> KafkaResult<OwnedMessage> {
        match self.queues.next().await {
            Some(received) => received,
            None => std::future::pending().await,
        }
    }
}
