//! What the machine can do without us: a bare HTTP client loop against the same receiver, and
//! the broker's own produce → consume rate with the services' client settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};
use synap_contract::EventType;
use synap_kafka::KafkaConfig;

use crate::stats::{Percentiles, event_id, now_us, sustained_per_second};

/// The HTTP ceiling: what the receiver takes from a client doing nothing else.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HttpCeiling {
    pub concurrency: usize,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    pub latency_ms: Percentiles,
}

/// POSTs a ~1 KB example body to `/ok/ceiling/<n>` from `concurrency` loops for `duration`,
/// with a client built like the sender's (keep-alive pool, no redirects). The receiver records
/// these requests under the tag `ceiling` like any delivery.
pub async fn http(
    receiver_base: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<HttpCeiling> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()?;
    let body = serde_json::to_vec(&EventType::AttemptCompleted.example_body())?;
    let seq = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + duration;
    let started = tokio::time::Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for n in 0..concurrency {
        let (client, body, seq, errors) = (client.clone(), body.clone(), seq.clone(), errors.clone());
        let url = format!("{receiver_base}/ok/ceiling/{n}");
        loops.spawn(async move {
            let mut latencies = Vec::new();
            while tokio::time::Instant::now() < deadline {
                let published = now_us();
                let id = event_id("ceiling", seq.fetch_add(1, Ordering::Relaxed), published);
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => latencies.push(now_us() - published),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = loops.join_next().await {
        latencies.extend(joined?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = latencies.len() as u64;
    Ok(HttpCeiling {
        concurrency,
        seconds,
        requests,
        errors: errors.load(Ordering::Relaxed),
        requests_per_s: requests as f64 / seconds,
        latency_ms: Percentiles::of_micros(&mut latencies),
    })
}

/// Key of the record that proves the consumer is reading before the clock starts.
const PRIMER: &str = "primer";

/// The broker ceiling for one hop: records produced and consumed at once, as a stage does.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BrokerCeiling {
    pub records: u64,
    pub record_bytes: usize,
    pub partitions: i32,
    /// Acknowledged produce rate, records/s.
    pub produced_per_s: f64,
    /// Consume rate (middle 80%), records/s: the rate one hop can move.
    pub consumed_per_s: Option<f64>,
    /// Produce call → consumer receipt, per record.
    pub hop_latency_ms: Percentiles,
}

/// Produces `records` ~1 KB records to a fresh topic with `partitions` partitions while one
/// consumer (the services' consumer settings) reads them back: all at once (`rate` None: the
/// throughput ceiling), or `rate` records per second (the broker's own latency at that rate,
/// the floor under each of the pipeline's three hops; records of the first `warmup` leave the
/// latency figures out, as in the fixed-rate scenarios).
pub async fn broker(
    kafka: &KafkaConfig,
    records: u64,
    partitions: i32,
    rate: Option<f64>,
    warmup: Duration,
) -> anyhow::Result<BrokerCeiling> {
    let topic = format!("{}bench-ceiling", kafka.topic_prefix);
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &kafka.bootstrap_servers).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .create_topics(&[NewTopic::new(&topic, partitions, TopicReplication::Fixed(1))], &options)
        .await?
    {
        result.map_err(|(t, e)| anyhow::anyhow!("cannot create {t}: {e}"))?;
    }

    let consumer = kafka.consumer("bench-ceiling")?;
    consumer.subscribe(&[&topic])?;
    let producer = kafka.producer("synap-bench-ceiling")?;
    let send = |key: String, payload: Vec<u8>| {
        let (producer, topic) = (&producer, &topic);
        async move {
            let record = FutureRecord::to(topic).key(&key).payload(&payload);
            producer.send(record, Timeout::After(Duration::from_secs(30))).await
        }
    };
    // One primer record first: the timed part starts once the producer has its id and the
    // consumer its partitions, or it would measure the group join instead of the broker.
    send(PRIMER.into(), Vec::new()).await.map_err(|(e, _)| e).context("producing the primer")?;
    let (ready, primed) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let (mut arrivals, mut latencies) = (Vec::new(), Vec::new());
        let mut stream = consumer.stream();
        let mut ready = Some(ready);
        while (arrivals.len() as u64) < records {
            let next = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
            let Ok(Some(Ok(message))) = next else { break };
            let arrived = now_us();
            let key = message.key().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or("");
            if key == PRIMER {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                continue;
            }
            arrivals.push(arrived);
            let sent: u64 = key.parse().unwrap_or(arrived);
            latencies.push((sent, arrived.saturating_sub(sent)));
        }
        (arrivals, latencies)
    });
    tokio::time::timeout(Duration::from_secs(30), primed)
        .await
        .context("the ceiling consumer got no partitions within 30 s")??;

    let body = serde_json::to_vec(&EventType::AttemptCompleted.example_body())?;
    let started = now_us();
    let clock = tokio::time::Instant::now();
    let acked = futures::stream::iter(0..records)
        .then(|i| async move {
            if let Some(rate) = rate {
                tokio::time::sleep_until(clock + Duration::from_secs_f64(i as f64 / rate)).await;
            }
        })
        .map(|_| send(now_us().to_string(), body.clone()))
        .buffer_unordered(10_000)
        .filter(|r| futures::future::ready(r.is_ok()))
        .count()
        .await as u64;
    let produced_seconds = (now_us() - started) as f64 / 1e6;
    let (mut arrivals, latencies) = reader.await.context("ceiling consumer")?;
    let measured_from = started + warmup.as_micros() as u64;
    let mut latencies: Vec<u64> =
        latencies.into_iter().filter(|(sent, _)| *sent >= measured_from).map(|(_, l)| l).collect();
    let _ = admin.delete_topics(&[&topic], &options).await;
    Ok(BrokerCeiling {
        records: arrivals.len() as u64,
        record_bytes: body.len(),
        partitions,
        produced_per_s: acked as f64 / produced_seconds,
        consumed_per_s: sustained_per_second(&mut arrivals),
        hop_latency_ms: Percentiles::of_micros(&mut latencies),
    })
}
