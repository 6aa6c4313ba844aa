//! The attempt log. The hot path hands each attempt to [`LogWriter`]'s batcher, which stores rows
//! in PostgreSQL in batches (one statement each); the delivery's offset is committed only once its
//! row is stored. When the row is not stored within `sender.log_direct_wait_ms` (PostgreSQL slow
//! or down, or the batcher's queue full), the hot path writes it to the attempts topic instead (a
//! quick, durable Kafka write), and the writer consumes that topic, committing an offset only
//! after its row is stored. A PostgreSQL outage therefore delays the log, never the deliveries,
//! and loses no entry: the rows wait in Kafka. A row written both ways is stored once (its
//! `attempt_id` is unique). The writer also keeps
//! the per-subscription failure state: it disables subscriptions whose endpoint answered 410 or
//! that have failed for the configured window, with an operator event each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synap_telemetry::metrics::metrics;

use chrono::{DateTime, TimeZone, Utc};
use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use synap_db::Pool;
use synap_db::attempts::{AttemptRow, Outcome, Repeats};
use synap_db::delivery_state::{self, Outcomes};
use synap_kafka::{DeadLetters, Handled, SetAside, Source};
use synap_proto::pipeline::v1::AttemptLog;
use synap_runtime::retry::{self, Stopped};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::attempt::ErrorClass;
use crate::operator::{OperatorEvent, OperatorEvents};

/// A record waiting for its batch.
struct Queued {
    /// Shared, so that the hot path keeps the record for its fallback without copying it.
    record: Arc<AttemptLog>,
    /// Where it was read on the attempts topic; `None` from the hot path.
    read_at: Option<Source>,
    /// Told once the record is stored (or set aside).
    done: oneshot::Sender<()>,
}

/// The source named by a dead-lettered attempt-log record that was never on the attempts topic
/// (offset -1): `synap-admin redrive` writes it to the attempts topic, where the writer stores it.
pub fn never_written(attempts_topic: &str) -> Source {
    Source { topic: attempts_topic.to_owned(), partition: -1, offset: -1 }
}

/// The consumer side: hands each record to the batcher and reports it done once stored.
#[derive(Clone)]
pub struct LogQueue {
    tx: mpsc::Sender<Queued>,
}

impl LogQueue {
    /// Stores a record from the hot path through the batcher; false when it was not stored
    /// within `within` (the caller then writes it to the attempts topic).
    pub async fn store(&self, record: Arc<AttemptLog>, within: Duration) -> bool {
        let (done, stored) = oneshot::channel();
        if self.tx.try_send(Queued { record, read_at: None, done }).is_err() {
            return false;
        }
        metrics().attempt_log_backlog().inc();
        matches!(tokio::time::timeout(within, stored).await, Ok(Ok(())))
    }

    /// Hands one record of the attempts topic to the batcher; done once it is stored.
    pub async fn handle(self, message: Arc<OwnedMessage>) -> Handled {
        let record = match AttemptLog::decode(message.payload().unwrap_or_default()) {
            Ok(record) => record,
            Err(e) => {
                return Handled::SetAside(SetAside::new(
                    "undecodable_attempt_log",
                    format!("not a synap.pipeline.v1.AttemptLog: {e}"),
                ));
            }
        };
        let (done, stored) = oneshot::channel();
        let queued = Queued { record: Arc::new(record), read_at: Some(Source::of(&message)), done };
        if self.tx.send(queued).await.is_err() {
            return Handled::Abandoned;
        }
        metrics().attempt_log_backlog().inc();
        match stored.await {
            Ok(()) => Handled::Done,
            // The writer stopped (shutdown) before storing it: read again after restart.
            Err(_) => Handled::Abandoned,
        }
    }
}

pub struct LogWriter {
    pub pool: Pool,
    pub operator: OperatorEvents,
    /// Where rows PostgreSQL refuses for their data are set aside (`synap.deliveries.dlq`).
    pub dead_letters: DeadLetters,
    /// The attempts topic: the source a set-aside row names, so that a redrive stores it.
    pub attempts_topic: String,
    pub disable_after: Duration,
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub shutdown: CancellationToken,
}

/// How often the writer looks for subscriptions failing for longer than the window.
const DISABLE_SCAN_EVERY: Duration = Duration::from_secs(10);

impl LogWriter {
    /// Starts the batcher; returns the queue the consumer feeds (bounded: a stalled database
    /// stops the consumer, whose records then wait in Kafka).
    pub fn start(self, capacity: usize) -> (LogQueue, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity);
        let task = tokio::spawn(self.run(rx));
        (LogQueue { tx }, task)
    }

    async fn run(self, mut rx: mpsc::Receiver<Queued>) {
        let mut last_scan = Instant::now();
        loop {
            let first = tokio::select! {
                received = rx.recv() => match received { Some(q) => q, None => return },
                _ = self.shutdown.cancelled() => return,
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.batch_wait;
            while batch.len() < self.batch_size {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(q)) => batch.push(q),
                    _ => break,
                }
            }
            let Some(stored) = self.store(&batch).await else { return };
            self.keep_state(&stored, &mut last_scan).await;
            metrics().attempt_log_backlog().dec_by(batch.len() as i64);
            for queued in batch {
                let _ = queued.done.send(());
            }
        }
    }

    /// Stores a batch: every row is stored or, when PostgreSQL refuses its data, set aside in the
    /// dead-letter topic; the others are stored all the same. Returns the rows stored; `None`
    /// only at shutdown.
    async fn store(&self, batch: &[Queued]) -> Option<Vec<AttemptRow>> {
        let mut rows = Vec::with_capacity(batch.len());
        // The queued record of each row.
        let mut origin = Vec::with_capacity(batch.len());
        for queued in batch {
            match row(&queued.record) {
                Ok(r) => {
                    rows.push(r);
                    origin.push(queued);
                }
                Err(why) => self.set_aside(queued, SetAside::new("invalid_attempt_log", why)).await?,
            }
        }
        // Only rows read back from the attempts topic may have been stored already (by the hot
        // path, after it gave up waiting): other batches take the cheaper plain insert.
        let repeats = if origin.iter().any(|queued| queued.read_at.is_some()) {
            Repeats::Possible
        } else {
            Repeats::Unlikely
        };
        // A batch refused for its data is split in halves until the refused rows are alone.
        let mut refused = Vec::new();
        let mut pending = Vec::new();
        pending.push(0..rows.len());
        while let Some(range) = pending.pop() {
            if range.is_empty() {
                continue;
            }
            let chunk = &rows[range.clone()];
            let stored = retry::transient(
                &self.shutdown,
                Duration::from_millis(200),
                || synap_db::attempts::insert_batch(&self.pool, chunk, repeats),
                |error, retry_in| tracing::warn!(%error, rows = chunk.len(), ?retry_in, "attempt log not stored yet"),
            )
            .await;
            match stored {
                Ok(()) => {}
                Err(Stopped::Shutdown) => return None,
                Err(Stopped::Permanent(error)) if range.len() == 1 => refused.push((range.start, error)),
                Err(Stopped::Permanent(_)) => {
                    let middle = range.start + range.len() / 2;
                    pending.push(middle..range.end);
                    pending.push(range.start..middle);
                }
            }
        }
        // Highest index first, so that each removal leaves the lower indexes in place.
        refused.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
        for (index, error) in refused {
            rows.remove(index);
            let why = SetAside::new(
                crate::stage::reasons::ATTEMPT_LOG_REFUSED,
                format!("PostgreSQL refused the row: {error}"),
            );
            self.set_aside(origin[index], why).await?;
        }
        Some(rows)
    }

    /// Writes a log record that can never be stored to the dead-letter topic, naming the attempts
    /// topic as its source (so that a redrive, once the cause is fixed, stores it). `None` at
    /// shutdown.
    async fn set_aside(&self, queued: &Queued, why: SetAside) -> Option<()> {
        let record = &queued.record;
        let source = queued.read_at.clone().unwrap_or_else(|| never_written(&self.attempts_topic));
        let handled = self
            .dead_letters
            .record(
                record.subscription_id.as_bytes(),
                &record.encode_to_vec(),
                None,
                &source,
                &why,
                &self.shutdown,
            )
            .await;
        (handled != Handled::Abandoned).then_some(())
    }

    /// The per-subscription failure state, from the rows just stored: success clears it, failures
    /// start or continue it, 410 and the failing window disable. A failure here (the database
    /// down for longer than the retries, or refusing an id) leaves the state as it was; the next
    /// batch of the subscription brings it up to date.
    async fn keep_state(&self, rows: &[AttemptRow], last_scan: &mut Instant) {
        let (outcomes, gone) = outcomes_of(rows);
        let result = retry::transient(
            &self.shutdown,
            Duration::from_millis(200),
            || delivery_state::record_outcomes(&self.pool, &outcomes),
            |error, retry_in| tracing::warn!(%error, ?retry_in, "subscription failure state not stored yet"),
        )
        .await;
        if let Err(Stopped::Permanent(error)) = result {
            tracing::error!(%error, "subscription failure state not stored");
        }
        for subscription_id in gone {
            match delivery_state::disable(&self.pool, &subscription_id, "gone").await {
                Ok(Some(disabled)) => self.announce(disabled, "gone").await,
                Ok(None) => {}
                Err(error) => tracing::warn!(%subscription_id, %error, "subscription not disabled yet"),
            }
        }
        if last_scan.elapsed() >= DISABLE_SCAN_EVERY.min(self.disable_after) {
            let cutoff = Utc::now()
                - chrono::Duration::from_std(self.disable_after).unwrap_or(chrono::Duration::days(3));
            match delivery_state::disable_failing(&self.pool, cutoff).await {
                Ok(disabled) => {
                    for d in disabled {
                        self.announce(d, "failing").await;
                    }
                    *last_scan = Instant::now();
                }
                Err(error) => tracing::warn!(%error, "failing subscriptions not checked"),
            }
        }
    }

    async fn announce(&self, disabled: delivery_state::Disabled, reason: &str) {
        tracing::warn!(subscription_id = %disabled.subscription_id, reason, "subscription disabled");
        crate::disabled_gauge::refresh(&self.pool).await;
        let event = OperatorEvent::SubscriptionDisabled {
            portal_id: disabled.portal_id,
            subscription_id: disabled.subscription_id,
            reason: reason.into(),
            failing_since: disabled.failing_since.map(|t| t.to_rfc3339()),
        };
        // Only shutdown stops this (and then the disabling itself is stored already).
        let _ = self.operator.emit(event).await;
    }
}

/// Each subscription's outcome in a batch of stored rows (test sends aside), and the
/// subscriptions whose endpoint answered 410 Gone. Later records of a subscription come later in
/// its partition, so the last one decides; one that says nothing about the endpoint (a disabled
/// subscription, an open circuit) leaves the subscription out. One pass over the batch: a batch
/// of 500 rows may name 500 subscriptions.
fn outcomes_of(rows: &[AttemptRow]) -> (Outcomes, Vec<String>) {
    let mut last: HashMap<&str, Option<bool>> = HashMap::with_capacity(rows.len());
    let mut gone: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| !r.test_send) {
        let delivered = if r.outcome == Outcome::Delivered {
            Some(true)
        } else if counts_against_endpoint(r.error_class) {
            if r.status_code == Some(410) && !gone.contains(&r.subscription_id) {
                gone.push(r.subscription_id.clone());
            }
            Some(false)
        } else {
            None
        };
        last.insert(&r.subscription_id, delivered);
    }
    let mut outcomes = Outcomes::default();
    for (subscription_id, delivered) in last {
        match delivered {
            Some(true) => outcomes.succeeded.push(subscription_id.to_owned()),
            Some(false) => outcomes.failed.push(subscription_id.to_owned()),
            None => {}
        }
    }
    (outcomes, gone)
}

/// Whether a failed attempt says something about the endpoint's health. Not a delivery held back
/// for a disabled subscription, nor one whose secret cannot be opened: neither reached it.
fn counts_against_endpoint(class: Option<ErrorClass>) -> bool {
    !matches!(class, Some(ErrorClass::Disabled | ErrorClass::SecretUnreadable | ErrorClass::CircuitOpen))
}

/// PostgreSQL's `timestamptz` covers years 4713 BC to 294276 AD; a time outside years 1 to 9999
/// can only come from a damaged record, so it becomes now.
fn time(ms: i64) -> DateTime<Utc> {
    const MIN_MS: i64 = -62_135_596_800_000; // 0001-01-01
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return Utc::now();
    }
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}

/// PostgreSQL `text` cannot hold NUL (SQLSTATE 22021): it is dropped, the rest is kept.
fn text(s: &str) -> String {
    if s.contains('\0') { s.replace('\0', "") } else { s.to_owned() }
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| text(s))
}

/// The response headers as `jsonb` takes them: a JSON object, without `\u0000` (which `jsonb`
/// refuses, SQLSTATE 22P05); anything else is not kept.
fn headers_json(s: &str) -> Option<String> {
    let s = s.replace("\\u0000", "");
    match serde_json::from_str::<serde_json::Value>(&s) {
        Ok(serde_json::Value::Object(_)) => Some(s),
        _ => None,
    }
}

/// The row of a log record, with what PostgreSQL cannot hold stripped or clamped. `Err` when the
/// record names an outcome or error class the log does not know.
fn row(r: &AttemptLog) -> Result<AttemptRow, String> {
    let outcome = Outcome::parse(&r.outcome).ok_or_else(|| format!("unknown outcome {:?}", r.outcome))?;
    let error_class = match r.error_class.as_str() {
        "" => None,
        code => Some(ErrorClass::parse(code).ok_or_else(|| format!("unknown error class {code:?}"))?),
    };
    let source = some(&r.source_topic);
    Ok(AttemptRow {
        attempt_id: text(&r.attempt_id),
        event_id: text(&r.event_id),
        event_type: text(&r.event_type),
        portal_id: text(&r.portal_id),
        subscription_id: text(&r.subscription_id),
        attempt: r.attempt.min(i32::MAX as u32) as i32,
        scheduled_at: time(r.scheduled_at_ms),
        sent_at: time(r.sent_at_ms),
        finished_at: time(r.finished_at_ms),
        outcome,
        error_class,
        error: some(&r.error),
        status_code: (r.status_code != 0).then_some(r.status_code.min(i32::MAX as u32) as i32),
        latency_ms: r.latency_ms.min(i32::MAX as u32) as i32,
        response_headers: (!r.response_headers.is_empty())
            .then(|| headers_json(&r.response_headers))
            .flatten(),
        response_body: some(&r.response_body),
        test_send: r.test_send,
        source_partition: source.as_ref().map(|_| r.source_partition),
        source_offset: source.as_ref().map(|_| r.source_offset),
        source_topic: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AttemptLog {
        AttemptLog {
            attempt_id: "a1".into(),
            event_id: "e".into(),
            subscription_id: "s".into(),
            attempt: 2,
            outcome: Outcome::Delivered.code().into(),
            status_code: 204,
            response_body: "ok\0".into(),
            sent_at_ms: 1_700_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_subscriptions_last_attempt_in_a_batch_decides_its_outcome() {
        let attempt = |subscription: &str, outcome: Outcome, class: Option<ErrorClass>, status: u32| {
            row(&AttemptLog {
                subscription_id: subscription.into(),
                outcome: outcome.code().into(),
                error_class: class.map(|c| c.code().to_owned()).unwrap_or_default(),
                status_code: status,
                ..record()
            })
            .unwrap()
        };
        let mut test_send = attempt("tested", Outcome::Failed, Some(ErrorClass::HttpStatus), 500);
        test_send.test_send = true;
        let rows = [
            attempt("recovers", Outcome::Retrying, Some(ErrorClass::Timeout), 0),
            attempt("recovers", Outcome::Delivered, None, 200),
            attempt("breaks", Outcome::Delivered, None, 200),
            attempt("breaks", Outcome::Retrying, Some(ErrorClass::HttpStatus), 503),
            attempt("gone", Outcome::Failed, Some(ErrorClass::HttpStatus), 410),
            attempt("gone", Outcome::Failed, Some(ErrorClass::HttpStatus), 410),
            attempt("unknown", Outcome::Delivered, None, 200),
            attempt("unknown", Outcome::Retrying, Some(ErrorClass::CircuitOpen), 0),
            test_send,
        ];
        let (mut outcomes, gone) = outcomes_of(&rows);
        outcomes.succeeded.sort();
        outcomes.failed.sort();
        assert_eq!(outcomes.succeeded, ["recovers"]);
        assert_eq!(outcomes.failed, ["breaks", "gone"]);
        assert_eq!(gone, ["gone"]);
    }

    #[test]
    fn empty_fields_are_null_and_nul_bytes_are_dropped() {
        let row = row(&record()).unwrap();
        assert_eq!((row.attempt, row.status_code), (2, Some(204)));
        assert_eq!(
            (row.error_class, row.error, row.source_topic, row.source_offset),
            (None, None, None, None)
        );
        assert_eq!(row.response_body.as_deref(), Some("ok"));
        assert_eq!(row.sent_at.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(
            super::row(&AttemptLog { status_code: 0, ..record() }).unwrap().status_code,
            None,
            "no response"
        );
    }

    #[test]
    fn what_postgresql_cannot_hold_is_stripped_or_clamped() {
        let hostile = AttemptLog {
            event_id: "evt_\0x".into(),
            portal_id: "p\0".into(),
            error: "\0".into(),
            status_code: u32::MAX,
            scheduled_at_ms: i64::MIN,
            finished_at_ms: i64::MAX,
            response_headers: r#"{"x":"a\u0000b"}"#.into(),
            ..record()
        };
        let row = row(&hostile).unwrap();
        assert_eq!((row.event_id.as_str(), row.portal_id.as_str()), ("evt_x", "p"));
        assert_eq!(row.error.as_deref(), Some(""));
        assert_eq!(row.status_code, Some(i32::MAX));
        assert!(
            row.scheduled_at.timestamp() > 0 && row.finished_at.timestamp() > 0,
            "out-of-range times become now"
        );
        assert_eq!(row.response_headers.as_deref(), Some(r#"{"x":"ab"}"#));
        let not_json = AttemptLog { response_headers: "[1,".into(), ..record() };
        assert_eq!(super::row(&not_json).unwrap().response_headers, None);
    }

    #[test]
    fn unknown_codes_are_refused() {
        assert!(row(&AttemptLog { outcome: "exhausted".into(), ..record() }).is_err());
        assert!(row(&AttemptLog { error_class: "boom".into(), ..record() }).is_err());
        let failed =
            AttemptLog { outcome: "failed".into(), error_class: "secret_unreadable".into(), ..record() };
        assert_eq!(row(&failed).unwrap().error_class, Some(ErrorClass::SecretUnreadable));
    }
}
