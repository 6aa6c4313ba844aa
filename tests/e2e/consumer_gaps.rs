//! The consumer every stage uses (`synap_kafka::run_consumer`), on the real broker, reading at the
//! end of a partition while two producers write to it at once, as two ingest replicas do to an
//! event topic, or a router and a sender handing back a retry do to the deliveries topic.
//!
//! tansu 0.6 sometimes hands a consumer at the end of a partition the record stored just after one
//! whose write is still under way (then the same record again) and never the one before, and
//! answers a fetch that starts inside a record batch from the batch after it: the consumer would
//! commit past records it never saw. It reads such gaps again (`synap_kafka::sequence`): every
//! record is handled, and none twice. The second half restarts the consumer from a committed
//! offset inside a batch (tansu then answers from the next batch, or with nothing until one is
//! written).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use rdkafka::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use synap_kafka::{DeadLetters, Handled, KafkaConfig, Outgoing, send_durably};
use tokio_util::sync::CancellationToken;

const PER_PRODUCER: usize = 1_500;

/// How many times each record (by payload) was handed to the handler.
type HandledCount = Arc<Mutex<HashMap<Vec<u8>, usize>>>;

/// Runs the stages' consumer in `group` until `want` distinct records are handled (or 3 minutes:
/// the producers may still be writing), counting them into `handled`.
async fn consume(
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    want: usize,
    handled: HandledCount,
) -> HandledCount {
    let shutdown = CancellationToken::new();
    let consuming = {
        let (handled, shutdown, topic) = (handled.clone(), shutdown.clone(), topic.to_owned());
        let letters = DeadLetters::new(config.producer("gaps-dlq").unwrap(), format!("{topic}.dlq"), "test");
        let consumer = config.consumer(group).unwrap();
        tokio::spawn(async move {
            synap_kafka::run_consumer(consumer, &[topic], 256, shutdown, letters, move |m, _turn| {
                *handled.lock().unwrap().entry(m.payload().unwrap_or_default().to_vec()).or_default() += 1;
                async { Handled::Done }
            })
            .await
        })
    };
    handled_until(handled, want, shutdown, consuming).await
}

async fn handled_until(
    handled: HandledCount,
    want: usize,
    shutdown: CancellationToken,
    consuming: tokio::task::JoinHandle<Result<(), synap_kafka::KafkaError>>,
) -> HandledCount {
    let deadline = Instant::now() + Duration::from_secs(180);
    while handled.lock().unwrap().len() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    consuming.await.unwrap().unwrap();
    handled
}

fn outgoing(topic: &str, payload: String) -> Outgoing {
    Outgoing {
        topic: topic.to_owned(),
        key: b"one-partition".to_vec(),
        payload: payload.into_bytes(),
        headers: rdkafka::message::OwnedHeaders::new(),
    }
}

/// The offset of the record with `payload`, read from `from` on (a single-record batch, so the
/// broker answers from there).
fn offset_of(bootstrap: &str, topic: &str, payload: &[u8], from: i64) -> i64 {
    let reader: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(from)).unwrap();
    reader.assign(&list).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200))
            && m.payload() == Some(payload)
        {
            return m.offset();
        }
    }
    panic!("{} not found in {topic}", String::from_utf8_lossy(payload));
}

fn assert_exactly_once(handled: &HandledCount, want: &[String]) {
    let handled = handled.lock().unwrap();
    let missing: Vec<&String> = want.iter().filter(|p| !handled.contains_key(p.as_bytes())).collect();
    let twice = handled.values().filter(|n| **n > 1).count();
    assert!(
        missing.is_empty(),
        "{} records never handled, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(twice, 0, "within one tenure a record is handled once");
    let extra: Vec<String> = handled
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .filter(|k| !want.contains(k))
        .collect();
    assert!(extra.is_empty(), "nothing before the committed offset is handled: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stages_consumer_misses_no_record_the_broker_skips() {
    let bootstrap = std::env::var("SYNAP_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let prefix = format!("g{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let config = KafkaConfig {
        bootstrap_servers: bootstrap.clone(),
        topic_prefix: prefix.clone(),
        ..KafkaConfig::default()
    };
    let (topic, dlq) = (format!("{prefix}in"), format!("{prefix}in.dlq"));
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let topics = [
        NewTopic::new(&topic, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&dlq, 1, TopicReplication::Fixed(1)),
    ];
    for created in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
        created.expect("topic created");
    }

    // 1. Two producers write while the consumer reads at the end of the partition.
    let handled: HandledCount = Arc::default();
    let reading = {
        let (config, topic, handled) = (config.clone(), topic.clone(), handled.clone());
        tokio::spawn(async move { consume(&config, "tip", &topic, 2 * PER_PRODUCER + 1, handled).await })
    };
    // The consumer joins its group and reaches the end of the partition first: it has handled
    // a first record, written alone. (A fixed sleep was not always long enough on a busy
    // machine: the consumer's first fetch then met the producers' first batch being written,
    // and with no committed offset there is nothing to tell a skipped first batch by.)
    let never = CancellationToken::new();
    send_durably(&config.producer("first").unwrap(), &outgoing(&topic, "w-0".into()), &never).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !handled.lock().unwrap().contains_key(b"w-0".as_slice()) {
        assert!(Instant::now() < deadline, "the consumer handled no first record within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut producers = Vec::new();
    for name in ["a", "b"] {
        let (producer, topic, never) = (config.producer(name).unwrap(), topic.clone(), never.clone());
        producers.push(tokio::spawn(async move {
            // Many writes in flight at once, as a busy stage has.
            futures::stream::iter(0..PER_PRODUCER)
                .for_each_concurrent(32, |i| {
                    let (producer, record, never) =
                        (&producer, outgoing(&topic, format!("{name}-{i}")), &never);
                    async move { send_durably(producer, &record, never).await.unwrap() }
                })
                .await;
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    let handled = reading.await.unwrap();
    let want: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|n| (0..PER_PRODUCER).map(move |i| format!("{n}-{i}")))
        .chain(["w-0".to_owned()])
        .collect();
    let gaps_at_the_end = synap_telemetry::metrics().consumer_gaps(&topic).get();
    assert_exactly_once(&handled, &want);

    // 2. A consumer starts from a committed offset inside a record batch: 100 records written at
    //    once travel in few batches; the group's offset is set 37 records into them.
    let batched = KafkaConfig { producer: Default::default(), ..config.clone() };
    let producer = batched.producer("burst").unwrap();
    let burst: Vec<_> = (0..100)
        .map(|i| {
            let (producer, record) = (producer.clone(), outgoing(&topic, format!("c-{i}")));
            async move { send_durably(&producer, &record, &CancellationToken::new()).await.unwrap() }
        })
        .collect();
    futures::future::join_all(burst).await;
    let start = offset_of(&bootstrap, &topic, b"c-0", (2 * PER_PRODUCER as i64 + 1 - 100).max(0));
    let committer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("{prefix}restart"))
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(&topic, 0, Offset::Offset(start + 37)).unwrap();
    committer.commit(&offsets, CommitMode::Sync).unwrap();
    drop(committer);
    let restarted = {
        let (config, topic) = (config.clone(), topic.clone());
        tokio::spawn(async move { consume(&config, "restart", &topic, 64, HandledCount::default()).await })
    };
    // tansu answers the fetch from inside the burst's last batch with nothing at all; the gap
    // shows once a later record arrives, as one does in a stream that goes on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    send_durably(&config.producer("later").unwrap(), &outgoing(&topic, "d-0".into()), &never).await.unwrap();
    let handled = restarted.await.unwrap();
    let want: Vec<String> = (37..100).map(|i| format!("c-{i}")).chain(["d-0".to_owned()]).collect();
    let gaps = synap_telemetry::metrics().consumer_gaps(&topic).get();
    println!(
        "gaps the broker left and the consumer read again: {gaps_at_the_end} at the end of the partition, {} at the restart",
        gaps - gaps_at_the_end
    );
    assert_exactly_once(&handled, &want);
}
