//! Publishes events the way a platform service does: JSON envelopes of EVENTS.md §3 on the
//! inbound topic, keyed by portal, with the contract's example bodies, through a producer with
//! the services' own client settings (acks=all, idempotence, linger).

use std::time::Duration;

use anyhow::Context;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde::Serialize;
use synap_contract::EventType;
use synap_kafka::KafkaConfig;
use tokio::sync::mpsc;

use crate::stats::{event_id, now_us};

pub struct Publisher {
    producer: FutureProducer,
    topic: String,
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
        Ok(Self { producer: kafka.producer("synap-bench")?, topic: kafka.topics().inbound(), bodies })
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
            let mut record = FutureRecord::to(&self.topic).key(&portal).payload(&payload).headers(headers);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        acks.send(delivery).ok();
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(e).context("producing an event"),
                }
            }
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
}
