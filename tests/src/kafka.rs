//! Talking to the broker as a platform service (producer) and as an operator (reading
//! dead letters, resetting a group).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "0")
        // One record per batch, as a platform service writing one event at a time does. The local
        // broker (tansu 0.6) answers a fetch that starts inside a batch from the batch after it;
        // the stages read such a gap again once a later record arrives (synap_kafka::sequence),
        // but a test's last records have none after them.
        .set("batch.num.messages", "1")
        .create()
        .expect("test producer")
}

/// Produces one record, as a platform service would.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
    content_type: Option<&str>,
) {
    let headers: Vec<(&str, &str)> = content_type.map(|ct| ("content-type", ct)).into_iter().collect();
    produce_with_headers(producer, topic, key, payload, &headers).await;
}

/// Produces one record with the given headers (e.g. a producer's `traceparent`).
pub async fn produce_with_headers(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
) {
    let headers = headers
        .iter()
        .fold(OwnedHeaders::new(), |h, (key, value)| h.insert(Header { key, value: Some(*value) }));
    producer
        .send(FutureRecord::to(topic).key(key).payload(payload).headers(headers), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("produce to the inbound topic");
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Reads `topic` from the beginning until `n` records arrived or `timeout` passed.
pub async fn read(bootstrap: &str, topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("test consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Ok(Ok(m)) => out.push(Record {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
        }
    }
    out
}

/// Moves `group`'s committed offsets on every partition of `topic` back to the start. The
/// group must have no live members.
pub fn rewind(bootstrap: &str, group: &str, topic: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("rewind consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut list = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        list.add_partition_offset(topic, partition.id(), Offset::Offset(0)).unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit rewound offsets");
}

/// Records of `topics` that `group` has not committed yet, over every partition: 0 once the
/// group has finished everything written so far.
pub fn lag(bootstrap: &str, group: &str, topics: &[String]) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("lag consumer");
    let timeout = Duration::from_secs(10);
    let mut list = TopicPartitionList::new();
    let mut ends = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout).expect("metadata");
        for partition in metadata.topics()[0].partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout).expect("watermarks");
            list.add_partition(topic, partition.id());
            ends.push((topic.clone(), partition.id(), low, high));
        }
    }
    let committed = consumer.committed_offsets(list, timeout).expect("committed offsets");
    ends.iter()
        .map(|(topic, partition, low, high)| {
            let at = match committed.find_partition(topic, *partition).map(|p| p.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => *low,
            };
            (high - at).max(0)
        })
        .sum()
}
