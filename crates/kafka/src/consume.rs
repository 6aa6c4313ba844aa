//! At-least-once consumption with many records in flight.
//!
//! Each record is handed to a handler task; its offset is stored (and later committed) only
//! after the handler reports the record's effect durable, in partition order
//! (see [`OffsetTracker`]). A crash at any moment therefore re-reads, never skips.

use std::future::Future;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::KafkaError;
use crate::client::Consumer;
use crate::offsets::OffsetTracker;

/// What a handler did with its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The record's effect is durable: its offset may be committed.
    Done,
    /// The handler gave up because the process is shutting down: the record will be read again.
    Abandoned,
}

/// Consumes `topics` until `shutdown` is cancelled, running up to `max_in_flight` handlers at
/// once, then waits for the handlers in flight and commits what they finished.
pub async fn run_consumer<F, Fut>(
    consumer: Consumer,
    topics: &[String],
    max_in_flight: usize,
    shutdown: CancellationToken,
    handler: F,
) -> Result<(), KafkaError>
where
    F: Fn(OwnedMessage) -> Fut,
    Fut: Future<Output = Handled> + Send + 'static,
{
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(KafkaError::Consume)?;
    tracing::info!(topics = ?names, "consuming");

    let mut tracker = OffsetTracker::default();
    let mut tasks: JoinSet<(String, i32, i64, Handled)> = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(joined) = tasks.join_next() => {
                let (topic, partition, offset, handled) = joined.expect("record handler panicked");
                finish(&consumer, &mut tracker, &topic, partition, offset, handled);
            }
            received = consumer.recv(), if tasks.len() < max_in_flight => match received {
                Ok(message) => {
                    let message = message.detach();
                    let (topic, partition, offset) =
                        (message.topic().to_owned(), message.partition(), message.offset());
                    tracker.begin(&topic, partition, offset);
                    let work = handler(message);
                    tasks.spawn(async move { (topic, partition, offset, work.await) });
                }
                Err(e) => {
                    // Broker unavailable, rebalance in progress and the like: librdkafka
                    // recovers by itself, so wait a little instead of spinning.
                    tracing::warn!(error = %e, "Kafka consume error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }

    tracing::info!(in_flight = tasks.len(), "draining handlers");
    while let Some(joined) = tasks.join_next().await {
        let (topic, partition, offset, handled) = joined.expect("record handler panicked");
        finish(&consumer, &mut tracker, &topic, partition, offset, handled);
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored since the last commit, or no assignment: both harmless.
        tracing::debug!(error = %e, "final commit");
    }
    Ok(())
}

fn finish(
    consumer: &Consumer,
    tracker: &mut OffsetTracker,
    topic: &str,
    partition: i32,
    offset: i64,
    handled: Handled,
) {
    if handled == Handled::Abandoned {
        return;
    }
    let Some(next) = tracker.complete(topic, partition, offset) else { return };
    let mut list = TopicPartitionList::new();
    if list.add_partition_offset(topic, partition, Offset::Offset(next)).is_err() {
        return;
    }
    if let Err(e) = consumer.store_offsets(&list) {
        // The partition was revoked meanwhile; its new owner re-reads from the last commit.
        tracing::debug!(topic, partition, error = %e, "offset not stored");
    }
}
