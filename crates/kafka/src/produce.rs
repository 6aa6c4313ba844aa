//! Producing a record until the broker acknowledges it.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

/// A record to write.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: OwnedHeaders,
}

/// Why a record was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The process is shutting down before the write was acknowledged.
    Abandoned,
    /// The broker refuses this record and always will (e.g. it is too large for the topic).
    Rejected(String),
}

/// Errors that retrying the same record cannot fix.
fn is_permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidRecord)
    )
}

/// Writes `record` and waits for the acknowledgement (acks=all), retrying with capped backoff
/// while the broker is unavailable. Only shutdown or a permanent refusal stops it: a record whose
/// write failed must not have its input offset committed.
pub async fn send_durably(
    producer: &FutureProducer,
    record: &Outgoing,
    shutdown: &CancellationToken,
) -> Result<(), SendError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let future = producer.send(
            FutureRecord::to(&record.topic)
                .key(&record.key)
                .payload(&record.payload)
                .headers(record.headers.clone()),
            Timeout::After(Duration::from_secs(5)),
        );
        let result = tokio::select! {
            result = future => result,
            _ = shutdown.cancelled() => return Err(SendError::Abandoned),
        };
        match result {
            Ok(_) => return Ok(()),
            Err((error, _)) if is_permanent(&error) => {
                return Err(SendError::Rejected(error.to_string()));
            }
            Err((error, _)) => {
                tracing::warn!(topic = %record.topic, %error, retry_in = ?backoff, "produce failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return Err(SendError::Abandoned),
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Waits for every queued record to be acknowledged, before the process exits.
pub fn flush(producer: &FutureProducer) {
    use rdkafka::producer::Producer;
    if let Err(e) = producer.flush(Timeout::After(Duration::from_secs(10))) {
        tracing::warn!(error = %e, "producer flush incomplete");
    }
}
