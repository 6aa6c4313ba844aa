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

use std::sync::Arc;
use std::time::{Duration, Instant};
use synap_telemetry::metrics::metrics;

use chrono::{DateTime, TimeZone, Utc};
use prost::Message as _;
use rdkafka::message::{Message, OwnedMessage};
use synap_db::Pool;
use synap_db::attempts::{AttemptRow, outcome};
use synap_db::delivery_state::{self, Outcomes};
use synap_kafka::Handled;
use synap_proto::pipeline::v1::AttemptLog;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::attempt::ErrorClass;
use crate::operator::{OperatorEvent, OperatorEvents};

/// Shared, so that the hot path keeps the record for its fallback without copying it.
type Queued = (Arc<AttemptLog>, oneshot::Sender<()>);

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
        if self.tx.try_send((record, done)).is_err() {
            return false;
        }
        metrics().attempt_log_backlog().inc();
        matches!(tokio::time::timeout(within, stored).await, Ok(Ok(())))
    }

    /// Hands one record of the attempts topic to the batcher; done once it is stored.
    pub async fn handle(self, message: OwnedMessage) -> Handled {
        let Ok(record) = AttemptLog::decode(message.payload().unwrap_or_default()) else {
            tracing::error!(offset = message.offset(), "undecodable attempt-log record skipped");
            return Handled::Done;
        };
        let (done, stored) = oneshot::channel();
        if self.tx.send((Arc::new(record), done)).await.is_err() {
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
        let last_scan = Mutex::new(Instant::now());
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
            let records: Vec<&AttemptLog> = batch.iter().map(|(r, _)| r.as_ref()).collect();
            if !self.store(&records, &last_scan).await {
                return;
            }
            metrics().attempt_log_backlog().dec_by(batch.len() as i64);
            for (_, done) in batch {
                let _ = done.send(());
            }
        }
    }

    /// Stores a batch, retrying while the database is unavailable; false only at shutdown.
    async fn store(&self, records: &[&AttemptLog], last_scan: &Mutex<Instant>) -> bool {
        let rows: Vec<AttemptRow> = records.iter().map(|r| row(r)).collect();
        synap_runtime::retry::until_shutdown(
            &self.shutdown,
            Duration::from_millis(200),
            || self.store_once(records, &rows, last_scan),
            |error, retry_in| tracing::warn!(%error, rows = rows.len(), ?retry_in, "attempt log not stored yet"),
        )
        .await
        .is_some()
    }

    async fn store_once(
        &self,
        records: &[&AttemptLog],
        rows: &[AttemptRow],
        last_scan: &Mutex<Instant>,
    ) -> Result<(), synap_db::DbError> {
        synap_db::attempts::insert_batch(&self.pool, rows).await?;
        let mut outcomes = Outcomes::default();
        let mut gone = Vec::new();
        // Later records of a subscription come later in its partition: the last one decides.
        for r in records.iter().filter(|r| !r.test_send) {
            outcomes.succeeded.retain(|s| s != &r.subscription_id);
            outcomes.failed.retain(|s| s != &r.subscription_id);
            if r.outcome == outcome::DELIVERED {
                outcomes.succeeded.push(r.subscription_id.clone());
            } else if r.error_class != ErrorClass::Disabled.code() {
                // A delivery held back for a disabled subscription says nothing of its endpoint.
                outcomes.failed.push(r.subscription_id.clone());
                if r.status_code == 410 && !gone.contains(&r.subscription_id) {
                    gone.push(r.subscription_id.clone());
                }
            }
        }
        delivery_state::record_outcomes(&self.pool, &outcomes).await?;
        for subscription_id in gone {
            if let Some(disabled) = delivery_state::disable(&self.pool, &subscription_id, "gone").await? {
                self.announce(disabled, "gone").await;
            }
        }
        let mut last = last_scan.lock().await;
        if last.elapsed() >= DISABLE_SCAN_EVERY.min(self.disable_after) {
            let cutoff = Utc::now()
                - chrono::Duration::from_std(self.disable_after).unwrap_or(chrono::Duration::days(3));
            for disabled in delivery_state::disable_failing(&self.pool, cutoff).await? {
                self.announce(disabled, "failing").await;
            }
            *last = Instant::now();
        }
        Ok(())
    }

    async fn announce(&self, disabled: delivery_state::Disabled, reason: &str) {
        tracing::warn!(subscription_id = %disabled.subscription_id, reason, "subscription disabled");
        metrics().subscriptions_disabled().inc();
        let event = OperatorEvent::SubscriptionDisabled {
            portal_id: disabled.portal_id,
            subscription_id: disabled.subscription_id,
            reason: reason.into(),
            failing_since: disabled.failing_since.map(|t| t.to_rfc3339()),
        };
        // Only shutdown stops this; the disabling itself is stored.
        let _ = self.operator.emit(event).await;
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn row(r: &AttemptLog) -> AttemptRow {
    AttemptRow {
        attempt_id: r.attempt_id.clone(),
        event_id: r.event_id.clone(),
        event_type: r.event_type.clone(),
        portal_id: r.portal_id.clone(),
        subscription_id: r.subscription_id.clone(),
        attempt: r.attempt.min(i32::MAX as u32) as i32,
        scheduled_at: time(r.scheduled_at_ms),
        sent_at: time(r.sent_at_ms),
        finished_at: time(r.finished_at_ms),
        outcome: r.outcome.clone(),
        error_class: some(&r.error_class),
        error: some(&r.error),
        status_code: (r.status_code != 0).then_some(r.status_code as i32),
        latency_ms: r.latency_ms.min(i32::MAX as u32) as i32,
        response_headers: some(&r.response_headers),
        // PostgreSQL text cannot hold NUL.
        response_body: some(&r.response_body.replace('\0', "")),
        test_send: r.test_send,
        source_topic: some(&r.source_topic),
        source_partition: some(&r.source_topic).map(|_| r.source_partition),
        source_offset: some(&r.source_topic).map(|_| r.source_offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_null_and_nul_bytes_are_dropped() {
        let record = AttemptLog {
            attempt_id: "a1".into(),
            event_id: "e".into(),
            subscription_id: "s".into(),
            attempt: 2,
            outcome: outcome::DELIVERED.into(),
            status_code: 204,
            response_body: "ok\0".into(),
            sent_at_ms: 1_700_000_000_000,
            ..Default::default()
        };
        let row = row(&record);
        assert_eq!((row.attempt, row.status_code), (2, Some(204)));
        assert_eq!(
            (row.error_class, row.error, row.source_topic, row.source_offset),
            (None, None, None, None)
        );
        assert_eq!(row.response_body.as_deref(), Some("ok"));
        assert_eq!(row.sent_at.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(super::row(&AttemptLog { status_code: 0, ..record }).status_code, None, "no response");
    }
}
