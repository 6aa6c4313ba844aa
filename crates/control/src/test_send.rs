//! TestSend: an example body through the real sender path. Control writes a delivery (attempt
//! 1, `test_send = true`) to the deliveries topic, as the router would, and waits for the
//! sender's row in the attempt log.

use std::time::Duration;

use synap_kafka::deliveries;
use synap_proto::control::v1 as api;
use tonic::Status;

use crate::auth::Caller;
use crate::errors::{db, restarting};
use crate::kafka_writer::{KafkaWriter, WriteFailure};
use crate::service::ControlApi;

/// How often the attempt log is polled while waiting.
const POLL: Duration = Duration::from_millis(100);

pub struct TestSender {
    pub writer: KafkaWriter,
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
        let delivery = deliveries::test_send(
            event_id.clone(),
            ty.code(),
            &sub.portal_id,
            &sub.id,
            ty.example_body().to_string().into_bytes(),
        );
        let record = deliveries::record(sender.writer.topics().deliveries(), &delivery);
        let deadline = tokio::time::Instant::now() + sender.timeout;
        match sender.writer.write(&record, sender.timeout).await {
            Ok(()) => {}
            Err(WriteFailure::Refused(refusal)) => {
                tracing::warn!(%refusal, "test send not written");
                return Err(Status::unavailable("the deliveries topic refused the test send"));
            }
            Err(WriteFailure::TimedOut) => {
                return Err(Status::unavailable("Kafka did not accept the test send in time"));
            }
            Err(WriteFailure::Stopping) => return Err(restarting()),
        }
        tracing::info!(subscription_id = %sub.id, %event_id, event_type = ty.code(), "test send queued");
        loop {
            if let Some(attempt) =
                synap_db::attempts::first_of(&self.pool, &event_id, &sub.id).await.map_err(db)?
            {
                let a = attempt.row;
                return Ok(api::TestSendResponse {
                    event_id,
                    outcome: a.outcome.code().to_owned(),
                    status_code: a.status_code.and_then(|c| u32::try_from(c).ok()),
                    latency_ms: u32::try_from(a.latency_ms).unwrap_or_default(),
                    error: a.error.unwrap_or_default(),
                    error_class: a.error_class.map(|c| c.code().to_owned()).unwrap_or_default(),
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
