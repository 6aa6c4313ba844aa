//! Client settings. Any librdkafka property can be passed through (`properties` for every client,
//! `producer` / `consumer` for one kind), so TLS, SASL and tuning need no code change.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, ClientContext, Statistics};
use serde::{Deserialize, Serialize};

use crate::tenure::Tenures;

/// The consumer every stage uses.
pub type Consumer = StreamConsumer<StageContext>;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create the Kafka {what}: {source}")]
    Client { what: &'static str, source: rdkafka::error::KafkaError },
    #[error("Kafka consumer failed: {0}")]
    Consume(rdkafka::error::KafkaError),
    #[error("no answer from the broker reading {topic}/{partition}/{offset}")]
    FetchTimeout { topic: String, partition: i32, offset: i64 },
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("cannot read or set the settings of topic {topic}: {reason}")]
    TopicConfig { topic: String, reason: String },
    #[error("the Kafka producer failed for good ({0}); a restart brings a new one")]
    ProducerFailed(String),
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers.
    pub bootstrap_servers: String,
    /// Prepended to every topic and consumer group name, so that several deployments (or test
    /// runs) can share one cluster.
    pub topic_prefix: String,
    /// librdkafka properties for every client, e.g. `security.protocol = "SASL_SSL"`.
    pub properties: BTreeMap<String, String>,
    /// `sasl.username` for every client; kept apart from `properties` so that it can come from
    /// a Secret through `SYNAP_KAFKA__SASL_USERNAME`.
    pub sasl_username: String,
    /// `sasl.password` for every client, e.g. from `SYNAP_KAFKA__SASL_PASSWORD`.
    pub sasl_password: String,
    /// librdkafka properties for producers only; override the defaults below.
    pub producer: BTreeMap<String, String>,
    /// librdkafka properties for consumers only; override the defaults below.
    pub consumer: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic_prefix: "synap.".into(),
            properties: BTreeMap::new(),
            sasl_username: String::new(),
            sasl_password: String::new(),
            producer: BTreeMap::new(),
            consumer: BTreeMap::new(),
        }
    }
}

/// Passwords stay out of logs and error messages.
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            map.iter()
                .map(|(k, v)| {
                    let secret = k.contains("password") || k.contains("secret") || k.contains("key.pem");
                    (k.clone(), if secret { "<redacted>".into() } else { v.clone() })
                })
                .collect()
        };
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topic_prefix", &self.topic_prefix)
            .field("properties", &redacted(&self.properties))
            .field("sasl_username", &self.sasl_username)
            .field("producer", &redacted(&self.producer))
            .field("consumer", &redacted(&self.consumer))
            .finish_non_exhaustive()
    }
}

/// How long a consumer's fetch may wait for records (`fetch.wait.max.ms`) on the hot path.
const FETCH_WAIT_MS: u32 = 5;
/// The same for [`KafkaConfig::background_consumer`].
const BACKGROUND_FETCH_WAIT_MS: u32 = 250;
/// `queued.max.messages.kbytes` of the hot-path consumers ([`KafkaConfig::consumer`]) unless
/// `[kafka.consumer]` sets it.
const READ_AHEAD_KBYTES: &str = "16384";
/// The same for [`KafkaConfig::background_consumer`].
const BACKGROUND_READ_AHEAD_KBYTES: &str = "4096";
/// The same, in all, for a [`KafkaConfig::holding_consumer`], shared out among its partitions.
const HOLDING_READ_AHEAD_KBYTES: u64 = 512;
/// The least a [`KafkaConfig::holding_consumer`] reads ahead per partition.
const HOLDING_READ_AHEAD_FLOOR_KBYTES: u64 = 32;
/// The most a [`KafkaConfig::holding_consumer`]'s fetch brings at once, compressed.
const HOLDING_FETCH_MAX_BYTES: u64 = 64 << 10;
/// The most a fetch brings at once, compressed ([`fetch_max_bytes`]).
const FETCH_MAX_BYTES: u64 = 1 << 20;
/// `batch.size` of a [`KafkaConfig::holding_producer`] unless `[kafka.producer]` sets it.
const HOLDING_BATCH_BYTES: &str = "65536";

/// `fetch.max.bytes` of every consumer unless `[kafka.consumer]` sets it: 1 MiB, or
/// `message.max.bytes` when a deployment allows larger records (librdkafka refuses a smaller
/// fetch).
fn fetch_max_bytes(config: &ClientConfig) -> u64 {
    let largest_record =
        config.get("message.max.bytes").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    FETCH_MAX_BYTES.max(largest_record)
}

impl KafkaConfig {
    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        if !self.sasl_username.is_empty() {
            config.set("sasl.username", &self.sasl_username);
        }
        if !self.sasl_password.is_empty() {
            config.set("sasl.password", &self.sasl_password);
        }
        config
    }

    /// A producer whose acknowledged writes are durable on every in-sync replica and never
    /// duplicated by its own retries.
    pub fn producer(&self, client_id: &str) -> Result<FutureProducer, KafkaError> {
        self.create_producer(self.producer_config(client_id))
    }

    /// A [`producer`](Self::producer) for topics that a [`holding_consumer`](Self::holding_consumer)
    /// reads (the retry tiers): it batches at most 64 KiB of records per partition (before
    /// compression), where librdkafka's default is 1 MB.
    ///
    /// A fetch returns a partition's first batch whole, whatever the consumer's limits, and a
    /// holding consumer keeps what it fetched until it is due. A producer that fell behind (a
    /// burst of failures, a slow broker) writes batches of up to 1 MB, and one of those per
    /// partition is what each tier then read ahead: with 12 partitions, ~7.5 MB per tier against
    /// the 512 KiB it is meant to hold, and 60 MB of the sender's memory once every tier was full
    /// (docs/BENCHMARKS.md, `backlog`). Smaller batches cost a few more bytes of framing; these
    /// topics carry failures, not the hot path.
    pub fn holding_producer(&self, client_id: &str) -> Result<FutureProducer, KafkaError> {
        self.create_producer(self.holding_producer_config(client_id))
    }

    fn holding_producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.producer_config(client_id);
        if !self.producer.contains_key("batch.size") {
            config.set("batch.size", HOLDING_BATCH_BYTES);
        }
        config
    }

    /// A producer's settings: ours, then `[kafka.producer]` over them.
    fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("client.id", client_id)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // A few ms of batching costs little latency and saves many requests under load.
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "30000");
        for (key, value) in &self.producer {
            config.set(key, value);
        }
        config
    }

    fn create_producer(&self, config: ClientConfig) -> Result<FutureProducer, KafkaError> {
        config.create().map_err(|source| KafkaError::Client { what: "producer", source })
    }

    /// A consumer in group `<prefix><group>` that never commits an offset it was not told to
    /// store: offsets advance only after the record's effect is durable.
    pub fn consumer(&self, group: &str) -> Result<Consumer, KafkaError> {
        self.create_consumer(self.consumer_config(group, FETCH_WAIT_MS, READ_AHEAD_KBYTES), false)
    }

    /// A [`consumer`](Self::consumer) for topics whose records are in no hurry (retry tiers,
    /// whose records wait seconds to hours anyway; the attempt log's fallback): it asks the
    /// broker for new records every 250 ms instead of every 5, which on a broker that answers
    /// only when the wait expires (tansu) saves a fetch request per partition every 5 ms.
    ///
    /// It reads 4 MiB ahead, not 16: a fetch brings at most 1 MiB (compressed) per wait, so
    /// four fetches' worth keeps it as fast, and these consumers often hold their records a
    /// while (the 5 s and 30 s retry tiers), with the decompressed batches behind them.
    pub fn background_consumer(&self, group: &str) -> Result<Consumer, KafkaError> {
        self.create_consumer(
            self.consumer_config(group, BACKGROUND_FETCH_WAIT_MS, BACKGROUND_READ_AHEAD_KBYTES),
            false,
        )
    }

    /// A [`background_consumer`](Self::background_consumer) for records its stage holds for
    /// minutes or hours before handing them on (the retry tiers of a minute and more):
    /// [`crate::run_consumer`] reads each of its `partitions` from a queue of its own, so that
    /// the stage still serves its group's rebalances while it holds its limit of records.
    ///
    /// It reads 512 KiB ahead in all, not 4 MiB, shared out among the partitions (librdkafka
    /// applies the read-ahead to each partition's queue; 32 KiB each at least): records read
    /// further ahead would only wait in memory, with the decompressed batches behind them (once
    /// an outage had filled every tier, a sender held ~480 MiB with 16 MiB per tier and ~190 MiB
    /// with 1 MiB, docs/BENCHMARKS.md, `backlog`). Each queue may take one fetch beyond its
    /// read-ahead, so a fetch brings at most 64 KiB (brokers return a larger record whole all
    /// the same), unless the deployment allows larger records (`message.max.bytes`) or sets
    /// `fetch.max.bytes` itself. On tansu, which answers a fetch only when its 250 ms wait
    /// expires, that is 256 KiB/s per tier; Apache Kafka answers as soon as records are there.
    /// A fetch still returns each partition's first batch whole, so what it reads beyond its
    /// share is bounded by the size of the batches: write its topics with a
    /// [`holding_producer`](Self::holding_producer).
    pub fn holding_consumer(&self, group: &str, partitions: i32) -> Result<Consumer, KafkaError> {
        self.create_consumer(self.holding_consumer_config(group, partitions), true)
    }

    fn holding_consumer_config(&self, group: &str, partitions: i32) -> ClientConfig {
        let per_partition =
            (HOLDING_READ_AHEAD_KBYTES / partitions.max(1) as u64).max(HOLDING_READ_AHEAD_FLOOR_KBYTES);
        let mut config = self.consumer_config(group, BACKGROUND_FETCH_WAIT_MS, &per_partition.to_string());
        // librdkafka refuses a fetch smaller than `message.max.bytes` (1 MB unless set), which
        // on a consumer bounds only the requests it sends.
        if config.get("message.max.bytes").is_none() && !self.consumer.contains_key("fetch.max.bytes") {
            let most = HOLDING_FETCH_MAX_BYTES.to_string();
            config.set("message.max.bytes", &most).set("fetch.max.bytes", &most);
        }
        config
    }

    fn create_consumer(&self, config: ClientConfig, per_partition: bool) -> Result<Consumer, KafkaError> {
        config
            .create_with_context(StageContext { per_partition, ..StageContext::default() })
            .map_err(|source| KafkaError::Client { what: "consumer", source })
    }

    /// A consumer's settings: ours, then `[kafka.consumer]` over them.
    fn consumer_config(&self, group: &str, fetch_wait_ms: u32, read_ahead_kbytes: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", format!("{}{group}", self.topic_prefix))
            .set("client.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Some brokers (tansu among them) answer a fetch only when this wait expires, so a
            // long wait is a long hop. Apache Kafka answers as soon as data arrives either way.
            .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
            // Records read ahead and not yet handed to the stage: 16 MiB on the hot path is
            // thousands of records, seconds of work for any stage. librdkafka's default (64 MiB)
            // kept up to 173 MB of decompressed batches alive in the sender during a large
            // backlog (heaptrack, docs/BENCHMARKS.md), memory that bought no throughput.
            .set("queued.max.messages.kbytes", read_ahead_kbytes)
            // How long librdkafka leaves a partition whose read-ahead is full before it looks
            // again: 1 s by default, in which a busy stage empties 16 MiB and then waits. In a
            // fan-out burst the sender stopped for 100-300 ms every second (docs/BENCHMARKS.md,
            // "Issue 13, thirteenth round"). One fetch wait instead, as long as the consumer
            // waits for the broker anyway; each look is a comparison in librdkafka's thread.
            .set("fetch.queue.backoff.ms", fetch_wait_ms.to_string())
            // Feeds `synap_consumer_lag` (see `LagStatistics`).
            .set("statistics.interval.ms", "5000");
        for (key, value) in &self.consumer {
            config.set(key, value);
        }
        // The read-ahead above counts records as handed over, decompressed; a fetch is sized
        // in compressed bytes, and librdkafka lets one response overshoot the read-ahead.
        // By default a response could hold 16 MiB compressed, which for batches that
        // compress well is hundreds of MB once decompressed. 1 MiB (just above librdkafka's
        // floor, `message.max.bytes`) bounds that overshoot: a 240,000-event burst peaked at
        // 195–209 MiB in the sender instead of 250–267, throughput unchanged within the noise
        // (docs/BENCHMARKS.md, "Issue 13, fifth round").
        if !self.consumer.contains_key("fetch.max.bytes") {
            let fetch_max_bytes = fetch_max_bytes(&config);
            config.set("fetch.max.bytes", fetch_max_bytes.to_string());
        }
        config
    }

    pub fn topics(&self) -> super::Topics {
        super::Topics::new(&self.topic_prefix)
    }

    pub(crate) fn admin_config(&self) -> ClientConfig {
        self.base()
    }
}

/// Keeps the `kafka` readiness check current: the brokers answer a metadata request for `topic`.
/// A producer that failed for good fails the check and cancels `shutdown` ([`crate::stop_if_failed`]),
/// even while the stage writes nothing.
pub fn watch_reachable(
    readiness: &synap_telemetry::Readiness,
    producer: &FutureProducer,
    topic: String,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    let (producer, stop) = (producer.clone(), shutdown.clone());
    readiness.watch("kafka", synap_telemetry::readiness::CHECK_INTERVAL, shutdown.clone(), move || {
        let (producer, topic) = (producer.clone(), topic.clone());
        // Also while nothing is being written: a producer that failed for good stops the process.
        let failed = crate::produce::stop_if_failed(&producer, &stop);
        async move {
            use rdkafka::producer::Producer;
            if failed {
                return Err("the producer failed for good".to_owned());
            }
            tokio::task::spawn_blocking(move || {
                producer.client().fetch_metadata(Some(&topic), std::time::Duration::from_secs(3)).map(|_| ())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        }
    });
}

/// What a stage's consumer does in librdkafka's callbacks: reports lag, and ends its tenure of
/// the partitions a rebalance takes away ([`crate::tenure`]).
#[derive(Default)]
pub struct StageContext {
    lag: LagStatistics,
    pub(crate) tenures: Tenures,
    /// Read each partition from a queue of its own ([`KafkaConfig::holding_consumer`]).
    pub(crate) per_partition: bool,
}

impl ClientContext for StageContext {
    fn stats(&self, statistics: Statistics) {
        self.lag.report(statistics);
    }
}

impl ConsumerContext for StageContext {
    /// Runs before librdkafka gives up the partitions (and so before the group can hand them to
    /// another member): the work on their records stops here.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            self.tenures.end(partitions);
        }
    }
}

/// Turns librdkafka's periodic statistics into `synap_consumer_lag`: per assigned partition, the
/// high watermark minus the offset stored for commit (records read but not yet done count as
/// lag), or minus the committed offset before anything was stored.
#[derive(Default)]
struct LagStatistics {
    reported: Mutex<HashSet<(String, i32)>>,
}

impl LagStatistics {
    fn report(&self, statistics: Statistics) {
        let metrics = synap_telemetry::metrics();
        let mut now = HashSet::new();
        for (name, topic) in &statistics.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 || !p.desired {
                    continue;
                }
                let lag = if p.consumer_lag_stored >= 0 { p.consumer_lag_stored } else { p.consumer_lag };
                if lag >= 0 {
                    metrics.consumer_lag(name, *id).set(lag);
                    now.insert((name.clone(), *id));
                }
            }
        }
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, partition) in reported.difference(&now) {
            metrics.forget_consumer_lag(topic, *partition);
        }
        *reported = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_credentials_reach_every_client_and_never_its_debug_output() {
        let config = KafkaConfig {
            properties: BTreeMap::from([
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("ssl.key.password".to_owned(), "key-pass".to_owned()),
            ]),
            sasl_username: "synap".into(),
            sasl_password: "hunter2-scram".into(),
            ..KafkaConfig::default()
        };
        let client = config.base();
        assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(client.get("sasl.username"), Some("synap"));
        assert_eq!(client.get("sasl.password"), Some("hunter2-scram"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2-scram") && !debug.contains("key-pass"), "{debug}");
        assert!(debug.contains("SASL_SSL"), "{debug}");
    }

    #[tokio::test]
    async fn read_ahead_is_16_or_4_mib_and_512_kib_shared_out_unless_the_deployment_says_otherwise() {
        let config = KafkaConfig::default();
        let ours = config.consumer_config("sender", FETCH_WAIT_MS, READ_AHEAD_KBYTES);
        assert_eq!(ours.get("queued.max.messages.kbytes"), Some("16384"));
        assert_eq!(ours.get("fetch.wait.max.ms"), Some("5"));
        assert_eq!(
            ours.get("fetch.queue.backoff.ms"),
            Some("5"),
            "a full read-ahead is looked at again soon"
        );
        let background =
            config.consumer_config("sender-retry.5s", BACKGROUND_FETCH_WAIT_MS, BACKGROUND_READ_AHEAD_KBYTES);
        assert_eq!(background.get("queued.max.messages.kbytes"), Some("4096"));
        assert_eq!(background.get("fetch.wait.max.ms"), Some("250"));
        assert_eq!(background.get("fetch.queue.backoff.ms"), Some("250"));
        config.background_consumer("sender-retry.5s").map(|_| ()).expect("librdkafka accepts the settings");
        // A holding consumer's 512 KiB is shared out among its partitions' queues, each of which
        // may take one fetch beyond it: small fetches.
        let holding = |partitions| {
            let settings = config.holding_consumer_config("sender-retry.5m", partitions);
            assert_eq!(settings.get("fetch.wait.max.ms"), Some("250"));
            assert_eq!(settings.get("fetch.max.bytes"), Some("65536"));
            assert_eq!(settings.get("message.max.bytes"), Some("65536"));
            settings.get("queued.max.messages.kbytes").map(str::to_owned)
        };
        assert_eq!(holding(12).as_deref(), Some("42"));
        assert_eq!(holding(1).as_deref(), Some("512"));
        assert_eq!(holding(100).as_deref(), Some("32"), "at least 32 KiB a partition");
        config.holding_consumer("sender-retry.5m", 12).map(|_| ()).expect("librdkafka accepts the settings");

        let mut config = KafkaConfig::default();
        config.consumer.insert("queued.max.messages.kbytes".into(), "65536".into());
        let theirs = config.consumer_config("sender", BACKGROUND_FETCH_WAIT_MS, READ_AHEAD_KBYTES);
        assert_eq!(theirs.get("queued.max.messages.kbytes"), Some("65536"));
        assert_eq!(theirs.get("fetch.wait.max.ms"), Some("250"));
        // Set there, it applies to each partition of a holding consumer as it is.
        let holding = config.holding_consumer_config("sender-retry.5m", 12);
        assert_eq!(holding.get("queued.max.messages.kbytes"), Some("65536"));
        config.consumer("sender").map(|_| ()).expect("librdkafka accepts the settings");
    }

    #[tokio::test]
    async fn a_holding_producer_batches_64_kib_unless_the_deployment_says_otherwise() {
        let config = KafkaConfig::default();
        assert_eq!(config.producer_config("router").get("batch.size"), None, "librdkafka's 1 MB elsewhere");
        assert_eq!(config.holding_producer_config("sender").get("batch.size"), Some("65536"));
        assert_eq!(config.holding_producer_config("sender").get("acks"), Some("all"), "durable all the same");
        config.holding_producer("sender").map(|_| ()).expect("librdkafka accepts the settings");

        let mut config = KafkaConfig::default();
        config.producer.insert("batch.size".into(), "262144".into());
        assert_eq!(config.holding_producer_config("sender").get("batch.size"), Some("262144"));

        // A careless override that librdkafka refuses stops the sender at start, naming the
        // property. (librdkafka reads a number's leading digits, so "64k" is taken as 64, and it
        // takes values past its range: `[kafka.producer]` is passed through as written.)
        for hostile in ["0", "-1", "lots", ""] {
            let mut config = KafkaConfig::default();
            config.producer.insert("batch.size".into(), hostile.into());
            let Err(refused) = config.holding_producer("sender").map(|_| ()) else {
                panic!("{hostile} accepted")
            };
            let refused = refused.to_string();
            assert!(
                refused.starts_with("cannot create the Kafka producer") && refused.contains("batch.size"),
                "{hostile}: {refused}"
            );
        }
    }

    #[tokio::test]
    async fn a_fetch_brings_1_mib_unless_records_may_be_larger() {
        let config = KafkaConfig::default();
        let ours = config.consumer_config("sender", FETCH_WAIT_MS, READ_AHEAD_KBYTES);
        assert_eq!(ours.get("fetch.max.bytes"), Some("1048576"));

        // librdkafka refuses a fetch smaller than the largest record the deployment allows.
        let mut config = KafkaConfig::default();
        config.properties.insert("message.max.bytes".into(), "5000000".into());
        let large = config.consumer_config("sender", FETCH_WAIT_MS, READ_AHEAD_KBYTES);
        assert_eq!(large.get("fetch.max.bytes"), Some("5000000"));
        config.consumer.insert("message.max.bytes".into(), "6000000".into());
        let larger = config.consumer_config("sender", FETCH_WAIT_MS, READ_AHEAD_KBYTES);
        assert_eq!(larger.get("fetch.max.bytes"), Some("6000000"));
        config.consumer("sender").map(|_| ()).expect("librdkafka accepts the settings");
        // Records as large as the deployment allows still fit a holding consumer's fetch.
        let holding = config.holding_consumer_config("sender-retry.5m", 12);
        assert_eq!(holding.get("fetch.max.bytes"), Some("6000000"));
        config.holding_consumer("sender-retry.5m", 12).map(|_| ()).expect("librdkafka accepts the settings");

        // `[kafka.consumer]` has the last word.
        config.consumer.insert("fetch.max.bytes".into(), "52428800".into());
        let theirs = config.consumer_config("sender", FETCH_WAIT_MS, READ_AHEAD_KBYTES);
        assert_eq!(theirs.get("fetch.max.bytes"), Some("52428800"));
    }

    #[test]
    fn a_careless_consumer_setting_is_refused_by_name_not_worked_around() {
        for (key, value, at) in [
            ("queued.max.messages.kbytes", "lots", "consumer"),
            ("fetch.max.bytes", "-1", "consumer"),
            ("message.max.bytes", "huge", "properties"),
        ] {
            let mut config = KafkaConfig::default();
            let settings = if at == "consumer" { &mut config.consumer } else { &mut config.properties };
            settings.insert(key.into(), value.into());
            for (what, created) in [
                ("consumer", config.consumer("sender").map(|_| ())),
                ("background", config.background_consumer("sender-retry.5s").map(|_| ())),
                ("holding", config.holding_consumer("sender-retry.5m", 12).map(|_| ())),
            ] {
                let error = created.expect_err(&format!("{what}: {key} = {value} accepted")).to_string();
                assert!(error.contains(key), "{what}: {error}");
            }
        }
    }

    #[test]
    fn the_build_speaks_tls_and_scram() {
        // librdkafka refuses these settings when built without OpenSSL.
        let mut config = KafkaConfig::default();
        config.properties.insert("security.protocol".into(), "SASL_SSL".into());
        config.properties.insert("sasl.mechanism".into(), "SCRAM-SHA-512".into());
        config.sasl_username = "u".into();
        config.sasl_password = "p".into();
        config.producer("tls-check").map(|_| ()).expect("a SASL_SSL/SCRAM producer can be created");
    }
}
