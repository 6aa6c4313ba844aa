//! Producing a record until the broker acknowledges it.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use synap_runtime::retry::{self, Stopped};
use synap_runtime::{Classify, Fault};
use tokio_util::sync::CancellationToken;

use crate::consume::Turn;

/// A record to write.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub topic: String,
    /// Raw bytes: a dead letter keeps the key it was read with, whatever it is.
    pub key: Vec<u8>,
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

/// A failed write, sorted by what retrying it can do.
#[derive(Debug)]
struct ProduceError(KafkaError);

impl Classify for ProduceError {
    /// Only a record the broker refuses for what it is fails for good; an unreachable broker,
    /// a leader election or a full queue clears by itself.
    fn fault(&self) -> Fault {
        match self.0.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::MessageBatchTooLarge,
            ) => Fault::Permanent,
            _ => Fault::Transient,
        }
    }
}

async fn produce_once(producer: &FutureProducer, record: &Outgoing) -> Result<(), ProduceError> {
    producer
        .send(
            FutureRecord::to(&record.topic)
                .key(&record.key)
                .payload(&record.payload)
                .headers(record.headers.clone()),
            Timeout::After(Duration::from_secs(5)),
        )
        .await
        .map(|_| ())
        .map_err(|(error, _)| ProduceError(error))
}

/// Writes `record` and waits for the acknowledgement (acks=all), retrying with capped backoff
/// while the broker is unavailable. Only shutdown or a permanent refusal stops it: a record whose
/// write failed must not have its input offset committed.
///
/// A producer that has failed for good stops it too: it cancels `shutdown` and returns
/// [`SendError::Abandoned`] ([`stop_if_failed`]).
pub async fn send_durably(
    producer: &FutureProducer,
    record: &Outgoing,
    shutdown: &CancellationToken,
) -> Result<(), SendError> {
    let sent = retry::transient(
        shutdown,
        Duration::from_millis(100),
        || produce_once(producer, record),
        |ProduceError(error), retry_in| {
            if !stop_if_failed(producer, shutdown) {
                tracing::warn!(topic = %record.topic, %error, ?retry_in, "produce failed");
            }
        },
    );
    // Shutdown also interrupts a write in progress, not only the wait between two.
    tokio::select! {
        result = sent => result.map_err(|stopped| match stopped {
            Stopped::Shutdown => SendError::Abandoned,
            Stopped::Permanent(ProduceError(error)) => SendError::Rejected(error.to_string()),
        }),
        _ = shutdown.cancelled() => Err(SendError::Abandoned),
    }
}

/// Writes `records` in the caller's [`Turn`]: waits for it, hands the records to the producer
/// (whose queue keeps their order within a partition), passes the turn on at once, and then waits
/// for the acknowledgements as [`send_durably`] does. So a stage's output keeps its input's order
/// while many records are acknowledged at once. Only a write that fails after its turn and is
/// retried (the broker unreachable past `message.timeout.ms`) can land behind later records.
pub async fn send_in_turn(
    producer: &FutureProducer,
    records: &[Outgoing],
    mut turn: Turn,
    shutdown: &CancellationToken,
) -> Result<(), SendError> {
    tokio::select! {
        _ = turn.wait() => {}
        _ = shutdown.cancelled() => return Err(SendError::Abandoned),
    }
    let mut pending = Vec::with_capacity(records.len());
    for record in records {
        loop {
            let queued = producer.send_result(
                FutureRecord::to(&record.topic)
                    .key(&record.key)
                    .payload(&record.payload)
                    .headers(record.headers.clone()),
            );
            match queued {
                Ok(delivery) => {
                    pending.push((record, Some(delivery)));
                    break;
                }
                // The producer's queue is full: wait, keeping the turn, so the order holds.
                Err((error, _)) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                        _ = shutdown.cancelled() => return Err(SendError::Abandoned),
                    }
                }
                // Not queued at all: written below, the durable way.
                Err(_) => {
                    pending.push((record, None));
                    break;
                }
            }
        }
    }
    drop(turn);
    for (record, delivery) in pending {
        let acknowledged = match delivery {
            Some(delivery) => tokio::select! {
                result = delivery => matches!(result, Ok(Ok(_))),
                _ = shutdown.cancelled() => return Err(SendError::Abandoned),
            },
            None => false,
        };
        if !acknowledged {
            send_durably(producer, record, shutdown).await?;
        }
    }
    Ok(())
}

/// Cancels `shutdown` if `producer` has failed for good, and says whether it has.
///
/// librdkafka makes an idempotent producer unusable after a fatal error (a broken sequence, a
/// fenced epoch, `rd_kafka_fatal_error`): every write fails from then on, so retrying would hold
/// the stage's partitions for ever. A stage passes its process-wide shutdown token: the stage
/// then drains with nothing committed past its last durable write, the process exits with the
/// error ([`flush`]), and its restart brings a new producer that writes what was left.
pub fn stop_if_failed(producer: &FutureProducer, shutdown: &CancellationToken) -> bool {
    use rdkafka::producer::Producer;
    let Some((code, reason)) = producer.client().fatal_error() else {
        return false;
    };
    if !shutdown.is_cancelled() {
        tracing::error!(?code, %reason, "the Kafka producer failed for good; stopping, so that a restart brings a new one");
        shutdown.cancel();
    }
    true
}

/// Waits for every queued record to be acknowledged, before the process exits. An error when the
/// producer failed for good ([`stop_if_failed`]), for the process to exit with.
pub fn flush(producer: &FutureProducer) -> Result<(), crate::KafkaError> {
    use rdkafka::producer::Producer;
    if let Some((_, reason)) = producer.client().fatal_error() {
        return Err(crate::KafkaError::ProducerFailed(reason));
    }
    if let Err(e) = producer.flush(Timeout::After(Duration::from_secs(10))) {
        tracing::warn!(error = %e, "producer flush incomplete");
    }
    Ok(())
}

#[cfg(test)]
mod fatal_tests {
    use rdkafka::producer::Producer;

    use super::*;

    /// What librdkafka does to an idempotent producer whose sequence broke: every write fails
    /// from then on. Retrying would hold the stage's partitions for ever; instead the write
    /// stops, the process's shutdown begins and the exit carries the reason.
    #[tokio::test]
    async fn a_producer_that_failed_for_good_stops_the_stage_instead_of_retrying() {
        // No broker needed: the failure is the producer's own.
        let config = crate::KafkaConfig { bootstrap_servers: "127.0.0.1:1".into(), ..Default::default() };
        let producer = config.producer("fatal-test").unwrap();
        let shutdown = CancellationToken::new();
        assert!(!stop_if_failed(&producer, &shutdown));
        assert!(flush(&producer).is_ok());

        assert!(synap_kafka_configs::test_hooks::fail_for_good(producer.client(), "broken sequence (test)"));
        let record =
            Outgoing { topic: "t".into(), key: vec![], payload: b"x".to_vec(), headers: OwnedHeaders::new() };
        let sent = tokio::time::timeout(Duration::from_secs(10), send_durably(&producer, &record, &shutdown))
            .await
            .expect("the write stops instead of retrying for ever");
        assert_eq!(sent, Err(SendError::Abandoned));
        assert!(shutdown.is_cancelled(), "the process's shutdown began");
        let error = flush(&producer).unwrap_err();
        assert!(error.to_string().contains("broken sequence (test)"), "{error}");
    }
}
