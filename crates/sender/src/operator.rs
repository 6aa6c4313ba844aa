//! Operator events: what an operator must hear about, on a Kafka topic (JSON, keyed by portal)
//! and optionally POSTed to an operator webhook.

use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use rdkafka::producer::FutureProducer;
use serde::Serialize;
use synap_kafka::{Handled, Outgoing, SendError, send_durably};
use synap_telemetry::metrics::metrics;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum OperatorEvent {
    /// A delivery failed for good and went to the dead-letter topic.
    #[serde(rename = "delivery.failed", rename_all = "camelCase")]
    DeliveryFailed {
        portal_id: String,
        subscription_id: String,
        event_id: String,
        event_type: String,
        attempts: u32,
        /// Why, as in the dead letter's `synap-dlq-reason`: the last attempt's outcome code
        /// (`http_500`, `timeout`, `gone`, …), or `secret_unreadable`, `subscription_unreadable`,
        /// `retry_refused`.
        reason: String,
    },
    /// The sender disabled a subscription.
    #[serde(rename = "subscription.disabled", rename_all = "camelCase")]
    SubscriptionDisabled {
        portal_id: String,
        subscription_id: String,
        /// `gone` (the endpoint answered 410) or `failing` (every attempt failed for the
        /// configured window).
        reason: String,
        failing_since: Option<String>,
    },
}

impl OperatorEvent {
    fn portal_id(&self) -> &str {
        match self {
            OperatorEvent::DeliveryFailed { portal_id, .. }
            | OperatorEvent::SubscriptionDisabled { portal_id, .. } => portal_id,
        }
    }
}

#[derive(Clone)]
pub struct OperatorEvents {
    pub producer: FutureProducer,
    pub topic: String,
    /// POST target besides the topic, with its own client (a deployment-chosen URL, exempt from
    /// the customer address policy).
    pub webhook: Option<(String, reqwest::Client)>,
    pub shutdown: CancellationToken,
}

impl OperatorEvents {
    pub fn webhook_client() -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent(crate::attempt::USER_AGENT)
            .build()
    }

    /// Writes the event to the topic (durably) and POSTs it to the operator webhook in the
    /// background. `Abandoned` only at shutdown.
    ///
    /// An event is a few hundred bytes of JSON: the broker refuses one only when the operator
    /// topic is misconfigured (`max.message.bytes` below that), which retrying cannot mend. It is
    /// then logged (the whole event, at error level) and counted as
    /// `synap_dead_letters_total{stage="sender",reason="operator_event_refused"}`; the delivery it
    /// reports is in the dead-letter topic all the same.
    pub async fn emit(&self, event: OperatorEvent) -> Handled {
        let mut body = serde_json::to_value(&event).expect("operator events serialise");
        body["at"] = chrono::Utc::now().to_rfc3339().into();
        let payload = body.to_string().into_bytes();
        tracing::warn!(event = %body, "operator event");
        let record = Outgoing {
            topic: self.topic.clone(),
            key: event.portal_id().as_bytes().to_vec(),
            payload: payload.clone(),
            headers: OwnedHeaders::new(),
        };
        match send_durably(&self.producer, &record, &self.shutdown).await {
            Ok(()) => {}
            Err(SendError::Abandoned) => return Handled::Abandoned,
            Err(SendError::Rejected(refusal)) => {
                tracing::error!(event = %body, %refusal, topic = %self.topic, "operator event refused by the broker");
                metrics().dead_letters("sender", "operator_event_refused").inc();
            }
        }
        if let Some((url, client)) = self.webhook.clone() {
            tokio::spawn(async move {
                let sent =
                    client.post(&url).header("content-type", "application/json").body(payload).send().await;
                match sent {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(status = %r.status(), "operator webhook refused an event"),
                    Err(e) => tracing::warn!(error = %e.without_url(), "operator webhook unreachable"),
                }
            });
        }
        Handled::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_camel_case_json() {
        let event = OperatorEvent::SubscriptionDisabled {
            portal_id: "p".into(),
            subscription_id: "s".into(),
            reason: "gone".into(),
            failing_since: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "subscription.disabled");
        assert_eq!(json["subscriptionId"], "s");
    }
}
