//! Control's writes to Kafka: test sends, and deliveries sent again.
//!
//! One producer serves the process, and each write is bounded by its request's deadline. A
//! producer that failed for good (librdkafka's fatal error: every write fails from then on) stops
//! the process, as it stops every stage ([`synap_kafka::stop_if_failed`]): the servers drain, the
//! exit names the failure ([`KafkaWriter::flush`]), and the restart brings a new producer. Left
//! running, control would answer every test send and resend with UNAVAILABLE while its health
//! checks said all was well.

use std::time::Duration;

use rdkafka::producer::FutureProducer;
use synap_kafka::{KafkaConfig, KafkaError, Outgoing, SendError, Topics, send_durably};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct KafkaWriter {
    producer: FutureProducer,
    topics: Topics,
    /// The process's shutdown: a write in progress stops with it, and a producer that failed for
    /// good starts it.
    shutdown: CancellationToken,
}

/// Why a write did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteFailure {
    /// The broker refuses this record and always will.
    Refused(String),
    /// Not acknowledged within the request's deadline (the broker unreachable, say).
    TimedOut,
    /// The process is stopping: shut down, or its producer failed for good.
    Stopping,
}

impl KafkaWriter {
    pub fn new(kafka: &KafkaConfig, shutdown: CancellationToken) -> Result<Self, KafkaError> {
        Ok(Self { producer: kafka.producer("synap-control")?, topics: kafka.topics(), shutdown })
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Writes `record` and waits for its acknowledgement, for at most `deadline`.
    pub async fn write(&self, record: &Outgoing, deadline: Duration) -> Result<(), WriteFailure> {
        match tokio::time::timeout(deadline, send_durably(&self.producer, record, &self.shutdown)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(SendError::Rejected(refusal))) => Err(WriteFailure::Refused(refusal)),
            Ok(Err(SendError::Abandoned)) => Err(WriteFailure::Stopping),
            Err(_) => Err(WriteFailure::TimedOut),
        }
    }

    /// Waits for what is still queued, before the process exits; the producer's failure, if it
    /// failed for good, for the exit to name.
    pub fn flush(&self) -> Result<(), KafkaError> {
        synap_kafka::flush(&self.producer)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::OwnedHeaders;
    use rdkafka::producer::Producer as _;

    use super::*;

    /// The producer failing for good (what librdkafka does when an idempotent producer's sequence
    /// breaks) ends the write at once and starts the process's shutdown, instead of failing this
    /// request and every one after it for as long as the process runs.
    #[tokio::test]
    async fn a_producer_that_failed_for_good_stops_control_instead_of_failing_every_request() {
        // No broker needed: the failure is the producer's own.
        let kafka = KafkaConfig { bootstrap_servers: "127.0.0.1:1".into(), ..Default::default() };
        let shutdown = CancellationToken::new();
        let writer = KafkaWriter::new(&kafka, shutdown.clone()).unwrap();
        let record = Outgoing {
            topic: writer.topics().deliveries(),
            key: b"sub".to_vec(),
            payload: b"x".to_vec(),
            headers: OwnedHeaders::new(),
        };
        // Unreachable, but healthy: the request times out and control keeps running.
        assert_eq!(writer.write(&record, Duration::from_millis(300)).await, Err(WriteFailure::TimedOut));
        assert!(!shutdown.is_cancelled());

        assert!(synap_kafka_configs::test_hooks::fail_for_good(writer.producer.client(), "fenced (test)"));
        let started = std::time::Instant::now();
        assert_eq!(writer.write(&record, Duration::from_secs(15)).await, Err(WriteFailure::Stopping));
        assert!(started.elapsed() < Duration::from_secs(10), "stopped at once: {:?}", started.elapsed());
        assert!(shutdown.is_cancelled(), "the process's shutdown began");
        let exit = writer.flush().unwrap_err().to_string();
        assert!(exit.contains("fenced (test)") && exit.contains("restart"), "{exit}");
    }
}
