//! Everything the sender's decisions reach outside its memory, behind one small trait: the
//! subscription's target, the HTTP exchange, and every record it writes (deliveries back to a
//! retry tier, dead letters, operator events, the attempt log, circuit transitions).
//!
//! [`Live`] is production: Kafka, PostgreSQL and the customer's endpoint. Unit tests use an
//! in-memory implementation that answers from a script and records what it was asked to do, so
//! that retry, dead-letter, circuit, deferral and ordered-mode decisions ([`crate::stage`]) are
//! tested with paused time in microseconds. The stage is generic over it: no dynamic dispatch
//! on the hot path.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::FutureProducer;
use synap_db::DbError;
use synap_db::circuits::Transition;
use synap_kafka::{
    DeadLetters, Handled, Outgoing, SendError, SetAside, Source, Topics, deliveries, send_durably,
};
use synap_outbound::Policy;
use synap_proto::pipeline::v1::{AttemptLog, Delivery};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::attempt::{self, Attempted};
use crate::circuit_log::CircuitLog;
use crate::log::LogQueue;
use crate::operator::{OperatorEvent, OperatorEvents};
use crate::schedule::tier_label;
use crate::targets::{Target, TargetCache};

/// Where a delivery record goes back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The deliveries topic: attempted again as soon as it is read.
    Deliveries,
    /// The retry tier of this delay, which holds it until it is due.
    Tier(Duration),
}

pub trait Io: Send + Sync + 'static {
    /// The subscription's target; `None` when it was deleted. The caller retries transient
    /// errors.
    fn target(
        &self,
        subscription_id: &str,
    ) -> impl Future<Output = Result<Arc<Option<Target>>, Arc<DbError>>> + Send;

    /// One HTTP request of `delivery` to `target`, in a span that continues the trace of `trace`
    /// (the headers of the delivery record read).
    fn post(
        &self,
        delivery: &Delivery,
        target: &Target,
        trace: Option<&OwnedHeaders>,
        timeout: Duration,
    ) -> impl Future<Output = Attempted> + Send;

    /// Writes `delivery` to `to`, in the trace of `trace`; acknowledged or refused for good.
    fn send(
        &self,
        to: Destination,
        delivery: &Delivery,
        trace: Option<&OwnedHeaders>,
    ) -> impl Future<Output = Result<(), SendError>> + Send;

    /// Sets `delivery` (as it stands after its last attempt) aside in the dead-letter topic.
    /// `Done` once stored; `Abandoned` only at shutdown.
    fn dead_letter(
        &self,
        delivery: &Delivery,
        trace: Option<&OwnedHeaders>,
        source: &Source,
        why: &SetAside,
    ) -> impl Future<Output = Handled> + Send;

    /// Tells the operator. `Done` once written (or refused for good, which is counted);
    /// `Abandoned` only at shutdown.
    fn announce(&self, event: OperatorEvent) -> impl Future<Output = Handled> + Send;

    /// Stores an attempt-log record.
    fn log(&self, record: Arc<AttemptLog>) -> impl Future<Output = Result<(), SendError>> + Send;

    /// Sets aside an attempt-log record that cannot be stored. `Abandoned` only at shutdown.
    fn set_aside_log(&self, record: &AttemptLog, why: &SetAside) -> impl Future<Output = Handled> + Send;

    /// Records a circuit transition, best effort: never waits, a failure is only logged.
    fn circuit_changed(&self, transition: Transition);
}

/// Production: the customer's endpoint over HTTP, Kafka and PostgreSQL.
pub struct Live {
    pub producer: FutureProducer,
    pub http: reqwest::Client,
    pub policy: Policy,
    /// Requests in flight over all subscriptions (`sender.max_in_flight`).
    pub requests: Semaphore,
    pub topics: Topics,
    /// Each retry tier's topic, by its delay.
    pub tier_topics: Vec<(Duration, String)>,
    pub targets: TargetCache,
    pub operator: OperatorEvents,
    /// `synap.deliveries.dlq`: deliveries that failed for good, and records set aside.
    pub dead_letters: DeadLetters,
    /// The attempt log's batcher: the hot path stores through it directly.
    pub log: LogQueue,
    /// How long a row may take to be stored directly before it goes through the attempts topic.
    pub log_direct_wait: Duration,
    pub circuits: CircuitLog,
    pub shutdown: CancellationToken,
}

impl Live {
    fn topic(&self, to: Destination) -> String {
        match to {
            Destination::Deliveries => self.topics.deliveries(),
            Destination::Tier(delay) => match self.tier_topics.iter().find(|(d, _)| *d == delay) {
                Some((_, topic)) => topic.clone(),
                None => self.topics.retry_tier(&tier_label(delay)),
            },
        }
    }
}

impl Io for Live {
    async fn target(&self, subscription_id: &str) -> Result<Arc<Option<Target>>, Arc<DbError>> {
        self.targets.get(subscription_id).await
    }

    async fn post(
        &self,
        delivery: &Delivery,
        target: &Target,
        trace: Option<&OwnedHeaders>,
        timeout: Duration,
    ) -> Attempted {
        // A child of the router's span, through the delivery record's headers.
        let span = synap_telemetry::attempt_span(
            trace,
            &delivery.event_id,
            &delivery.subscription_id,
            delivery.attempt,
        );
        let _request = self.requests.acquire().await.expect("the request semaphore is never closed");
        attempt::attempt(&self.http, &self.policy, delivery, target, delivery.attempt, timeout)
            .instrument(span)
            .await
    }

    async fn send(
        &self,
        to: Destination,
        delivery: &Delivery,
        trace: Option<&OwnedHeaders>,
    ) -> Result<(), SendError> {
        let record = deliveries::record_in_trace(self.topic(to), delivery, trace);
        send_durably(&self.producer, &record, &self.shutdown).await
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        trace: Option<&OwnedHeaders>,
        source: &Source,
        why: &SetAside,
    ) -> Handled {
        // Keyed and traced like the original, so that a redrive continues the event's trace.
        let record = deliveries::record_in_trace(self.dead_letters.topic().to_owned(), delivery, trace);
        self.dead_letters
            .record(&record.key, &record.payload, Some(&record.headers), source, why, &self.shutdown)
            .await
    }

    async fn announce(&self, event: OperatorEvent) -> Handled {
        self.operator.emit(event).await
    }

    async fn log(&self, record: Arc<AttemptLog>) -> Result<(), SendError> {
        if !self.log_direct_wait.is_zero() && self.log.store(record.clone(), self.log_direct_wait).await {
            return Ok(());
        }
        let outgoing = Outgoing {
            topic: self.topics.attempts(),
            key: record.subscription_id.clone().into_bytes(),
            payload: record.encode_to_vec(),
            headers: OwnedHeaders::new(),
        };
        send_durably(&self.producer, &outgoing, &self.shutdown).await
    }

    async fn set_aside_log(&self, record: &AttemptLog, why: &SetAside) -> Handled {
        let source = crate::log::never_written(&self.topics.attempts());
        self.dead_letters
            .record(
                record.subscription_id.as_bytes(),
                &record.encode_to_vec(),
                None,
                &source,
                why,
                &self.shutdown,
            )
            .await
    }

    fn circuit_changed(&self, transition: Transition) {
        self.circuits.record(transition);
    }
}
