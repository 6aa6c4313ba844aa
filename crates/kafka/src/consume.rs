//! At-least-once consumption with many records in flight.
//!
//! Each record is handed to a handler task; its offset is stored (and later committed) only
//! after the handler reports the record's effect durable, in partition order
//! (see [`OffsetTracker`]). A crash at any moment therefore re-reads, never skips.
//!
//! No record can stop its partition: a handler that finds a record can never be handled returns
//! [`Handled::SetAside`], and a handler that panics on one is caught; either way the record goes to
//! the stage's dead-letter topic ([`DeadLetters`]) and the offset moves on. Only shutdown holds an
//! offset back ([`Handled::Abandoned`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::KafkaError;
use crate::client::Consumer;
use crate::dead_letter::{DeadLetters, SetAside};
use crate::offsets::OffsetTracker;

/// What a handler did with its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The record's effect is durable: its offset may be committed.
    Done,
    /// The record can never be handled: it goes to the dead-letter topic with this reason, then
    /// its offset may be committed.
    SetAside(SetAside),
    /// The handler gave up because the process is shutting down: the record will be read again.
    /// Never returned otherwise: it holds the partition's offset back until the restart.
    Abandoned,
}

/// Consumes `topics` until `shutdown` is cancelled, running up to `max_in_flight` handlers at
/// once, then waits for the handlers in flight and commits what they finished. Records the
/// handler sets aside, or panics on, go to `dead_letters`.
pub async fn run_consumer<F, Fut>(
    consumer: Consumer,
    topics: &[String],
    max_in_flight: usize,
    shutdown: CancellationToken,
    dead_letters: DeadLetters,
    handler: F,
) -> Result<(), KafkaError>
where
    F: Fn(Arc<OwnedMessage>) -> Fut,
    Fut: Future<Output = Handled> + Send + 'static,
{
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(KafkaError::Consume)?;
    tracing::info!(topics = ?names, dead_letters = dead_letters.topic(), "consuming");

    let mut tracker = OffsetTracker::default();
    let mut tasks: JoinSet<(String, i32, i64, Handled)> = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(joined) = tasks.join_next() => {
                let (topic, partition, offset, handled) = joined.expect("record tasks catch their panics");
                finish(&consumer, &mut tracker, &shutdown, &topic, partition, offset, handled);
            }
            received = consumer.recv(), if tasks.len() < max_in_flight => match received {
                Ok(message) => {
                    let message = Arc::new(message.detach());
                    let (topic, partition, offset) =
                        (message.topic().to_owned(), message.partition(), message.offset());
                    tracker.begin(&topic, partition, offset);
                    // The handler may do work before its future starts (the sender takes the
                    // record's place in line there): a panic in either part is caught.
                    let work = std::panic::catch_unwind(AssertUnwindSafe(|| handler(message.clone())));
                    let (dead_letters, token) = (dead_letters.clone(), shutdown.clone());
                    tasks.spawn(async move {
                        let handled = match work {
                            Ok(work) => AssertUnwindSafe(work).catch_unwind().await,
                            Err(panic) => Err(panic),
                        }
                        .unwrap_or_else(|panic| Handled::SetAside(SetAside::panic(panic.as_ref())));
                        let handled = match handled {
                            Handled::SetAside(why) => dead_letters.message(&message, &why, &token).await,
                            other => other,
                        };
                        (topic, partition, offset, handled)
                    });
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
        let (topic, partition, offset, handled) = joined.expect("record tasks catch their panics");
        finish(&consumer, &mut tracker, &shutdown, &topic, partition, offset, handled);
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
    shutdown: &CancellationToken,
    topic: &str,
    partition: i32,
    offset: i64,
    handled: Handled,
) {
    if handled == Handled::Abandoned {
        if !shutdown.is_cancelled() {
            // A handler bug: the partition's offset cannot pass this record until the restart.
            tracing::error!(topic, partition, offset, "record abandoned outside shutdown");
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rdkafka::Message as _;
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::FutureProducer;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{KafkaConfig, Outgoing, headers, send_durably};

    /// A record whose handler panics and one it sets aside both land in the dead-letter topic with
    /// their reason and source, and the partition's offset moves past them: the records after
    /// them are handled and everything is committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_or_a_set_aside_record_never_stops_the_partition() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("in", 1, 1).unwrap();
        cluster.create_topic("in.dlq", 1, 1).unwrap();
        let config = KafkaConfig {
            bootstrap_servers: cluster.bootstrap_servers(),
            topic_prefix: "t.".into(),
            ..Default::default()
        };
        let producer: FutureProducer = config.producer("test").unwrap();
        let never = CancellationToken::new();
        for payload in ["ok-1", "boom", "ok-2", "bad", "ok-3"] {
            let record = Outgoing {
                topic: "in".into(),
                key: b"k".to_vec(),
                payload: payload.as_bytes().to_vec(),
                headers: rdkafka::message::OwnedHeaders::new(),
            };
            send_durably(&producer, &record, &never).await.unwrap();
        }

        let handled = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = handled.clone();
        let shutdown = CancellationToken::new();
        let consumer = config.consumer("g").unwrap();
        let letters = DeadLetters::new(producer.clone(), "in.dlq".into(), "test");
        let shutdown_token = shutdown.clone();
        let running = tokio::spawn(async move {
            let topics = ["in".to_owned()];
            run_consumer(consumer, &topics, 8, shutdown_token, letters, move |m| {
                let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                let seen = seen.clone();
                async move {
                    match payload.as_str() {
                        "boom" => panic!("a bug this record triggers"),
                        "bad" => Handled::SetAside(SetAside::new("bad_record", "the test refuses it")),
                        _ => {
                            seen.lock().unwrap().push(payload);
                            Handled::Done
                        }
                    }
                }
            })
            .await
        });

        // The dead letters, read as an operator would.
        let reader: BaseConsumer = {
            let mut c = config.admin_config();
            c.set("group.id", "reader").set("auto.offset.reset", "earliest");
            c.create().unwrap()
        };
        reader.subscribe(&["in.dlq"]).unwrap();
        let mut letters = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while letters.len() < 2 && Instant::now() < deadline {
            if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
                let header = |name| headers::get(m.headers(), name).unwrap_or_default().to_owned();
                letters.push((
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    header("synap-dlq-reason"),
                    header("synap-dlq-detail"),
                    header("synap-dlq-source"),
                    header("synap-dlq-stage"),
                ));
            }
        }
        letters.sort();
        assert_eq!(
            letters,
            [
                (
                    "bad".into(),
                    "bad_record".into(),
                    "the test refuses it".into(),
                    "in/0/3".into(),
                    "test".into()
                ),
                (
                    "boom".into(),
                    "handler_panic".into(),
                    "the handler panicked: a bug this record triggers".into(),
                    "in/0/1".into(),
                    "test".into()
                ),
            ]
        );

        // Everything after them was handled, and the committed offset passed them all.
        let committed = loop {
            let probe: BaseConsumer = {
                let mut c = config.admin_config();
                c.set("group.id", "t.g");
                c.create().unwrap()
            };
            let mut list = TopicPartitionList::new();
            list.add_partition("in", 0);
            let offset = probe
                .committed_offsets(list, Duration::from_secs(5))
                .unwrap()
                .find_partition("in", 0)
                .map(|p| p.offset());
            if offset == Some(Offset::Offset(5)) || Instant::now() > deadline {
                break offset;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        shutdown.cancel();
        running.await.unwrap().unwrap();
        assert_eq!(committed, Some(Offset::Offset(5)));
        let mut handled = handled.lock().unwrap().clone();
        handled.sort();
        assert_eq!(handled, ["ok-1", "ok-2", "ok-3"]);
    }
}
