//! At-least-once consumption with many records in flight.
//!
//! Each record is handed to a handler task; its offset is stored (and later committed) only
//! after the handler reports the record's effect durable, in partition order
//! (see [`OffsetTracker`]). A crash at any moment therefore re-reads, never skips.
//!
//! Records finish out of order, but what a stage writes keeps its partition's read order: each
//! handler gets the record's [`Turn`], and writes its output only in its turn
//! ([`crate::send_in_turn`]), so that one portal's events reach the next topic in the order they
//! were published, whatever order the handlers finish in.
//!
//! A consumer whose handlers hold records until they are due (the retry tiers,
//! [`crate::KafkaConfig::holding_consumer`]) reads each partition from a queue of its own, so
//! that it still serves its group's rebalances while it holds its limit of records
//! ([`crate::partition_queues`]).
//!
//! When a rebalance takes a partition away, the work on its records stops before the group can
//! give it to another member ([`crate::tenure`]), so two consumers never work through the same
//! records at once.
//!
//! No record can stop its partition: a handler that finds a record can never be handled returns
//! [`Handled::SetAside`], and a handler that panics on one is caught; either way the record goes to
//! the stage's dead-letter topic ([`DeadLetters`]) and the offset moves on. Only the end of a
//! tenure (revocation or shutdown) holds an offset back ([`Handled::Abandoned`]).

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use synap_runtime::chain::{Link, Tail};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::KafkaError;
use crate::client::Consumer;
use crate::dead_letter::{DeadLetters, SetAside};
use crate::offsets::OffsetTracker;
use crate::partition_queues::PartitionQueues;
use crate::sequence::{Arrival, Sequence};
use crate::tenure::Tenure;

/// What a handler did with its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The record's effect is durable: its offset may be committed.
    Done,
    /// The record can never be handled: it goes to the dead-letter topic with this reason, then
    /// its offset may be committed.
    SetAside(SetAside),
    /// The handler gave up because the record's tenure ended ([`Turn::tenure`]: the process is
    /// shutting down or the partition was revoked): the record will be read again, here or by
    /// the partition's new owner. Never returned otherwise: it holds the partition's offset back.
    Abandoned,
}

/// A record's turn to write its output, after every record read before it from its partition
/// (in the same tenure) has written theirs or given up. Dropping the turn passes it on, but never
/// before the records ahead are done ([`Link`]).
pub struct Turn {
    link: Link,
    tenure: CancellationToken,
}

impl Turn {
    /// Waits until every record read before this one from its partition has had its turn.
    pub async fn wait(&mut self) {
        self.link.wait().await;
    }

    /// A turn with nothing before it, for writes outside a consumer. Its tenure never ends.
    pub fn first() -> Self {
        Self { link: Link::alone(), tenure: CancellationToken::new() }
    }

    /// Cancelled when this consumer's tenure of the record's partition ends: the partition was
    /// revoked, or the process is shutting down. From then on the handler starts no new work for
    /// the record (no request, no wait) and returns [`Handled::Abandoned`]; the partition's new
    /// owner reads it again.
    pub fn tenure(&self) -> &CancellationToken {
        &self.tenure
    }
}

/// The end of each partition's chain of turns, one chain per tenure.
#[derive(Default)]
struct Turns {
    tails: HashMap<(String, i32), (u64, Tail)>,
}

impl Turns {
    /// The next turn of `partition`: after the last one handed out in the same tenure (a new
    /// tenure starts a chain of its own: the records of the one before are abandoned). Call in
    /// read order.
    fn next(&mut self, topic: &str, partition: i32, tenure: &Tenure) -> Turn {
        let key = (topic.to_owned(), partition);
        let before = self.tails.remove(&key).filter(|(generation, _)| *generation == tenure.generation);
        let (link, tail) = Link::after(before.map(|(_, tail)| tail));
        self.tails.insert(key, (tenure.generation, tail));
        Turn { link, tenure: tenure.token.clone() }
    }
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
    F: Fn(Arc<OwnedMessage>, Turn) -> Fut,
    Fut: Future<Output = Handled> + Send + 'static,
{
    // A holding consumer (the retry tiers, whose handlers hold records until they are due)
    // reads each partition from a queue of its own, so that it still serves its group's
    // rebalances while it holds `max_in_flight` records ([`crate::partition_queues`]).
    let per_partition = consumer.context().per_partition;
    let consumer = Arc::new(consumer);
    let mut partitions = if per_partition {
        PartitionQueues::split_all(&consumer, topics).await
    } else {
        PartitionQueues::default()
    };
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(KafkaError::Consume)?;
    tracing::info!(topics = ?names, dead_letters = dead_letters.topic(), "consuming");

    let mut intake = Intake {
        consumer: consumer.clone(),
        tracker: OffsetTracker::default(),
        turns: Turns::default(),
        sequence: Sequence::default(),
        tasks: JoinSet::new(),
        dead_letters,
        shutdown: shutdown.clone(),
        handler,
    };
    loop {
        let room = intake.tasks.len() < max_in_flight;
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(joined) = intake.tasks.join_next() => {
                intake.finish(joined.expect("record tasks catch their panics"));
            }
            // Split partitions' queues are read only while there is room; the consumer's own
            // queue then carries only events (and records of a partition not split yet, taken
            // even over the limit, which splits it), and is polled all the time: that is what
            // serves a rebalance.
            received = consumer.recv(), if room || per_partition => match received {
                Ok(message) => {
                    let message = message.detach();
                    if per_partition {
                        partitions.split_for(&consumer, &message);
                    }
                    intake.take(message);
                }
                Err(e) => consume_error(e).await,
            },
            received = partitions.next(), if room && per_partition => match received {
                Ok(message) => intake.take(message),
                Err(e) => consume_error(e).await,
            },
        }
    }

    tracing::info!(in_flight = intake.tasks.len(), "draining handlers");
    while let Some(joined) = intake.tasks.join_next().await {
        intake.finish(joined.expect("record tasks catch their panics"));
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored since the last commit, or no assignment: both harmless.
        tracing::debug!(error = %e, "final commit");
    }
    Ok(())
}

/// Broker unavailable, rebalance in progress and the like: librdkafka recovers by itself, so
/// wait a little instead of spinning.
async fn consume_error(error: rdkafka::error::KafkaError) {
    tracing::warn!(%error, "Kafka consume error");
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// What a consumer does with each record it reads, and with each handler that finishes.
struct Intake<F> {
    consumer: Arc<Consumer>,
    tracker: OffsetTracker,
    turns: Turns,
    sequence: Sequence,
    tasks: JoinSet<(Read, Handled)>,
    dead_letters: DeadLetters,
    shutdown: CancellationToken,
    handler: F,
}

impl<F, Fut> Intake<F>
where
    F: Fn(Arc<OwnedMessage>, Turn) -> Fut,
    Fut: Future<Output = Handled> + Send + 'static,
{
    /// Checks the record's place in its partition ([`Sequence`]) and starts its handler.
    fn take(&mut self, message: OwnedMessage) {
        let message = Arc::new(message);
        let (topic, partition, offset) = (message.topic().to_owned(), message.partition(), message.offset());
        let consumer = &self.consumer;
        let tenure = consumer.context().tenures.current(&topic, partition, offset, &self.shutdown);
        if self.sequence.is_new(&topic, partition, tenure.generation) {
            let committed = committed_offset(consumer, &topic, partition);
            self.sequence.start(&topic, partition, tenure.generation, committed);
        }
        match self.sequence.arrive(&topic, partition, offset) {
            Arrival::Next => {}
            Arrival::Repeat => return,
            Arrival::Seek { to } => {
                tracing::warn!(
                    topic,
                    partition,
                    to,
                    read = offset,
                    "the broker skipped records: reading them again"
                );
                synap_telemetry::metrics().consumer_gaps(&topic).inc();
                if let Err(e) = consumer.seek(&topic, partition, Offset::Offset(to), Duration::ZERO) {
                    // The partition was revoked meanwhile: its next owner reads from the
                    // committed offset, which has not passed the gap.
                    tracing::debug!(topic, partition, error = %e, "seek back");
                }
                return;
            }
        }
        self.tracker.begin(&topic, partition, tenure.generation, offset);
        let turn = self.turns.next(&topic, partition, &tenure);
        // The handler may do work before its future starts (the sender takes the record's place
        // in line there): a panic in either part is caught.
        // Boxed, the handler's future (kilobytes: the sender's holds a whole HTTP exchange) is
        // written once; inline, the runtime would copy it into the task and copy the task's
        // state out again at its end, for every record.
        let work =
            std::panic::catch_unwind(AssertUnwindSafe(|| Box::pin((self.handler)(message.clone(), turn))));
        let (dead_letters, token) = (self.dead_letters.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            let handled = match work {
                Ok(work) => AssertUnwindSafe(work).catch_unwind().await,
                Err(panic) => Err(panic),
            }
            .unwrap_or_else(|panic| Handled::SetAside(SetAside::panic(panic.as_ref())));
            let handled = match handled {
                Handled::SetAside(why) => Box::pin(dead_letters.message(&message, &why, &token)).await,
                other => other,
            };
            (Read { topic, partition, offset, tenure }, handled)
        });
    }

    fn finish(&mut self, (read, handled): (Read, Handled)) {
        finish(&self.consumer, &mut self.tracker, read, handled);
    }
}

/// The partition's committed offset, where a new tenure starts reading: what the first record
/// read is checked against ([`Sequence`]). Asked of the group coordinator once per tenure; `None`
/// when there is none yet or the coordinator does not answer within half a second (the check then starts
/// from the first record).
fn committed_offset(consumer: &Consumer, topic: &str, partition: i32) -> Option<i64> {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    // Short: this holds up the partition's reading, and the check is only a safeguard.
    let committed = consumer.committed_offsets(list, Duration::from_millis(500)).ok()?;
    match committed.find_partition(topic, partition)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// A record read, and the tenure it was read in.
struct Read {
    topic: String,
    partition: i32,
    offset: i64,
    tenure: Tenure,
}

fn finish(consumer: &Consumer, tracker: &mut OffsetTracker, read: Read, handled: Handled) {
    let Read { topic, partition, offset, tenure } = read;
    let topic = topic.as_str();
    if handled == Handled::Abandoned {
        if !tenure.token.is_cancelled() {
            // A handler bug: the partition's offset cannot pass this record until it is revoked.
            tracing::error!(topic, partition, offset, "record abandoned while its partition is still owned");
        }
        tracker.abandon(topic, partition, tenure.generation, offset);
        return;
    }
    let Some(next) = tracker.complete(topic, partition, tenure.generation, offset) else { return };
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
mod turn_tests {
    use std::time::Duration;

    use super::*;

    /// Handlers that finish in reverse order still write in read order, and one that gives up
    /// early (dropping its turn unwaited) does not let the next overtake the one before it.
    #[tokio::test(start_paused = true)]
    async fn output_keeps_the_read_order_whatever_order_handlers_finish_in() {
        let mut turns = Turns::default();
        let tenure = Tenure { generation: 0, token: CancellationToken::new() };
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in 0..6u64 {
            let mut turn = turns.next("t", 0, &tenure);
            let written = written.clone();
            tasks.push(tokio::spawn(async move {
                // Later records are ready sooner.
                tokio::time::sleep(Duration::from_millis(100 - n * 10)).await;
                if n == 3 {
                    return; // set aside: the turn is dropped unwaited
                }
                turn.wait().await;
                written.lock().unwrap().push(n);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        tokio::task::yield_now().await;
        assert_eq!(*written.lock().unwrap(), [0, 1, 2, 4, 5]);
        // Another partition has its own chain.
        let mut other = turns.next("t", 1, &tenure);
        tokio::time::timeout(Duration::from_millis(1), other.wait()).await.expect("nothing before it");
        // So has a new tenure of the same partition: the one before was abandoned.
        let _held = turns.next("t", 0, &tenure);
        let next_tenure = Tenure { generation: 1, token: CancellationToken::new() };
        let mut fresh = turns.next("t", 0, &next_tenure);
        tokio::time::timeout(Duration::from_millis(1), fresh.wait()).await.expect("a new chain");
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

    /// librdkafka's in-process broker with `topics` (name, partitions), and settings for it.
    fn mock_cluster(
        topics: &[(&str, i32)],
    ) -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, KafkaConfig) {
        let cluster = MockCluster::new(1).unwrap();
        for (topic, partitions) in topics {
            cluster.create_topic(topic, *partitions, 1).unwrap();
        }
        let config = KafkaConfig {
            bootstrap_servers: cluster.bootstrap_servers(),
            topic_prefix: "t.".into(),
            ..Default::default()
        };
        (cluster, config)
    }

    /// A record whose handler panics and one it sets aside both land in the dead-letter topic with
    /// their reason and source, and the partition's offset moves past them: the records after
    /// them are handled and everything is committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_or_a_set_aside_record_never_stops_the_partition() {
        never_stopped_by_a_panic_or_a_set_aside(|config| config.consumer("g").unwrap()).await;
    }

    /// The same for a consumer that reads each partition from a queue of its own (the long retry
    /// tiers): its records go through the same intake.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nor_does_it_stop_a_holding_consumers_partition() {
        never_stopped_by_a_panic_or_a_set_aside(|config| config.holding_consumer("g", 1).unwrap()).await;
    }

    async fn never_stopped_by_a_panic_or_a_set_aside(consumer: impl FnOnce(&KafkaConfig) -> Consumer) {
        let (_cluster, config) = mock_cluster(&[("in", 1), ("in.dlq", 1)]);
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
        let consumer = consumer(&config);
        let letters = DeadLetters::new(producer.clone(), "in.dlq".into(), "test");
        let shutdown_token = shutdown.clone();
        let running = tokio::spawn(async move {
            let topics = ["in".to_owned()];
            run_consumer(consumer, &topics, 8, shutdown_token, letters, move |m, _turn| {
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
            let offset = committed(&config, "t.g", "in", 1)[0];
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

    /// A holding consumer reads every partition from its own queue, never holds more than its
    /// limit, keeps each partition's order, and commits what it finished: 30 records over three
    /// partitions, at most 2 in flight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_holding_consumer_reads_every_partition_within_its_limit_and_in_order() {
        let (_cluster, config) = mock_cluster(&[("held", 3), ("held.dlq", 1)]);
        let producer: FutureProducer = config.producer("test").unwrap();
        produce_round_robin(&producer, "held", 3, 0..30).await;
        let most = hold_and_check(&config, "held", 3, 30, |_| async {}).await;
        assert!(most <= 2, "never over the limit: {most}");
    }

    /// A partition the consumer did not know when it started (the topic created since: a
    /// partition added to a tier topic is the same) delivers its first record through the
    /// consumer's own queue and is split off then: the records after it keep to the limit (what
    /// came through the consumer's queue would be taken even over it), nothing is lost, and each
    /// partition's order holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_holding_consumer_splits_off_a_partition_it_did_not_know_at_start() {
        let (cluster, mut config) = mock_cluster(&[("late.dlq", 1)]);
        // The consumer looks for its topic again within a second, not five minutes.
        config.consumer.insert("topic.metadata.refresh.interval.ms".into(), "200".into());
        let producer: FutureProducer = config.producer("test").unwrap();
        let (cluster_ref, producer_ref) = (&cluster, &producer);
        let appear = |finished: Arc<std::sync::atomic::AtomicUsize>| async move {
            let (cluster, producer) = (cluster_ref, producer_ref);
            tokio::time::sleep(Duration::from_secs(1)).await;
            // Fails if the consumer's start had created it: then nothing was left to split later.
            cluster.create_topic("late", 2, 1).unwrap();
            // One record per partition first, which splits it once handed over; then a burst.
            produce_round_robin(producer, "late", 2, 0..2).await;
            let deadline = Instant::now() + Duration::from_secs(30);
            while finished.load(std::sync::atomic::Ordering::SeqCst) < 2 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            produce_round_robin(producer, "late", 2, 2..20).await;
        };
        let most = hold_and_check(&config, "late", 2, 20, appear).await;
        assert!(most <= 2, "the burst came through the partitions' own queues, within the limit: {most}");
    }

    async fn produce_round_robin(
        producer: &FutureProducer,
        topic: &str,
        partitions: i32,
        records: std::ops::Range<i32>,
    ) {
        for n in records {
            let payload = n.to_string();
            let record = rdkafka::producer::FutureRecord::to(topic)
                .key("k")
                .payload(&payload)
                .partition(n % partitions);
            producer.send_result(record).unwrap().await.unwrap().unwrap();
        }
    }

    /// Runs a holding consumer of `topic` (group `held`, at most 2 records in flight, each held
    /// 20 ms) while `meanwhile` runs (given the count of records finished), until `records` are
    /// handled; then checks each was handed
    /// over once and in its partition's order, and the commits. Returns the most in flight.
    async fn hold_and_check<M: Future<Output = ()>>(
        config: &KafkaConfig,
        topic: &str,
        partitions: i32,
        records: usize,
        meanwhile: impl FnOnce(Arc<std::sync::atomic::AtomicUsize>) -> M,
    ) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let seen = Arc::new(std::sync::Mutex::new(Vec::<(i32, i64)>::new()));
        let (in_flight, most, finished) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let shutdown = CancellationToken::new();
        let consumer = config.holding_consumer("held", partitions).unwrap();
        let letters = DeadLetters::new(config.producer("letters").unwrap(), format!("{topic}.dlq"), "test");
        let (seen_by, now, peak, token) = (seen.clone(), in_flight.clone(), most.clone(), shutdown.clone());
        let done_by = finished.clone();
        let topics = [topic.to_owned()];
        let running = tokio::spawn(async move {
            run_consumer(consumer, &topics, 2, token, letters, move |m, _turn| {
                // Handed over in read order (the handlers, two at a time, finish in any order).
                seen_by.lock().unwrap().push((m.partition(), m.offset()));
                peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let (done, now) = (done_by.clone(), now.clone());
                async move {
                    // Held a while, as a retry tier holds its records.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                    Handled::Done
                }
            })
            .await
        });
        meanwhile(finished.clone()).await;

        let deadline = Instant::now() + Duration::from_secs(30);
        while finished.load(Ordering::SeqCst) < records && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        running.await.unwrap().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), records, "every record handled once: {seen:?}");
        let per_partition = (records as i64) / i64::from(partitions);
        for partition in 0..partitions {
            let offsets: Vec<i64> = seen.iter().filter(|(p, _)| *p == partition).map(|(_, o)| *o).collect();
            assert_eq!(offsets, (0..per_partition).collect::<Vec<_>>(), "partition {partition} in order");
        }
        for (partition, offset) in committed(config, "t.held", topic, partitions).into_iter().enumerate() {
            assert_eq!(offset, Some(Offset::Offset(per_partition)), "partition {partition} committed");
        }
        most.load(Ordering::SeqCst)
    }

    /// What `group` has committed on each of `topic`'s first `partitions` partitions.
    fn committed(config: &KafkaConfig, group: &str, topic: &str, partitions: i32) -> Vec<Option<Offset>> {
        let probe: BaseConsumer = {
            let mut c = config.admin_config();
            c.set("group.id", group);
            c.create().unwrap()
        };
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = probe.committed_offsets(list, Duration::from_secs(5)).unwrap();
        (0..partitions).map(|p| committed.find_partition(topic, p).map(|e| e.offset())).collect()
    }
}
