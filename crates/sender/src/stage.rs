//! The sender stage: one delivery in; an attempt, its log record, and then either done, a retry
//! waiting in a tier topic, or the dead-letter topic with an operator event.
//!
//! Every way a delivery can end is decided here, and each failure is one of two kinds: transient
//! (the database or the broker unavailable: retried with backoff, the record's offset waiting)
//! or permanent (a secret that cannot be opened, a record the broker refuses, the schedule used
//! up: the delivery fails for good, with an attempt-log row, a dead letter with its reason and an
//! operator event). [`Handled::Abandoned`], which holds the partition's offset back, is returned
//! only at shutdown. What the decisions reach outside memory goes through [`Io`].

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use synap_db::DbError;
use synap_db::attempts::Outcome;
use synap_db::circuits::{CircuitState, Transition};
use synap_kafka::{Handled, SendError, SetAside, Source};
use synap_proto::pipeline::v1::{AttemptLog, Delivery};
use synap_runtime::retry::{self, Stopped};
use synap_telemetry::metrics::metrics;
use tokio_util::sync::CancellationToken;

use crate::attempt::{Attempted, ErrorClass};
use crate::breaker::{Admission, Breakers, Change, Health, Ticket};
use crate::config::SenderConfig;
use crate::io::{Destination, Io};
use crate::lanes::{Lanes, Place};
use crate::limits::Limits;
use crate::operator::OperatorEvent;
use crate::schedule::{Next, RetrySchedule};
use crate::targets::Target;
use synap_db::delivery_state::MAX_TIMEOUT_MS;

/// Dead-letter reasons (`synap-dlq-reason`) besides the last attempt's outcome code (`http_500`,
/// `timeout`, …).
pub mod reasons {
    /// The endpoint answered 410 Gone.
    pub const GONE: &str = "gone";
    /// A secret of the subscription cannot be opened with the configured key.
    pub const SECRET_UNREADABLE: &str = "secret_unreadable";
    /// The subscription's row cannot be read (a stored value this code cannot use).
    pub const SUBSCRIPTION_UNREADABLE: &str = "subscription_unreadable";
    /// The broker refused the record that would have retried the delivery (too large for the
    /// tier or the deliveries topic).
    pub const RETRY_REFUSED: &str = "retry_refused";
    /// The broker refused an attempt-log record (the record itself is the dead letter).
    pub const ATTEMPT_LOG_REFUSED: &str = "attempt_log_refused";
    /// The record on the deliveries topic or a tier is not a `synap.pipeline.v1.Delivery`.
    pub const UNDECODABLE_DELIVERY: &str = "undecodable_delivery";
}

/// How a delivery ended, the `outcome` label of `synap_deliveries_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Delivered,
    /// Failed for good: in the dead-letter topic.
    DeadLettered,
    /// Not sent: the subscription was deleted, or disabled, after the delivery was routed.
    Dropped,
}

impl Finished {
    pub fn code(self) -> &'static str {
        match self {
            Finished::Delivered => "delivered",
            Finished::DeadLettered => "dead_lettered",
            Finished::Dropped => "dropped",
        }
    }
}

/// How often an ordered delivery looks again while another delivery probes its circuit (the probe
/// ends within its request timeout).
const PROBE_POLL: Duration = Duration::from_secs(1);

pub struct Sender<I> {
    pub io: I,
    pub schedule: RetrySchedule,
    pub limits: Limits,
    pub breakers: Breakers,
    pub lanes: Lanes,
    pub config: SenderConfig,
    pub shutdown: CancellationToken,
}

impl<I: Io> Sender<I> {
    /// Called in read order: the delivery takes its place in its subscription's lane now, so
    /// that an ordered subscription's deliveries run in the order they were read.
    ///
    /// `tenure` ends when this consumer no longer owns the record's partition (revoked or shutting
    /// down, [`synap_kafka::Turn::tenure`]): from then on no request is started for it and no
    /// wait goes on. This is what keeps an ordered subscription in order across a rebalance: the
    /// partition's new owner starts from the first delivery not yet done, so one sent here after
    /// that point could overtake it.
    pub fn handle(
        self: Arc<Self>,
        message: Arc<OwnedMessage>,
        tenure: CancellationToken,
    ) -> impl Future<Output = Handled> + Send + 'static {
        let decoded = Delivery::decode(message.payload().unwrap_or_default()).ok();
        let place = decoded.as_ref().filter(|d| !d.test_send).map(|d| self.lanes.join(&d.subscription_id));
        async move { self.process(&message, decoded, place, &tenure).await }
    }

    async fn process(
        &self,
        read: &OwnedMessage,
        decoded: Option<Delivery>,
        place: Option<Place>,
        tenure: &CancellationToken,
    ) -> Handled {
        let Some(mut delivery) = decoded else {
            return Handled::SetAside(SetAside::new(
                reasons::UNDECODABLE_DELIVERY,
                "not a synap.pipeline.v1.Delivery",
            ));
        };
        delivery.attempt = delivery.attempt.max(1);
        // Boxed, and dropped once read: reading a target may go to PostgreSQL, and that future
        // (11 KB: the cache's loader with three pipelined queries, and the retry around it) was
        // otherwise most of every delivery's (12 KB of 12), for its whole life. A delivery spends
        // that life mostly waiting (for its turn, its subscription's slot, the request semaphore)
        // and the consumer holds `max_buffered` of them: boxing it took 25 MiB off the sender's
        // peak in a burst (docs/BENCHMARKS.md).
        let entry = match Box::pin(self.target(&delivery.subscription_id)).await {
            Ok(entry) => entry,
            Err(Stopped::Shutdown) => return Handled::Abandoned,
            Err(Stopped::Permanent(error)) => return self.unreadable(&delivery, &error, read).await,
        };
        let target = match entry.as_ref() {
            Some(t) if t.enabled || delivery.test_send => t,
            Some(_) => {
                // Logged as failed, so that `recover` can send it once the subscription is
                // enabled again.
                metrics().delivery_finished(Finished::Dropped.code(), None, 0);
                let attempted = Attempted::not_made(ErrorClass::Disabled, "subscription disabled".into());
                return self.log(&delivery, &attempted, Outcome::Failed, read).await;
            }
            None => {
                if !delivery.test_send {
                    metrics().delivery_finished(Finished::Dropped.code(), None, 0);
                }
                tracing::info!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, "subscription deleted; delivery dropped");
                return Handled::Done;
            }
        };
        if delivery.test_send {
            return self.test_send(&delivery, target, read).await;
        }
        match place {
            Some(mut place) if target.options.ordered => {
                tokio::select! {
                    biased;
                    _ = tenure.cancelled() => return Handled::Abandoned,
                    _ = place.wait_turn() => {}
                }
                let handled = self.ordered(&mut delivery, target, read, tenure).await;
                drop(place);
                handled
            }
            place => {
                drop(place);
                if tenure.is_cancelled() {
                    return Handled::Abandoned;
                }
                self.unordered(&delivery, target, read).await
            }
        }
    }

    /// One attempt now; on failure the delivery waits in a retry tier, so the partition's other
    /// deliveries never wait for it.
    async fn unordered(&self, delivery: &Delivery, target: &Target, read: &OwnedMessage) -> Handled {
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
                let delay = self.schedule.shortest_tier().unwrap_or_default();
                return self.defer(delivery, delay, refusal.code(), read).await;
            }
        };
        let ticket = match self.breakers.admit(&target.circuit) {
            Admission::Send(ticket) => ticket,
            Admission::Open { .. } => {
                slot.unused();
                // Retried no sooner than the circuit's probe (earlier tries could only find it
                // open again): one full cool-down, which is a tier of its own.
                return self.defer(delivery, self.breakers.cooldown(), circuit_open(), read).await;
            }
        };
        let attempted = self.request(delivery, target, read).await;
        drop(slot);
        self.record_health(ticket, delivery, target, &attempted);
        if attempted.delivered() {
            return self.delivered(delivery, &attempted, read).await;
        }
        match self.next_after(delivery, &attempted) {
            Next::Retry { attempt, delay } => self.retry(delivery, &attempted, attempt, delay, read).await,
            Next::Exhausted => self.give_up(delivery, &attempted, read).await,
        }
    }

    /// Strict FIFO: this delivery is the only one of its subscription in flight, and it retries
    /// in place (the ones behind it wait) until it is delivered or its schedule is used up.
    async fn ordered(
        &self,
        delivery: &mut Delivery,
        target: &Target,
        read: &OwnedMessage,
        tenure: &CancellationToken,
    ) -> Handled {
        loop {
            if tenure.is_cancelled() {
                return Handled::Abandoned;
            }
            let slot = self
                .limits
                .acquire_patiently(&delivery.subscription_id, 1, target.options.rate_limit_per_sec)
                .await;
            let ticket = match self.breakers.admit(&target.circuit) {
                Admission::Send(ticket) => ticket,
                Admission::Open { probe_in } => {
                    // Waits in place for the probe, using up no attempt.
                    slot.unused();
                    metrics().deferred(circuit_open()).inc();
                    let wait =
                        if probe_in.is_zero() { PROBE_POLL.min(self.breakers.cooldown()) } else { probe_in };
                    if !sleep(wait, tenure).await {
                        return Handled::Abandoned;
                    }
                    continue;
                }
            };
            let attempted = self.request(delivery, target, read).await;
            drop(slot);
            self.record_health(ticket, delivery, target, &attempted);
            if attempted.delivered() {
                return self.delivered(delivery, &attempted, read).await;
            }
            let Next::Retry { attempt, delay } = self.next_after(delivery, &attempted) else {
                return self.give_up(delivery, &attempted, read).await;
            };
            if self.log(delivery, &attempted, Outcome::Retrying, read).await == Handled::Abandoned {
                return Handled::Abandoned;
            }
            if !sleep(delay, tenure).await {
                return Handled::Abandoned;
            }
            delivery.attempt = attempt;
            delivery.scheduled_at_ms = chrono::Utc::now().timestamp_millis();
        }
    }

    /// A test send from the control API: one attempt, logged, no retries, no effect on the
    /// endpoint's circuit or the subscription's failure state.
    async fn test_send(&self, delivery: &Delivery, target: &Target, read: &OwnedMessage) -> Handled {
        let attempted = self.request(delivery, target, read).await;
        let outcome = if attempted.delivered() { Outcome::Delivered } else { Outcome::Failed };
        self.log(delivery, &attempted, outcome, read).await
    }

    async fn delivered(&self, delivery: &Delivery, attempted: &Attempted, read: &OwnedMessage) -> Handled {
        metrics().delivery_finished(Finished::Delivered.code(), attempted.status, delivery.ingested_at_ms);
        self.log(delivery, attempted, Outcome::Delivered, read).await
    }

    /// What follows a failed attempt: the schedule, except that 410 Gone ends it at once.
    fn next_after(&self, delivery: &Delivery, attempted: &Attempted) -> Next {
        if attempted.gone() {
            Next::Exhausted
        } else {
            self.schedule.next(delivery.attempt, attempted.retry_after)
        }
    }

    /// The attempt's effect on its circuit; a circuit that opens or closes is announced in the
    /// log and PostgreSQL (best effort, without waiting; the breakers keep the gauge).
    fn record_health(&self, ticket: Ticket<'_>, delivery: &Delivery, target: &Target, attempted: &Attempted) {
        // A refusal by the address policy says nothing about the endpoint's health.
        let Some(health) = Health::of(attempted) else { return };
        let Some(change) = ticket.record(health) else { return };
        let (state, reason) = match change {
            Change::Opened => {
                tracing::warn!(subscription_id = %delivery.subscription_id, portal_id = %target.portal_id, outcome = %attempted.code(), "endpoint circuit opened");
                (CircuitState::Open, Some(attempted.code()))
            }
            Change::Closed => {
                tracing::info!(subscription_id = %delivery.subscription_id, portal_id = %target.portal_id, "endpoint circuit closed");
                (CircuitState::Closed, None)
            }
        };
        self.io.circuit_changed(Transition {
            portal_id: target.portal_id.clone(),
            endpoint: target.endpoint.clone(),
            state,
            at: chrono::Utc::now(),
            reason,
        });
    }

    /// The HTTP request, measured and logged.
    async fn request(&self, delivery: &Delivery, target: &Target, read: &OwnedMessage) -> Attempted {
        let attempted = self.io.post(delivery, target, read.headers(), self.timeout(target)).await;
        metrics().attempt_finished(&attempted.code(), attempted.status, attempted.latency);
        self.trace(delivery, &attempted);
        attempted
    }

    fn timeout(&self, target: &Target) -> Duration {
        let ms = target.options.timeout_ms.map(u64::from).unwrap_or(self.config.request_timeout_ms);
        Duration::from_millis(ms.min(u64::from(MAX_TIMEOUT_MS).max(self.config.request_timeout_ms)))
    }

    /// Attempt `attempt` after `delay`, through a retry tier. Its attempt is logged once the
    /// retry is stored; a retry the broker refuses ends the delivery for good.
    async fn retry(
        &self,
        delivery: &Delivery,
        attempted: &Attempted,
        attempt: u32,
        delay: Duration,
        read: &OwnedMessage,
    ) -> Handled {
        let next = Delivery { attempt, ..delivery.clone() };
        match self.schedule_retry(next, delay, read).await {
            Ok(()) => self.log(delivery, attempted, Outcome::Retrying, read).await,
            Err(SendError::Abandoned) => Handled::Abandoned,
            Err(SendError::Rejected(refusal)) => {
                let why = SetAside::new(
                    reasons::RETRY_REFUSED,
                    format!(
                        "attempt {} failed ({}); its retry was refused: {refusal}",
                        delivery.attempt,
                        attempted.code()
                    ),
                );
                self.fail(delivery, attempted, why, read).await
            }
        }
    }

    /// Back to a tier without using up an attempt (`reason`: the `synap_deliveries_deferred_total`
    /// label). A record the broker refuses ends the delivery for good.
    async fn defer(
        &self,
        delivery: &Delivery,
        delay: Duration,
        reason: &'static str,
        read: &OwnedMessage,
    ) -> Handled {
        tracing::debug!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, reason, "delivery deferred");
        metrics().deferred(reason).inc();
        match self.schedule_retry(delivery.clone(), delay, read).await {
            Ok(()) => Handled::Done,
            Err(SendError::Abandoned) => Handled::Abandoned,
            Err(SendError::Rejected(refusal)) => {
                let detail = format!("deferred ({reason}), and the deferral was refused: {refusal}");
                let attempted = Attempted::not_made(ErrorClass::Other, detail.clone());
                self.fail(delivery, &attempted, SetAside::new(reasons::RETRY_REFUSED, detail), read).await
            }
        }
    }

    /// The schedule is used up (or the endpoint is gone): the delivery fails for good.
    async fn give_up(&self, delivery: &Delivery, attempted: &Attempted, read: &OwnedMessage) -> Handled {
        let reason: Cow<'static, str> =
            if attempted.gone() { reasons::GONE.into() } else { attempted.code().into() };
        let detail = attempted.error.clone().unwrap_or_else(|| reason.to_string());
        self.fail(delivery, attempted, SetAside::new(reason, detail), read).await
    }

    /// The subscription cannot be read, and never will be as stored (a secret the key cannot
    /// open, a damaged value): retrying cannot help, so the delivery fails for good at once. It
    /// says nothing about the endpoint: the log row's error class keeps it out of the
    /// subscription's failure count.
    async fn unreadable(&self, delivery: &Delivery, error: &DbError, read: &OwnedMessage) -> Handled {
        let (class, reason) = match error {
            DbError::Secret(_) => (ErrorClass::SecretUnreadable, reasons::SECRET_UNREADABLE),
            _ => (ErrorClass::Other, reasons::SUBSCRIPTION_UNREADABLE),
        };
        let detail = format!("the subscription cannot be read: {error}");
        let attempted = Attempted::not_made(class, detail.clone());
        if delivery.test_send {
            return self.log(delivery, &attempted, Outcome::Failed, read).await;
        }
        self.fail(delivery, &attempted, SetAside::new(reason, detail), read).await
    }

    /// The final failure: logged as failed, dead-lettered, announced to the operator.
    async fn fail(
        &self,
        delivery: &Delivery,
        attempted: &Attempted,
        why: SetAside,
        read: &OwnedMessage,
    ) -> Handled {
        metrics().delivery_finished(Finished::DeadLettered.code(), attempted.status, 0);
        if self.log(delivery, attempted, Outcome::Failed, read).await == Handled::Abandoned {
            return Handled::Abandoned;
        }
        tracing::warn!(event_id = %delivery.event_id, subscription_id = %delivery.subscription_id, reason = %why.reason, attempts = delivery.attempt, "delivery failed for good; dead-lettered");
        if self.io.dead_letter(delivery, read.headers(), &Source::of(read), &why).await == Handled::Abandoned
        {
            return Handled::Abandoned;
        }
        let event = OperatorEvent::DeliveryFailed {
            portal_id: delivery.portal_id.clone(),
            subscription_id: delivery.subscription_id.clone(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            attempts: delivery.attempt,
            reason: why.reason.into_owned(),
        };
        self.io.announce(event).await
    }

    /// Puts the delivery in the tier that fits `delay` (or straight back on the deliveries topic
    /// when there is no delay), in the trace of the record it was read from.
    async fn schedule_retry(
        &self,
        mut delivery: Delivery,
        delay: Duration,
        read: &OwnedMessage,
    ) -> Result<(), SendError> {
        let due = chrono::Utc::now().timestamp_millis() + delay.as_millis() as i64;
        delivery.due_at_ms = due;
        delivery.scheduled_at_ms = due;
        let to = match self.schedule.tier_for(delay) {
            Some(tier) if !delay.is_zero() => Destination::Tier(tier),
            _ => Destination::Deliveries,
        };
        self.io.send(to, &delivery, read.headers()).await
    }

    /// Stores the attempt's log row. A row the broker refuses is set aside rather than lost or
    /// retried for ever. `Abandoned` only at shutdown.
    async fn log(
        &self,
        delivery: &Delivery,
        attempted: &Attempted,
        outcome: Outcome,
        read: &OwnedMessage,
    ) -> Handled {
        let mut record = log_record(delivery, attempted, outcome, read);
        // A success's body is kept only where the deployment asks for it (`sender.store_success_bodies`).
        if outcome == Outcome::Delivered && !self.config.store_success_bodies {
            record.response_body.clear();
        }
        let record = Arc::new(record);
        match self.io.log(record.clone()).await {
            Ok(()) => Handled::Done,
            Err(SendError::Abandoned) => Handled::Abandoned,
            Err(SendError::Rejected(refusal)) => {
                let why = SetAside::new(
                    reasons::ATTEMPT_LOG_REFUSED,
                    format!("the broker refused the attempt-log record: {refusal}"),
                );
                self.io.set_aside_log(&record, &why).await
            }
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
            || self.io.target(subscription_id),
            |error, retry_in| tracing::warn!(subscription_id, %error, ?retry_in, "cannot read subscription"),
        )
        .await
    }
}

/// The `reason` label of deliveries deferred by an open circuit.
/// Sleeps unless the record's tenure ends first; false when it does.
async fn sleep(wait: Duration, tenure: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = tenure.cancelled() => false,
    }
}

fn circuit_open() -> &'static str {
    ErrorClass::CircuitOpen.code()
}

/// The attempt's log record.
fn log_record(
    delivery: &Delivery,
    attempted: &Attempted,
    outcome: Outcome,
    read: &OwnedMessage,
) -> AttemptLog {
    let finished = attempted.sent_at + chrono::Duration::from_std(attempted.latency).unwrap_or_default();
    // A first attempt was scheduled when the router wrote it.
    let scheduled_at_ms = match delivery.scheduled_at_ms {
        0 => read.timestamp().to_millis().unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
        at => at,
    };
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
        response_body: attempted.response_body.clone().unwrap_or_default(),
        test_send: delivery.test_send,
        source_topic: read.topic().to_owned(),
        source_partition: read.partition(),
        source_offset: read.offset(),
    }
}

#[cfg(test)]
mod tests;
