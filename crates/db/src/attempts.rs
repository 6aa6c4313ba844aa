//! The attempt log: one row per HTTP attempt (or refusal to make one) of a delivery.
//!
//! Rows never hold request secrets (the authorization header, signing secrets). The sender writes
//! them in batches; each has a stable `attempt_id`, so writing a batch again stores nothing twice.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{DbError, Pool};

/// Final and intermediate outcomes, as stored in `delivery_attempts.outcome`.
pub mod outcome {
    /// A 2xx within the timeout.
    pub const DELIVERED: &str = "delivered";
    /// Failed; another attempt is scheduled.
    pub const RETRYING: &str = "retrying";
    /// Failed for good: schedule exhausted, subscription gone or disabled, or a failed test send.
    pub const FAILED: &str = "failed";
}

/// One attempt as the sender records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    pub attempt_id: String,
    pub event_id: String,
    pub event_type: String,
    pub portal_id: String,
    pub subscription_id: String,
    pub attempt: i32,
    pub scheduled_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: String,
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// JSON object of the response headers.
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub test_send: bool,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
}

/// Stores `attempts` in one statement (one round trip, whatever the batch size); rows already
/// stored (same `attempt_id`) are skipped.
pub async fn insert_batch(pool: &Pool, attempts: &[AttemptRow]) -> Result<(), DbError> {
    if attempts.is_empty() {
        return Ok(());
    }
    fn column<T>(attempts: &[AttemptRow], field: impl Fn(&AttemptRow) -> &T) -> Vec<&T> {
        attempts.iter().map(field).collect()
    }
    let client = pool.get().await?;
    let statement = client
        .prepare_cached(
            "INSERT INTO delivery_attempts
                (attempt_id, event_id, event_type, portal_id, subscription_id, attempt,
                 scheduled_at, sent_at, finished_at, outcome, error_class, error, status_code,
                 latency_ms, response_headers, response_body, test_send,
                 source_topic, source_partition, source_offset)
             SELECT attempt_id, event_id, event_type, portal_id, subscription_id, attempt,
                    scheduled_at, sent_at, finished_at, outcome, error_class, error, status_code,
                    latency_ms, response_headers::jsonb, response_body, test_send,
                    source_topic, source_partition, source_offset
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[],
                         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[],
                         $11::text[], $12::text[], $13::int4[], $14::int4[], $15::text[],
                         $16::text[], $17::bool[], $18::text[], $19::int4[], $20::int8[])
                 AS t(attempt_id, event_id, event_type, portal_id, subscription_id, attempt,
                      scheduled_at, sent_at, finished_at, outcome, error_class, error, status_code,
                      latency_ms, response_headers, response_body, test_send,
                      source_topic, source_partition, source_offset)
             ON CONFLICT (attempt_id) DO NOTHING",
        )
        .await?;
    let params: [&(dyn ToSql + Sync); 20] = [
        &column(attempts, |a| &a.attempt_id),
        &column(attempts, |a| &a.event_id),
        &column(attempts, |a| &a.event_type),
        &column(attempts, |a| &a.portal_id),
        &column(attempts, |a| &a.subscription_id),
        &column(attempts, |a| &a.attempt),
        &column(attempts, |a| &a.scheduled_at),
        &column(attempts, |a| &a.sent_at),
        &column(attempts, |a| &a.finished_at),
        &column(attempts, |a| &a.outcome),
        &column(attempts, |a| &a.error_class),
        &column(attempts, |a| &a.error),
        &column(attempts, |a| &a.status_code),
        &column(attempts, |a| &a.latency_ms),
        &column(attempts, |a| &a.response_headers),
        &column(attempts, |a| &a.response_body),
        &column(attempts, |a| &a.test_send),
        &column(attempts, |a| &a.source_topic),
        &column(attempts, |a| &a.source_partition),
        &column(attempts, |a| &a.source_offset),
    ];
    client.execute(&statement, &params).await?;
    Ok(())
}

/// A stored attempt: its row and the id the database gave it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub id: i64,
    pub row: AttemptRow,
}

const COLUMNS: &str = "id, attempt_id, event_id, event_type, portal_id, subscription_id, attempt, \
                       scheduled_at, sent_at, finished_at, outcome, error_class, error, status_code, \
                       latency_ms, response_headers::text AS response_headers, response_body, test_send, \
                       source_topic, source_partition, source_offset";

impl Attempt {
    fn from_row(row: &Row) -> Self {
        Attempt {
            id: row.get("id"),
            row: AttemptRow {
                // Rows written before attempt ids existed have none.
                attempt_id: row.get::<_, Option<String>>("attempt_id").unwrap_or_default(),
                event_id: row.get("event_id"),
                event_type: row.get("event_type"),
                portal_id: row.get("portal_id"),
                subscription_id: row.get("subscription_id"),
                attempt: row.get("attempt"),
                scheduled_at: row.get("scheduled_at"),
                sent_at: row.get("sent_at"),
                finished_at: row.get("finished_at"),
                outcome: row.get("outcome"),
                error_class: row.get("error_class"),
                error: row.get("error"),
                status_code: row.get("status_code"),
                latency_ms: row.get("latency_ms"),
                response_headers: row.get("response_headers"),
                response_body: row.get("response_body"),
                test_send: row.get("test_send"),
                source_topic: row.get("source_topic"),
                source_partition: row.get("source_partition"),
                source_offset: row.get("source_offset"),
            },
        }
    }
}

/// Which attempts to list. Every filter is optional except the portal (`None` only for the
/// admin listing every portal).
#[derive(Clone, Debug, Default)]
pub struct AttemptFilter {
    pub portal_id: Option<String>,
    pub subscription_id: Option<String>,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only rows with an id below this one (the page token: newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Attempts matching `filter`, newest first.
pub async fn list(pool: &Pool, filter: &AttemptFilter) -> Result<Vec<Attempt>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM delivery_attempts
                 WHERE ($1::text IS NULL OR portal_id = $1)
                   AND ($2::text IS NULL OR subscription_id = $2)
                   AND ($3::text IS NULL OR event_id = $3)
                   AND ($4::text IS NULL OR event_type = $4)
                   AND ($5::text IS NULL OR outcome = $5)
                   AND ($6::timestamptz IS NULL OR finished_at >= $6)
                   AND ($7::timestamptz IS NULL OR finished_at < $7)
                   AND ($8::bigint IS NULL OR id < $8)
                 ORDER BY id DESC LIMIT $9"
            ),
            &[
                &filter.portal_id,
                &filter.subscription_id,
                &filter.event_id,
                &filter.event_type,
                &filter.outcome,
                &filter.since,
                &filter.until,
                &filter.before_id,
                &filter.limit,
            ],
        )
        .await?;
    Ok(rows.iter().map(Attempt::from_row).collect())
}

pub async fn get(pool: &Pool, id: i64) -> Result<Option<Attempt>, DbError> {
    let client = pool.get().await?;
    let row =
        client.query_opt(&format!("SELECT {COLUMNS} FROM delivery_attempts WHERE id = $1"), &[&id]).await?;
    Ok(row.as_ref().map(Attempt::from_row))
}

/// Where a delivery's record (and so the event body) can be read back from Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub event_id: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The most recent Kafka position of the delivery of `event_id` to `subscription_id`.
pub async fn source(pool: &Pool, subscription_id: &str, event_id: &str) -> Result<Option<Source>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT event_id, source_topic, source_partition, source_offset FROM delivery_attempts
             WHERE subscription_id = $1 AND event_id = $2 AND source_topic IS NOT NULL
               AND NOT test_send
             ORDER BY id DESC LIMIT 1",
            &[&subscription_id, &event_id],
        )
        .await?;
    Ok(row.map(|r| Source { event_id: r.get(0), topic: r.get(1), partition: r.get(2), offset: r.get(3) }))
}

/// The deliveries of a subscription whose latest outcome since `since` is a final failure, with
/// where to read each back: what `recover` sends again.
pub async fn failed_since(
    pool: &Pool,
    subscription_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Source>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT event_id, source_topic, source_partition, source_offset FROM (
                 SELECT DISTINCT ON (event_id) event_id, outcome, source_topic, source_partition,
                        source_offset, id
                 FROM delivery_attempts
                 WHERE subscription_id = $1 AND finished_at >= $2 AND NOT test_send
                 ORDER BY event_id, id DESC) latest
             WHERE outcome = 'failed' AND source_topic IS NOT NULL
             ORDER BY id",
            &[&subscription_id, &since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Source { event_id: r.get(0), topic: r.get(1), partition: r.get(2), offset: r.get(3) })
        .collect())
}
