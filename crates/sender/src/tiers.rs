//! Retry tiers: one topic per retry delay, each read by its own consumer that holds a record
//! until it is due and then hands it back to the deliveries topic. Retries wait in Kafka: a
//! record's offset is committed only after it is handed back, so a restart loses none, and each
//! tier waits independently of the others and of fresh deliveries.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_kafka::{Handled, Outgoing, SetAside, send_durably};
use synap_proto::pipeline::v1::Delivery;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Tier {
    pub producer: FutureProducer,
    pub deliveries_topic: String,
    /// The tier's delay, for the pending-retries gauge.
    pub delay: Duration,
    pub shutdown: CancellationToken,
}

impl Tier {
    pub async fn handle(self, message: Arc<OwnedMessage>) -> Handled {
        let payload = message.payload().unwrap_or_default().to_vec();
        let (key, due_at_ms) = match Delivery::decode(payload.as_slice()) {
            Ok(d) => (d.subscription_id, d.due_at_ms),
            Err(e) => {
                return Handled::SetAside(SetAside::new(
                    "undecodable_delivery",
                    format!("not a synap.pipeline.v1.Delivery: {e}"),
                ));
            }
        };
        let wait = due_at_ms - chrono::Utc::now().timestamp_millis();
        if wait > 0 {
            let pending =
                synap_telemetry::metrics::metrics().retries_pending(&crate::schedule::tier_label(self.delay));
            pending.inc();
            let waited = tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => true,
                _ = self.shutdown.cancelled() => false,
            };
            pending.dec();
            if !waited {
                return Handled::Abandoned;
            }
        }
        // Handed back as it was written: payload, key and the trace context in its headers.
        let record = Outgoing {
            topic: self.deliveries_topic.clone(),
            key: key.into_bytes(),
            payload,
            headers: message.headers().cloned().unwrap_or_default(),
        };
        match send_durably(&self.producer, &record, &self.shutdown).await {
            Ok(()) => Handled::Done,
            Err(_) => Handled::Abandoned,
        }
    }
}
