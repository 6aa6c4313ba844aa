//! The attempt log: one row per HTTP attempt (or refusal to make one) of a delivery.
//!
//! Rows never hold request secrets (the authorization header, signing secrets). The sender writes
//! them in batches; each has a stable `attempt_id` (and a `finished_at` that a re-write repeats),
//! so writing a batch again stores nothing twice. The table is partitioned by `finished_at` and
//! expired partitions are dropped whole: see [`crate::attempt_partitions`].

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::{DbError, Pool};

/// What an attempt came to, as stored in `delivery_attempts.outcome` (a CHECK constraint holds
/// the column to these codes), shown by the delivery API and counted in metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A 2xx within the timeout.
    Delivered,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed for good: schedule exhausted, subscription gone or disabled, a secret that cannot
    /// be opened, or a failed test send.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Delivered, Outcome::Retrying, Outcome::Failed];

    pub fn code(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }
}

/// Why an attempt failed (or was not made), as stored in `delivery_attempts.error_class` (a
/// CHECK constraint holds the column to these codes); NULL when delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    Timeout,
    Connect,
    Dns,
    Tls,
    /// A response other than 2xx.
    HttpStatus,
    /// The address is not allowed (outbound policy).
    Refused,
    /// Not attempted: the endpoint's circuit was open. Only rows of earlier releases have it
    /// (kept readable for them): a delivery that finds its circuit open now waits for the probe
    /// without an attempt or a row.
    CircuitOpen,
    /// Not attempted: the subscription was disabled after the delivery was routed.
    Disabled,
    /// Not attempted: a secret of the subscription (signing secret, basic-auth password) cannot
    /// be opened with the configured keys. Final: retrying cannot open it.
    SecretUnreadable,
    Other,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 10] = [
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::Dns,
        ErrorClass::Tls,
        ErrorClass::HttpStatus,
        ErrorClass::Refused,
        ErrorClass::CircuitOpen,
        ErrorClass::Disabled,
        ErrorClass::SecretUnreadable,
        ErrorClass::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Dns => "dns",
            ErrorClass::Tls => "tls",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::Refused => "refused",
            ErrorClass::CircuitOpen => "circuit_open",
            ErrorClass::Disabled => "disabled",
            ErrorClass::SecretUnreadable => "secret_unreadable",
            ErrorClass::Other => "other",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
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
    pub outcome: Outcome,
    pub error_class: Option<ErrorClass>,
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

/// Whether a batch may hold rows that are stored already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeats {
    /// Rows of the hot path, stored once each unless a reply was lost.
    Unlikely,
    /// Rows read back from the attempts topic: the hot path may have stored them after all.
    Possible,
}

/// The insert of a batch, one row per element of the twenty arrays.
macro_rules! insert_rows {
    () => {
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
                  source_topic, source_partition, source_offset)"
    };
}

/// Stores `attempts` in one statement (one round trip, whatever the batch size); rows already
/// stored (same `attempt_id` and `finished_at`) are skipped.
///
/// `ON CONFLICT DO NOTHING` makes PostgreSQL look each row up in the unique index before
/// inserting it, and insert it speculatively: a third of the statement's time for a batch of
/// 500 (docs/BENCHMARKS.md). So a batch where repeats are unlikely is inserted plainly first;
/// the unique index refuses it whole if it does hold a stored row, and it is then inserted again
/// skipping those. A batch where they are possible goes straight to the second form.
pub async fn insert_batch(pool: &Pool, attempts: &[AttemptRow], repeats: Repeats) -> Result<(), DbError> {
    if attempts.is_empty() {
        return Ok(());
    }
    fn column<T>(attempts: &[AttemptRow], field: impl Fn(&AttemptRow) -> &T) -> Vec<&T> {
        attempts.iter().map(field).collect()
    }
    let client = pool.get().await?;
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
        &attempts.iter().map(|a| a.outcome.code()).collect::<Vec<_>>(),
        &attempts.iter().map(|a| a.error_class.map(ErrorClass::code)).collect::<Vec<_>>(),
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
    if repeats == Repeats::Unlikely {
        let plain = client.prepare_cached(insert_rows!()).await?;
        match client.execute(&plain, &params).await {
            Ok(_) => return Ok(()),
            // Nothing of the batch was stored: the statement failed whole.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let skipping = client
        .prepare_cached(concat!(insert_rows!(), " ON CONFLICT (attempt_id, finished_at) DO NOTHING"))
        .await?;
    client.execute(&skipping, &params).await?;
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
    fn from_row(row: &Row) -> Result<Self, DbError> {
        let outcome: String = row.get("outcome");
        let error_class: Option<String> = row.get("error_class");
        Ok(Attempt {
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
                outcome: Outcome::parse(&outcome)
                    .ok_or_else(|| DbError::Corrupt(format!("unknown attempt outcome {outcome:?}")))?,
                error_class: error_class
                    .map(|c| {
                        ErrorClass::parse(&c)
                            .ok_or_else(|| DbError::Corrupt(format!("unknown error class {c:?}")))
                    })
                    .transpose()?,
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
        })
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
    pub outcome: Option<Outcome>,
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
                &filter.outcome.map(Outcome::code),
                &filter.since,
                &filter.until,
                &filter.before_id,
                &filter.limit,
            ],
        )
        .await?;
    rows.iter().map(Attempt::from_row).collect()
}

pub async fn get(pool: &Pool, id: i64) -> Result<Option<Attempt>, DbError> {
    let client = pool.get().await?;
    let row =
        client.query_opt(&format!("SELECT {COLUMNS} FROM delivery_attempts WHERE id = $1"), &[&id]).await?;
    row.as_ref().map(Attempt::from_row).transpose()
}

/// The first logged attempt of `event_id` to `subscription_id`: what control waits for after a
/// test send.
pub async fn first_of(
    pool: &Pool,
    event_id: &str,
    subscription_id: &str,
) -> Result<Option<Attempt>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM delivery_attempts
                 WHERE event_id = $1 AND subscription_id = $2 ORDER BY attempt, id LIMIT 1"
            ),
            &[&event_id, &subscription_id],
        )
        .await?;
    row.as_ref().map(Attempt::from_row).transpose()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The CHECK constraints and the enums name the same codes.
    #[test]
    fn the_check_constraints_hold_exactly_the_enum_codes() {
        let sql = include_str!("../migrations/0022_attempt_vocabulary.sql");
        let listed = |constraint: &str| -> Vec<String> {
            let start = sql.find(constraint).unwrap();
            let list = &sql[start..];
            let list = &list[list.find("IN (").unwrap() + 4..];
            let list = &list[..list.find(')').unwrap()];
            list.split(',').map(|c| c.trim().trim_matches('\'').to_owned()).collect()
        };
        let outcomes: Vec<String> = Outcome::ALL.iter().map(|o| o.code().to_owned()).collect();
        let classes: Vec<String> = ErrorClass::ALL.iter().map(|c| c.code().to_owned()).collect();
        assert_eq!(listed("delivery_attempts_outcome_check"), outcomes);
        assert_eq!(listed("delivery_attempts_error_class_check"), classes);
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.code()), Some(o));
        }
        for c in ErrorClass::ALL {
            assert_eq!(ErrorClass::parse(c.code()), Some(c));
        }
    }
}
