//! Retry tiers: one topic per retry delay, each read by its own consumer that holds a record
//! until it is due and then hands it back to the deliveries topic. Retries wait in Kafka: a
//! record's offset is committed only after it is handed back, so a restart loses none, and each
//! tier waits independently of the others and of fresh deliveries.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_kafka::{Handled, Outgoing, SendError, SetAside, send_durably};
use synap_proto::pipeline::v1::Delivery;
use tokio_util::sync::CancellationToken;

/// Tiers of this delay and longer read only 512 KiB ahead, each partition into a queue of its own
/// ([`synap_kafka::KafkaConfig::holding_consumer`]): their records wait minutes or more once read.
pub const HOLDING_TIER: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Tier {
    pub producer: FutureProducer,
    pub deliveries_topic: String,
    /// The tier's delay, for the pending-retries gauge.
    pub delay: Duration,
    /// The longest any retry waits ([`crate::schedule::RetrySchedule::longest_delay`]): a record
    /// due later is damaged, and is handed back after this long rather than holding its place
    /// (and its partition's committed offset) for years.
    pub longest_wait: Duration,
    pub shutdown: CancellationToken,
}

impl Tier {
    /// Holds the record until it is due, unless the consumer's tenure of its partition ends
    /// first ([`synap_kafka::Turn::tenure`]: revoked or shutting down), then hands it back.
    pub async fn handle(self, message: Arc<OwnedMessage>, tenure: CancellationToken) -> Handled {
        // Copied only when handed back: a tier holds up to `retry_tier_max_in_flight` records
        // for as long as they wait.
        let payload = message.payload().unwrap_or_default();
        let (key, due_at_ms) = match Delivery::decode(payload) {
            Ok(d) => (d.subscription_id, d.due_at_ms),
            Err(e) => {
                return Handled::SetAside(SetAside::new(
                    crate::stage::reasons::UNDECODABLE_DELIVERY,
                    format!("not a synap.pipeline.v1.Delivery: {e}"),
                ));
            }
        };
        let wait = due_at_ms.saturating_sub(chrono::Utc::now().timestamp_millis());
        if wait > 0 {
            let wait = Duration::from_millis(wait as u64).min(self.longest_wait);
            let pending =
                synap_telemetry::metrics::metrics().retries_pending(&crate::schedule::tier_label(self.delay));
            pending.inc();
            let waited = tokio::select! {
                _ = tokio::time::sleep(wait) => true,
                _ = tenure.cancelled() => false,
            };
            pending.dec();
            if !waited {
                return Handled::Abandoned;
            }
        }
        // Boxed: the send's state (about a kilobyte) would otherwise be part of every held
        // record's task for as long as the record waits.
        Box::pin(self.hand_back(&message, key)).await
    }

    /// Writes the record back to the deliveries topic as it was read: payload, key and the
    /// trace context in its headers.
    async fn hand_back(self, message: &OwnedMessage, key: String) -> Handled {
        let payload = message.payload().unwrap_or_default();
        let record = Outgoing {
            topic: self.deliveries_topic.clone(),
            key: key.into_bytes(),
            payload: payload.to_vec(),
            headers: message.headers().cloned().unwrap_or_default(),
        };
        match send_durably(&self.producer, &record, &self.shutdown).await {
            Ok(()) => Handled::Done,
            Err(SendError::Abandoned) => Handled::Abandoned,
            // The deliveries topic takes smaller records than this tier: the delivery goes to the
            // dead-letter topic as read, to be re-driven once the topics agree.
            Err(SendError::Rejected(refusal)) => Handled::SetAside(SetAside::new(
                crate::stage::reasons::RETRY_REFUSED,
                format!("the deliveries topic refused the retry: {refusal}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tier holds hundreds of records per tier for minutes to hours, each in a task running
    /// this future: its size is paid per held record. With the hand-back's send inline it was
    /// 1,104 bytes; boxed, 424.
    #[tokio::test]
    async fn a_held_retry_keeps_no_send_state() {
        let producer: FutureProducer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:1").create().unwrap();
        let tier = Tier {
            producer,
            deliveries_topic: "deliveries".into(),
            delay: Duration::from_secs(300),
            longest_wait: Duration::from_secs(86_400),
            shutdown: CancellationToken::new(),
        };
        let message =
            OwnedMessage::new(None, None, "retry.5m".into(), rdkafka::Timestamp::NotAvailable, 0, 0, None);
        let held = tier.handle(Arc::new(message), CancellationToken::new());
        assert!(std::mem::size_of_val(&held) < 640, "{} bytes", std::mem::size_of_val(&held));
    }
}
