//! Endpoint health for the portal: a subscription's attempts over a recent window, counted per
//! hour from the attempt log.

use chrono::{DateTime, Utc};

use crate::{DbError, Pool};

/// Attempts that sent a request (NULL error class: delivered).
const SENT: &str =
    "COALESCE(error_class NOT IN ('refused', 'circuit_open', 'disabled', 'secret_unreadable'), TRUE)";

/// One hour of a subscription's attempts (test sends included: they are real requests).
#[derive(Clone, Debug, PartialEq)]
pub struct HourlyAttempts {
    /// Start of the hour (UTC).
    pub start: DateTime<Utc>,
    pub delivered: i64,
    /// Attempts that did not deliver: retried or failed for good.
    pub failed: i64,
    /// Mean and 95th percentile latency of the attempts that got a response or timed out, in ms.
    pub mean_latency_ms: f64,
    pub p95_latency_ms: f64,
}

/// The latest attempt that did not deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    pub at: DateTime<Utc>,
    pub error_class: Option<String>,
    pub error: Option<String>,
}

/// Hours since `since` that have attempts of `subscription_id`, oldest first. Attempts that
/// were never made (refused address, open circuit, disabled, unreadable secret) count as
/// failures but have no latency worth showing: only requests that went out feed the latency.
pub async fn hourly(
    pool: &Pool,
    subscription_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<HourlyAttempts>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT date_trunc('hour', finished_at, 'UTC') AS hour,
                    count(*) FILTER (WHERE outcome = 'delivered') AS delivered,
                    count(*) FILTER (WHERE outcome <> 'delivered') AS failed,
                    COALESCE(avg(latency_ms) FILTER (WHERE {SENT}), 0)::float8,
                    COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
                             FILTER (WHERE {SENT}), 0)::float8
             FROM delivery_attempts
             WHERE subscription_id = $1 AND finished_at >= $2
             GROUP BY hour ORDER BY hour"
            ),
            &[&subscription_id, &since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| HourlyAttempts {
            start: r.get(0),
            delivered: r.get(1),
            failed: r.get(2),
            mean_latency_ms: r.get(3),
            p95_latency_ms: r.get(4),
        })
        .collect())
}

/// The subscription's latest attempt that did not deliver, if any since `since`.
pub async fn last_error(
    pool: &Pool,
    subscription_id: &str,
    since: DateTime<Utc>,
) -> Result<Option<LastError>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT finished_at, error_class, error FROM delivery_attempts
             WHERE subscription_id = $1 AND finished_at >= $2 AND outcome <> 'delivered'
             ORDER BY finished_at DESC, id DESC LIMIT 1",
            &[&subscription_id, &since],
        )
        .await?;
    Ok(row.map(|r| LastError { at: r.get(0), error_class: r.get(1), error: r.get(2) }))
}
