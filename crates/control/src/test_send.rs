//! TestSend: an example body through the real sender path. Control writes a delivery (attempt
//! 1, `test_send = true`) to the deliveries topic, as the router would, and waits for the
//! sender's row in the attempt log.

use std::time::Duration;

use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::FutureProducer;
use synap_kafka::{Outgoing, Topics, headers, send_durably};
use synap_proto::control::v1 as api;
use synap_proto::pipeline::v1::Delivery;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::auth::Caller;
use crate::errors::db;
use crate::service::ControlApi;

/// How often the attempt log is polled while waiting.
const POLL: Duration = Duration::from_millis(100);

pub struct TestSender {
    pub producer: FutureProducer,
    pub topics: Topics,
    /// How long to wait for the sender's outcome.
    pub timeout: Duration,
}

impl ControlApi {
    pub(crate) async fn test_send(
        &self,
        caller: &Caller,
        req: api::TestSendRequest,
    ) -> Result<api::TestSendResponse, Status> {
        let (sub, ty) = self.test_target(caller, &req).await?;
        let sender = self
            .test_sender
            .as_ref()
            .ok_or_else(|| Status::unavailable("test sends are not configured on this control service"))?;
        let event_id = format!("test_{}", uuid::Uuid::new_v4().simple());
        let now_ms = chrono::Utc::now().timestamp_millis();
        let delivery = Delivery {
            event_id: event_id.clone(),
            event_type: ty.code().to_owned(),
            portal_id: sub.portal_id.clone(),
            subscription_id: sub.id.clone(),
            occurred_at_ms: now_ms,
            ingested_at_ms: now_ms,
            attempt: 1,
            data: ty.example_body().to_string().into_bytes().into(),
            test_send: true,
            ..Default::default()
        };
        let record = Outgoing {
            topic: sender.topics.deliveries(),
            // Keyed by subscription, like the router's deliveries.
            key: sub.id.clone(),
            payload: delivery.encode_to_vec(),
            headers: headers::copy_with(None::<&OwnedHeaders>, &[("synap-event-id", &event_id)]),
        };
        let deadline = tokio::time::Instant::now() + sender.timeout;
        // send_durably retries until told to stop; the deadline stops it.
        let stop = CancellationToken::new();
        let guard = stop.clone().drop_guard();
        let sent = tokio::time::timeout_at(deadline, send_durably(&sender.producer, &record, &stop)).await;
        drop(guard);
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(?e, "test send not written");
                return Err(Status::unavailable("the deliveries topic refused the test send"));
            }
            Err(_) => return Err(Status::unavailable("Kafka did not accept the test send in time")),
        }
        tracing::info!(subscription_id = %sub.id, %event_id, event_type = ty.code(), "test send queued");
        loop {
            if let Some(attempt) =
                synap_db::test_sends::first_attempt(&self.pool, &event_id, &sub.id).await.map_err(db)?
            {
                return Ok(api::TestSendResponse {
                    event_id,
                    outcome: attempt.outcome,
                    status_code: attempt.status_code.and_then(|c| u32::try_from(c).ok()),
                    latency_ms: u32::try_from(attempt.latency_ms).unwrap_or_default(),
                    error: attempt.error.unwrap_or_default(),
                    error_class: attempt.error_class.unwrap_or_default(),
                });
            }
            if tokio::time::Instant::now() + POLL > deadline {
                return Err(Status::deadline_exceeded(format!(
                    "the sender has not finished test send {event_id} within {:?}; it may still arrive",
                    sender.timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
