//! Publishes events the way a platform service does: JSON envelopes of EVENTS.md §3 on the
//! inbound topic, keyed by portal, with the contract's example bodies, through a producer with
//! the services' own client settings (acks=all, idempotence, linger).

use std::time::Duration;

use anyhow::Context;
use prost::Message as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders, ToBytes};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use serde::Serialize;
use synap_contract::EventType;
use synap_kafka::KafkaConfig;
use synap_proto::pipeline::v1::Delivery;
use tokio::sync::mpsc;

use crate::stats::{event_id, now_us};

pub struct Publisher {
    producer: FutureProducer,
    /// Writes the retry tiers as the sender does ([`KafkaConfig::holding_producer`]).
    tier_producer: FutureProducer,
    topic: String,
    /// Where the sender's retry tiers are: every topic named `<prefix>retry.<delay>`.
    retry_topics: String,
    /// Each type's example body, serialised once.
    bodies: Vec<(EventType, String)>,
}

/// What one publishing run did.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Published {
    pub events: u64,
    /// Acknowledged by the broker.
    pub acked: u64,
    pub failed: u64,
    /// Mean size of the JSON envelopes, bytes.
    pub mean_record_bytes: u64,
    pub started_us: u64,
    /// When the last event was handed to the producer.
    pub finished_us: u64,
    /// Events handed to the producer per second.
    pub rate_per_s: f64,
}

impl Publisher {
    pub fn new(kafka: &KafkaConfig) -> anyhow::Result<Self> {
        let bodies = EventType::ALL
            .iter()
            .map(|ty| Ok((*ty, serde_json::to_string(&ty.example_body())?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            producer: kafka.producer("synap-bench")?,
            tier_producer: kafka.holding_producer("synap-bench-tiers")?,
            topic: kafka.topics().inbound(),
            retry_topics: kafka.topics().retry_tier(""),
            bodies,
        })
    }

    /// Publishes `count` events tagged `tag`; event `seq` goes to `route(seq)` = (portal, type).
    /// With a `rate`, events leave on a fixed schedule (catching up when behind, never bursting
    /// ahead); without one, as fast as the producer takes them. Returns once every event is
    /// acknowledged or failed.
    pub async fn publish<F>(
        &self,
        tag: &str,
        count: u64,
        rate: Option<f64>,
        route: F,
    ) -> anyhow::Result<Published>
    where
        F: Fn(u64) -> (String, EventType),
    {
        let (acks, mut acked_rx) = mpsc::unbounded_channel::<DeliveryFuture>();
        let acker = tokio::spawn(async move {
            let (mut acked, mut failed) = (0u64, 0u64);
            while let Some(delivery) = acked_rx.recv().await {
                match delivery.await {
                    Ok(Ok(_)) => acked += 1,
                    _ => failed += 1,
                }
            }
            (acked, failed)
        });
        let started = tokio::time::Instant::now();
        let started_us = now_us();
        let mut bytes = 0u64;
        for seq in 0..count {
            if let Some(rate) = rate {
                tokio::time::sleep_until(started + Duration::from_secs_f64(seq as f64 / rate)).await;
            }
            let (portal, ty) = route(seq);
            let body = &self.bodies.iter().find(|(t, _)| *t == ty).context("event type")?.1;
            let id = event_id(tag, seq, now_us());
            // Built by hand: the body is already JSON, and re-serialising it per event would make
            // the publisher, not the system, the bottleneck.
            let payload =
                format!(r#"{{"id":"{id}","type":"{}","portalId":"{portal}","data":{body}}}"#, ty.code());
            bytes += payload.len() as u64;
            let headers =
                OwnedHeaders::new().insert(Header { key: "content-type", value: Some("application/json") });
            let record = FutureRecord::to(&self.topic).key(&portal).payload(&payload).headers(headers);
            acks.send(send(&self.producer, record).await.context("producing an event")?).ok();
        }
        let finished_us = now_us();
        drop(acks);
        let (acked, failed) = acker.await?;
        let seconds = (finished_us.saturating_sub(started_us) as f64 / 1e6).max(1e-6);
        Ok(Published {
            events: count,
            acked,
            failed,
            mean_record_bytes: bytes.checked_div(count).unwrap_or(0),
            started_us,
            finished_us,
            rate_per_s: count as f64 / seconds,
        })
    }

    /// Writes `per_tier` deliveries to every retry tier the sender has created, each due in a
    /// day and for subscriptions that do not exist: the state of the tiers hours into an outage,
    /// without waiting hours. Each body differs ([`varied`]), as real events' bodies do. Returns
    /// the tiers written to.
    pub async fn fill_retry_tiers(&self, per_tier: u64) -> anyhow::Result<Vec<String>> {
        let producer = self.producer.clone();
        let prefix = self.retry_topics.clone();
        let tiers: Vec<String> = tokio::task::spawn_blocking(move || {
            let metadata = producer.client().fetch_metadata(None, Duration::from_secs(10))?;
            anyhow::Ok(
                metadata
                    .topics()
                    .iter()
                    .map(|t| t.name().to_owned())
                    .filter(|n| n.starts_with(&prefix))
                    .collect(),
            )
        })
        .await??;
        anyhow::ensure!(!tiers.is_empty(), "no retry tier topic {}* on the broker", self.retry_topics);
        let ty = EventType::AttemptCompleted;
        let body = &self.bodies.iter().find(|(t, _)| *t == ty).context("event type")?.1;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut acks = Vec::new();
        for tier in &tiers {
            for seq in 0..per_tier {
                // Spread over the tier's partitions as real subscriptions would be.
                let subscription_id = format!("sub_backlog_{}", seq % 50);
                let delivery = Delivery {
                    event_id: format!("evt_backlog_{seq}"),
                    event_type: ty.code().to_owned(),
                    portal_id: "backlog".into(),
                    subscription_id,
                    occurred_at_ms: now_ms,
                    ingested_at_ms: now_ms,
                    attempt: 2,
                    data: varied(body).into_bytes().into(),
                    due_at_ms: now_ms + 24 * 3_600_000,
                    scheduled_at_ms: now_ms,
                    ..Delivery::default()
                };
                let payload = delivery.encode_to_vec();
                acks.push(
                    send(
                        &self.tier_producer,
                        FutureRecord::to(tier).key(&delivery.subscription_id).payload(&payload),
                    )
                    .await?,
                );
                if acks.len() >= 10_000 {
                    confirm(std::mem::take(&mut acks)).await?;
                }
            }
        }
        confirm(acks).await?;
        Ok(tiers)
    }
}

/// Hands a record to `producer`, waiting while its queue is full.
async fn send<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> anyhow::Result<DeliveryFuture>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Waits until the broker has acknowledged every record.
async fn confirm(acks: Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for ack in acks {
        ack.await.context("producer dropped")?.map_err(|(e, _)| e).context("record not acknowledged")?;
    }
    Ok(())
}

/// `body` with 1 KB of random hex beside it. Real events differ in ids, names, times and
/// answers, so batches of them compress (LZ4) a few times, not the ~30 times of one example body
/// repeated. The difference matters here: a consumer's fetch is bounded in compressed bytes, and
/// at ~30 times one fetch of 1 MiB would bring a whole tier's backlog into memory at once.
fn varied(body: &str) -> String {
    let noise: String = (0..32).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
    format!(r#"{{"noise":"{noise}","data":{body}}}"#)
}
