//! The consumer every stage uses (`synap_kafka::run_consumer`), on the real broker, reading at the
//! end of a partition while two producers write to it at once, as two ingest replicas do to an
//! event topic, or a router and a sender handing back a retry do to the deliveries topic.
//!
//! tansu 0.6 sometimes hands a consumer at the end of a partition the record stored just after one
//! whose write is still under way (then the same record again) and never the one before: the
//! consumer would commit past a record it never saw. It reads such gaps again
//! (`synap_kafka::sequence`): every record is handled, and none twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use synap_kafka::{DeadLetters, Handled, KafkaConfig, Outgoing, send_durably};
use tokio_util::sync::CancellationToken;

const PER_PRODUCER: usize = 1_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_at_the_end_of_a_partition_misses_no_record_of_two_concurrent_producers() {
    let bootstrap = std::env::var("SYNAP_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let prefix = format!("g{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let config = KafkaConfig {
        bootstrap_servers: bootstrap.clone(),
        topic_prefix: prefix.clone(),
        // As deploy/tansu.toml: one record per batch.
        producer: [("batch.num.messages".to_owned(), "1".to_owned())].into(),
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

    let handled: Arc<Mutex<HashMap<Vec<u8>, usize>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let consuming = {
        let (handled, shutdown, topic) = (handled.clone(), shutdown.clone(), topic.clone());
        let letters = DeadLetters::new(config.producer("gaps-dlq").unwrap(), dlq, "test");
        let consumer = config.consumer("gaps").unwrap();
        tokio::spawn(async move {
            synap_kafka::run_consumer(consumer, &[topic], 256, shutdown, letters, move |m, _turn| {
                *handled.lock().unwrap().entry(m.payload().unwrap_or_default().to_vec()).or_default() += 1;
                async { Handled::Done }
            })
            .await
        })
    };
    // The consumer joins its group and reaches the (empty) end of the partition first.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let never = CancellationToken::new();
    let mut producers = Vec::new();
    for name in ["a", "b"] {
        let (producer, topic, never) = (config.producer(name).unwrap(), topic.clone(), never.clone());
        producers.push(tokio::spawn(async move {
            for i in 0..PER_PRODUCER {
                let record = Outgoing {
                    topic: topic.clone(),
                    key: b"one-partition".to_vec(),
                    payload: format!("{name}-{i}").into_bytes(),
                    headers: rdkafka::message::OwnedHeaders::new(),
                };
                send_durably(&producer, &record, &never).await.unwrap();
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    while handled.lock().unwrap().len() < 2 * PER_PRODUCER && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    consuming.await.unwrap().unwrap();

    let handled = handled.lock().unwrap();
    let missing: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|name| (0..PER_PRODUCER).map(move |i| format!("{name}-{i}")))
        .filter(|p| !handled.contains_key(p.as_bytes()))
        .collect();
    let twice = handled.values().filter(|n| **n > 1).count();
    let gaps = synap_telemetry::metrics().consumer_gaps(&topic).get();
    println!(
        "{} records handled, {twice} twice; gaps the broker left and the consumer read again: {gaps}",
        handled.len()
    );
    assert!(
        missing.is_empty(),
        "{} records never handled, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(twice, 0, "within one tenure a record is handled once");
}
