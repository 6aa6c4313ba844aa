//! The sender stage: one delivery in; an attempt, its log record, and then either done, a retry
//! waiting in a tier topic, or the dead-letter topic with an operator event.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::message::{Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureProducer;
use synap_db::DbError;
use synap_db::attempts::Outcome;
use synap_kafka::{Handled, Outgoing, SendError, SetAside, Topics, deliveries, send_durably};
use synap_outbound::Policy;
use synap_proto::pipeline::v1::{AttemptLog, Delivery};
use synap_runtime::retry::{self, Stopped};
use synap_telemetry::metrics::metrics;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::attempt::{self, Attempted, ErrorClass};
use crate::breaker::{Admission, Breakers};
use crate::config::{MAX_SUBSCRIPTION_TIMEOUT_MS, SenderConfig};
use crate::lanes::{Lanes, Place};
use crate::limits::Limits;
use crate::log::LogQueue;
use crate::operator::{OperatorEvent, OperatorEvents};
use crate::schedule::{Next, RetrySchedule, tier_label};
use crate::targets::{Target, TargetCache};

pub struct Sender {
    pub producer: FutureProducer,
    pub http: reqwest::Client,
    pub policy: Policy,
    pub topics: Topics,
    pub targets: TargetCache,
    pub schedule: RetrySchedule,
    pub limits: Limits,
    /// Requests in flight over all subscriptions (`sender.max_in_flight`).
    pub requests: Semaphore,
    pub breakers: Breakers,
    pub lanes: Lanes,
    pub operator: OperatorEvents,
    /// `synap.deliveries.dlq`: deliveries that failed for good, and records set aside.
    pub dead_letters: synap_kafka::DeadLetters,
    /// The attempt log's batcher: the hot path stores through it directly.
    pub log: LogQueue,
    pub config: SenderConfig,
    pub shutdown: CancellationToken,
}

/// Where the delivery record was read.
struct Source {
    /// Its headers, which carry the trace context of the router's span.
    headers: Option<OwnedHeaders>,
    topic: String,
    partition: i32,
    offset: i64,
    /// When it was written: the scheduled time of a first attempt.
    written_at_ms: i64,
}

impl Sender {
    /// Called in read order: the delivery takes its place in its subscription's lane now, so
    /// that an ordered subscription's deliveries run in the order they were read.
    pub fn handle(
        self: Arc<Self>,
        message: Arc<OwnedMessage>,
    ) -> impl Future<Output = Handled> + Send + 'static {
        let decoded = Delivery::decode(message.payload().unwrap_or_default()).ok();
        let place = decoded.as_ref().filter(|d| !d.test_send).map(|d| self.lanes.join(&d.subscription_id));
        async move { self.process(message, decoded, place).await }
    }

    async fn process(
        &self,
        message: Arc<OwnedMessage>,
        decoded: Option<Delivery>,
        place: Option<Place>,
    ) -> Handled {
        let Some(mut delivery) = decoded else {
            return Handled::SetAside(SetAside::new(
                "undecodable_delivery",
                "not a synap.pipeline.v1.Delivery",
            ));
        };
        delivery.attempt = delivery.attempt.max(1);
        let source = Source {
            headers: message.headers().cloned(),
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            written_at_ms: message
                .timestamp()
                .to_millis()
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
        };
        let entry = match self.target(&delivery.subscription_id).await {
            Ok(entry) => entry,
            Err(Stopped::Shutdown) => return Handled::Abandoned,
            Err(Stopped::Permanent(error)) => {
                return Handled::SetAside(SetAside::new(
                    "subscription_unreadable",
                    format!("the subscription cannot be read: {error}"),
                ));
            }
        };
        let target = match entry.as_ref() {
            Some(t) if t.enabled || delivery.test_send => t.clone(),
            Some(_) => {
                // Logged as failed, so that `recover` can send it once the subscription is
                // enabled again.
                let attempted = Attempted::not_made(ErrorClass::Disabled, "subscription disabled".into());
                let log = self.log_record(&delivery, &attempted, Outcome::Failed, &source);
                return self.finish(self.write_log(log).await);
            }
            None => {
                tracing::info!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, "subscription deleted; delivery dropped");
                return Handled::Done;
            }
        };
        if delivery.test_send {
            return self.test_send(&delivery, &target, &source).await;
        }
        match place {
            Some(mut place) if target.options.ordered => {
                place.wait_turn().await;
                let handled = self.ordered(&mut delivery, &target, &source).await;
                drop(place);
                handled
            }
            place => {
                drop(place);
                self.unordered(&mut delivery, &target, &source).await
            }
        }
    }

    /// One attempt now; on failure the delivery waits in a retry tier, so the partition's other
    /// deliveries never wait for it.
    async fn unordered(&self, delivery: &mut Delivery, target: &Target, source: &Source) -> Handled {
        let capacity = target.options.max_in_flight.unwrap_or(self.config.max_in_flight_per_subscription);
        let slot = match self
            .limits
            .acquire(&delivery.subscription_id, capacity, target.options.rate_limit_per_sec)
            .await
        {
            Ok(slot) => slot,
            Err(refusal) => {
                // The subscription is stuck or swamped: wait in the first tier without using up
                // an attempt, and free this place in the consumer's buffer for other endpoints.
                tracing::debug!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, reason = refusal.code(), "subscription busy; deferred");
                metrics().deferred(refusal.code()).inc();
                let delay = self.schedule.shortest_tier().unwrap_or_default();
                return self.finish(self.schedule_retry(delivery.clone(), delay).await);
            }
        };
        let attempted = self.attempt(delivery, target, source).await;
        drop(slot);
        if attempted.delivered() {
            return self.delivered(delivery, &attempted, source).await;
        }
        match self.next_after(delivery, &attempted) {
            Next::Retry { attempt, delay } => {
                let log = self.log_record(delivery, &attempted, Outcome::Retrying, source);
                let mut retry = delivery.clone();
                retry.attempt = attempt;
                let (logged, scheduled) =
                    tokio::join!(self.write_log(log), self.schedule_retry(retry, delay));
                self.finish(logged.and(scheduled))
            }
            Next::Exhausted => self.give_up(delivery, &attempted, source).await,
        }
    }

    /// Strict FIFO: this delivery is the only one of its subscription in flight, and it retries
    /// in place (the ones behind it wait) until it is delivered or its schedule is used up.
    async fn ordered(&self, delivery: &mut Delivery, target: &Target, source: &Source) -> Handled {
        loop {
            let slot = self
                .limits
                .acquire_patiently(&delivery.subscription_id, 1, target.options.rate_limit_per_sec)
                .await;
            let attempted = self.attempt(delivery, target, source).await;
            drop(slot);
            if attempted.delivered() {
                return self.delivered(delivery, &attempted, source).await;
            }
            let Next::Retry { attempt, delay } = self.next_after(delivery, &attempted) else {
                return self.give_up(delivery, &attempted, source).await;
            };
            let log = self.log_record(delivery, &attempted, Outcome::Retrying, source);
            if self.write_log(log).await.is_err() {
                return Handled::Abandoned;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => return Handled::Abandoned,
            }
            delivery.attempt = attempt;
            delivery.scheduled_at_ms = chrono::Utc::now().timestamp_millis();
        }
    }

    /// A test send from the control API: one attempt, logged, no retries, no effect on the
    /// endpoint's circuit or the subscription's failure state.
    async fn test_send(&self, delivery: &Delivery, target: &Target, source: &Source) -> Handled {
        let attempted = self.request(delivery, target, source).await;
        self.trace(delivery, &attempted);
        let result = if attempted.delivered() { Outcome::Delivered } else { Outcome::Failed };
        let log = self.log_record(delivery, &attempted, result, source);
        self.finish(self.write_log(log).await)
    }

    async fn delivered(&self, delivery: &Delivery, attempted: &Attempted, source: &Source) -> Handled {
        metrics().delivery_finished("delivered", attempted.status, delivery.ingested_at_ms);
        let log = self.log_record(delivery, attempted, Outcome::Delivered, source);
        self.finish(self.write_log(log).await)
    }

    /// What follows a failed attempt: the schedule, except that 410 Gone ends it at once.
    fn next_after(&self, delivery: &Delivery, attempted: &Attempted) -> Next {
        if attempted.gone() {
            Next::Exhausted
        } else {
            self.schedule.next(delivery.attempt, attempted.retry_after)
        }
    }

    /// Makes the attempt unless the endpoint's circuit is open.
    async fn attempt(&self, delivery: &Delivery, target: &Target, source: &Source) -> Attempted {
        let endpoint = &target.endpoint;
        let attempted = if let Admission::Open { probe_in } = self.breakers.admit(endpoint) {
            // Retried no sooner than the circuit's probe (earlier tries could only find it open
            // again, a trip through a retry tier each): one full cool-down, which is never before
            // the probe and is a tier of its own. While a probe is out, the schedule decides.
            let cooldown = Duration::from_millis(self.config.breaker_cooldown_ms);
            Attempted {
                retry_after: (!probe_in.is_zero()).then_some(cooldown),
                ..Attempted::not_made(
                    ErrorClass::CircuitOpen,
                    "endpoint circuit open after consecutive failures".into(),
                )
            }
        } else {
            let attempted = self.request(delivery, target, source).await;
            // A refusal by the address policy says nothing about the endpoint's health.
            if attempted.error_class != Some(ErrorClass::Refused) {
                if self.breakers.record(endpoint, attempted.delivered()) {
                    tracing::warn!(subscription_id = %delivery.subscription_id, "endpoint circuit opened");
                }
                metrics().circuits_open().set(self.breakers.open_count() as i64);
            }
            attempted
        };
        self.trace(delivery, &attempted);
        attempted
    }

    /// The HTTP request itself, in its own span (a child of the router's) and measured.
    async fn request(&self, delivery: &Delivery, target: &Target, source: &Source) -> Attempted {
        let span = synap_telemetry::attempt_span(
            source.headers.as_ref(),
            &delivery.event_id,
            &delivery.subscription_id,
            delivery.attempt,
        );
        let timeout = self.timeout(target);
        let _request = self.requests.acquire().await.expect("the request semaphore is never closed");
        let attempted =
            attempt::attempt(&self.http, &self.policy, delivery, target, delivery.attempt, timeout)
                .instrument(span)
                .await;
        metrics().attempt_finished(&attempted.code(), attempted.status, attempted.latency);
        attempted
    }

    fn timeout(&self, target: &Target) -> Duration {
        let ms = target.options.timeout_ms.map(u64::from).unwrap_or(self.config.request_timeout_ms);
        Duration::from_millis(ms.min(MAX_SUBSCRIPTION_TIMEOUT_MS.max(self.config.request_timeout_ms)))
    }

    /// The final failure: logged as failed, dead-lettered, announced to the operator.
    async fn give_up(&self, delivery: &Delivery, attempted: &Attempted, source: &Source) -> Handled {
        let reason = if attempted.gone() { "gone".to_owned() } else { attempted.code() };
        metrics().delivery_finished("dead_lettered", attempted.status, 0);
        let log = self.log_record(delivery, attempted, Outcome::Failed, source);
        if self.write_log(log).await.is_err() {
            return Handled::Abandoned;
        }
        let detail = attempted.error.clone().unwrap_or_else(|| reason.clone());
        tracing::warn!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, %reason, attempts = delivery.attempt, "delivery failed for good; dead-lettered");
        // The delivery as it stands after its last attempt, keyed and traced like the original.
        let record = deliveries::record(self.topics.deliveries_dead_letter(), delivery);
        let at = synap_kafka::Source {
            topic: source.topic.clone(),
            partition: source.partition,
            offset: source.offset,
        };
        let why = SetAside::new(reason.clone(), detail);
        let stored = self
            .dead_letters
            .record(&record.key, &record.payload, Some(&record.headers), &at, &why, &self.shutdown)
            .await;
        if stored == Handled::Abandoned {
            return Handled::Abandoned;
        }
        let event = OperatorEvent::DeliveryFailed {
            portal_id: delivery.portal_id.clone(),
            subscription_id: delivery.subscription_id.clone(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            attempts: delivery.attempt,
            reason,
        };
        self.finish(self.operator.emit(event).await)
    }

    /// Puts the delivery in the tier that fits `delay` (or straight back on the deliveries topic
    /// when there is no delay).
    async fn schedule_retry(&self, mut delivery: Delivery, delay: Duration) -> Result<(), SendError> {
        let due = chrono::Utc::now().timestamp_millis() + delay.as_millis() as i64;
        delivery.due_at_ms = due;
        delivery.scheduled_at_ms = due;
        let topic = match self.schedule.tier_for(delay) {
            Some(tier) if !delay.is_zero() => self.topics.retry_tier(&tier_label(tier)),
            _ => self.topics.deliveries(),
        };
        send_durably(&self.producer, &deliveries::record(topic, &delivery), &self.shutdown).await
    }

    fn log_record(
        &self,
        delivery: &Delivery,
        attempted: &Attempted,
        outcome: Outcome,
        source: &Source,
    ) -> AttemptLog {
        let finished = attempted.sent_at + chrono::Duration::from_std(attempted.latency).unwrap_or_default();
        let scheduled_at_ms =
            if delivery.scheduled_at_ms > 0 { delivery.scheduled_at_ms } else { source.written_at_ms };
        AttemptLog {
            attempt_id: uuid::Uuid::now_v7().to_string(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            portal_id: delivery.portal_id.clone(),
            subscription_id: delivery.subscription_id.clone(),
            attempt: delivery.attempt,
            scheduled_at_ms,
            sent_at_ms: attempted.sent_at.timestamp_millis(),
            finished_at_ms: finished.timestamp_millis(),
            outcome: outcome.code().into(),
            error_class: attempted.error_class.map(|c| c.code().to_owned()).unwrap_or_default(),
            error: attempted.error.clone().unwrap_or_default(),
            status_code: attempted.status.map(u32::from).unwrap_or(0),
            latency_ms: attempted.latency.as_millis().min(u32::MAX as u128) as u32,
            response_headers: attempted.response_headers.clone().unwrap_or_default(),
            response_body: if outcome == Outcome::Delivered && !self.config.store_success_bodies {
                String::new()
            } else {
                attempted.response_body.clone().unwrap_or_default()
            },
            test_send: delivery.test_send,
            source_topic: source.topic.clone(),
            source_partition: source.partition,
            source_offset: source.offset,
        }
    }

    /// Stores the attempt's log row: straight into PostgreSQL when it answers in time, otherwise
    /// through the attempts topic (see [`crate::log`]).
    async fn write_log(&self, log: AttemptLog) -> Result<(), SendError> {
        let within = Duration::from_millis(self.config.log_direct_wait_ms);
        let log = Arc::new(log);
        if !within.is_zero() && self.log.store(log.clone(), within).await {
            return Ok(());
        }
        let record = Outgoing {
            topic: self.topics.attempts(),
            key: log.subscription_id.clone().into_bytes(),
            payload: log.encode_to_vec(),
            headers: OwnedHeaders::new(),
        };
        send_durably(&self.producer, &record, &self.shutdown).await
    }

    fn finish(&self, result: Result<(), SendError>) -> Handled {
        match result {
            Ok(()) => Handled::Done,
            Err(SendError::Rejected(reason)) => {
                // Only an oversized record is refused; the delivery record fit its topic, so this
                // does not happen in practice. Re-reading would be refused again.
                tracing::error!(%reason, "follow-up record refused by the broker");
                Handled::Done
            }
            Err(SendError::Abandoned) => Handled::Abandoned,
        }
    }

    /// One log line per attempt: at `info` for failures and test sends; at `debug` for ordinary
    /// successes, which the attempt log and the metrics already count (a line per delivery at
    /// thousands per second is noise to whoever reads the logs, and costs CPU).
    fn trace(&self, delivery: &Delivery, attempted: &Attempted) {
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    event_id = %delivery.event_id,
                    subscription_id = %delivery.subscription_id,
                    attempt = delivery.attempt,
                    outcome = %attempted.code(),
                    latency_ms = attempted.latency.as_millis() as u64,
                    test_send = delivery.test_send,
                    "delivery attempt"
                )
            };
        }
        if attempted.delivered() && !delivery.test_send {
            line!(debug);
        } else {
            line!(info);
        }
    }

    /// Reads the target, retrying while the database is unavailable (and nothing is cached).
    async fn target(&self, subscription_id: &str) -> Result<Arc<Option<Target>>, Stopped<Arc<DbError>>> {
        retry::transient(
            &self.shutdown,
            Duration::from_millis(100),
            || self.targets.get(subscription_id),
            |error, retry_in| tracing::warn!(subscription_id, %error, ?retry_in, "cannot read subscription"),
        )
        .await
    }
}
