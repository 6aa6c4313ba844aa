//! The sender stage: one delivery in, a final outcome out (delivered, dropped with a reason, or
//! dead-lettered with the reason).

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_db::DeliveryTarget;
use synap_kafka::{Handled, Outgoing, SendError, Topics, headers, send_durably};
use synap_proto::pipeline::v1::Delivery;
use synap_telemetry::metrics::{delay_tier, metrics};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::attempt::{self, Outcome};
use crate::targets::TargetCache;

pub struct Sender {
    pub producer: FutureProducer,
    pub http: reqwest::Client,
    pub topics: Topics,
    pub targets: TargetCache,
    pub retry_delays: Vec<Duration>,
    pub shutdown: CancellationToken,
}

impl Sender {
    /// Handles one delivery; returns when it has a final outcome.
    pub async fn handle(self: Arc<Self>, message: OwnedMessage) -> Handled {
        let Ok(mut delivery) = Delivery::decode(message.payload().unwrap_or_default()) else {
            return self
                .dead_letter(&message, None, "undecodable_delivery", "not a synap.pipeline.v1.Delivery")
                .await;
        };
        let Some(target) = self.target(&delivery.subscription_id).await else {
            return Handled::Abandoned;
        };
        let target = match target.as_ref() {
            Some(t) if t.enabled => t.clone(),
            Some(_) => {
                tracing::info!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, "subscription disabled since routing; delivery dropped");
                return Handled::Done;
            }
            None => {
                tracing::info!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, "subscription deleted since routing; delivery dropped");
                return Handled::Done;
            }
        };

        let first = delivery.attempt.max(1);
        let mut last = Outcome::Other("no attempt made".into());
        for (n, attempt_no) in (first..).enumerate().take(self.retry_delays.len() + 1) {
            if n > 0 {
                let pending = metrics().retries_pending(&delay_tier(self.retry_delays[n - 1]));
                pending.inc();
                let waited = tokio::select! {
                    _ = tokio::time::sleep(self.retry_delays[n - 1]) => true,
                    _ = self.shutdown.cancelled() => false,
                };
                pending.dec();
                if !waited {
                    return Handled::Abandoned;
                }
            }
            // Telemetry (issue 5): one span per attempt, child of the router's span.
            let span = synap_telemetry::attempt_span(
                message.headers(),
                &delivery.event_id,
                &delivery.subscription_id,
                attempt_no,
            );
            let attempted =
                attempt::attempt(&self.http, &delivery, &target, attempt_no).instrument(span.clone()).await;
            metrics().attempt_finished(
                &attempted.outcome.code(),
                attempted.outcome.status(),
                attempted.latency,
            );
            span.in_scope(|| {
                tracing::info!(
                    outcome = %attempted.outcome.code(),
                    latency_ms = attempted.latency.as_millis() as u64,
                    "delivery attempt"
                )
            });
            delivery.attempt = attempt_no;
            if let Outcome::Delivered { status } = attempted.outcome {
                metrics().delivery_finished("delivered", Some(status), delivery.ingested_at_ms);
                return Handled::Done;
            }
            last = attempted.outcome;
        }
        let detail = match &last {
            Outcome::Connect(e) | Outcome::Other(e) => e.clone(),
            other => other.code(),
        };
        let handled = self.dead_letter(&message, Some(&delivery), &last.code(), &detail).await;
        if handled == Handled::Done {
            metrics().delivery_finished("dead_lettered", last.status(), 0);
            metrics().dead_letters("sender", &last.code()).inc();
        }
        handled
    }

    /// Reads the target, retrying while the database is unavailable; `None` only at shutdown.
    async fn target(&self, subscription_id: &str) -> Option<Arc<Option<DeliveryTarget>>> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.targets.get(subscription_id).await {
                Ok(target) => return Some(target),
                Err(error) => {
                    tracing::warn!(subscription_id, %error, retry_in = ?backoff, "cannot read subscription")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.shutdown.cancelled() => return None,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        delivery: Option<&Delivery>,
        reason: &str,
        detail: &str,
    ) -> Handled {
        tracing::warn!(
            event_id = delivery.map(|d| d.event_id.as_str()).unwrap_or(""),
            subscription_id = delivery.map(|d| d.subscription_id.as_str()).unwrap_or(""),
            reason,
            detail,
            "delivery dead-lettered"
        );
        let source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
        let record = Outgoing {
            topic: self.topics.deliveries_dead_letter(),
            key: delivery.map(|d| d.subscription_id.clone()).unwrap_or_default(),
            payload: match delivery {
                Some(d) => d.encode_to_vec(),
                None => message.payload().unwrap_or_default().to_vec(),
            },
            headers: headers::copy_with(
                message.headers(),
                &[
                    ("synap-dlq-reason", reason),
                    ("synap-dlq-detail", detail),
                    ("synap-dlq-source", &source),
                    ("synap-dlq-stage", "sender"),
                ],
            ),
        };
        match send_durably(&self.producer, &record, &self.shutdown).await {
            Ok(()) => Handled::Done,
            Err(SendError::Abandoned | SendError::Rejected(_)) => Handled::Abandoned,
        }
    }
}
