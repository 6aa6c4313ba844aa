//! What the sender keeps per subscription besides its target: delivery options, the run of
//! failures behind automatic disabling, and disabling itself.

use chrono::{DateTime, Utc};

use crate::{DbError, Pool};

/// The most requests one subscription may have in flight.
pub const MAX_IN_FLIGHT: u32 = 1000;
/// The highest per-subscription rate limit, in requests per second.
pub const MAX_RATE_LIMIT: u32 = 10_000;
/// The longest per-request timeout a subscription may set (migration 20's CHECK on
/// `subscriptions.timeout_ms` holds the column to it too).
pub const MAX_TIMEOUT_MS: u32 = 30_000;

/// Per-subscription delivery options; `None` means the deployment's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Strict FIFO: one request in flight; a failing head blocks only this subscription.
    pub ordered: bool,
    pub max_in_flight: Option<u32>,
    pub rate_limit_per_sec: Option<u32>,
    pub timeout_ms: Option<u32>,
    /// Send no `traceparent` header to this subscription.
    pub omit_traceparent: bool,
}

impl DeliveryOptions {
    /// From a row with the columns `ordered, max_in_flight, rate_limit_per_sec, timeout_ms,
    /// omit_traceparent`.
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> Self {
        // The columns' CHECK constraints keep them positive; anything else reads as the default.
        let positive = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
        Self {
            ordered: row.get("ordered"),
            max_in_flight: positive(row.get("max_in_flight")),
            rate_limit_per_sec: positive(row.get("rate_limit_per_sec")),
            timeout_ms: positive(row.get("timeout_ms")),
            omit_traceparent: row.get("omit_traceparent"),
        }
    }
}

/// Sets the options (for the control API). Returns false when the subscription does not exist.
pub async fn set_options(
    pool: &Pool,
    subscription_id: &str,
    options: &DeliveryOptions,
) -> Result<bool, DbError> {
    let signed = |v: Option<u32>| v.map(|v| v.min(i32::MAX as u32) as i32);
    let client = pool.get().await?;
    let n = client
        .execute(
            "UPDATE subscriptions SET ordered = $2, max_in_flight = $3, rate_limit_per_sec = $4,
                    timeout_ms = $5, omit_traceparent = $6, updated_at = now()
             WHERE id = $1",
            &[
                &subscription_id,
                &options.ordered,
                &signed(options.max_in_flight),
                &signed(options.rate_limit_per_sec),
                &signed(options.timeout_ms),
                &options.omit_traceparent,
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Outcomes of a batch of attempts, per subscription: the last one decides.
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    pub succeeded: Vec<String>,
    pub failed: Vec<String>,
}

/// Ends the failure run of subscriptions that succeeded and starts one for those that failed.
pub async fn record_outcomes(pool: &Pool, outcomes: &Outcomes) -> Result<(), DbError> {
    let client = pool.get().await?;
    if !outcomes.succeeded.is_empty() {
        client
            .execute(
                "UPDATE subscriptions SET failing_since = NULL
                 WHERE id = ANY($1) AND failing_since IS NOT NULL",
                &[&outcomes.succeeded],
            )
            .await?;
    }
    if !outcomes.failed.is_empty() {
        client
            .execute(
                "UPDATE subscriptions SET failing_since = now()
                 WHERE id = ANY($1) AND failing_since IS NULL",
                &[&outcomes.failed],
            )
            .await?;
    }
    Ok(())
}

/// A subscription the sender disabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disabled {
    pub subscription_id: String,
    pub portal_id: String,
    pub url: String,
    pub failing_since: Option<DateTime<Utc>>,
}

/// Disables every enabled subscription failing since before `cutoff`.
pub async fn disable_failing(pool: &Pool, cutoff: DateTime<Utc>) -> Result<Vec<Disabled>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "WITH failing AS (
                 SELECT id, failing_since FROM subscriptions
                 WHERE enabled AND failing_since < $1 FOR UPDATE)
             UPDATE subscriptions s SET enabled = FALSE, disabled_reason = 'failing',
                    failing_since = NULL, updated_at = now()
             FROM failing WHERE s.id = failing.id
             RETURNING s.id, s.portal_id, s.url, failing.failing_since",
            &[&cutoff],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Disabled {
            subscription_id: r.get(0),
            portal_id: r.get(1),
            url: r.get(2),
            failing_since: r.get(3),
        })
        .collect())
}

/// Disables one subscription with `reason`; `None` when it was not enabled (already disabled or
/// deleted), so the caller announces each disabling once.
pub async fn disable(pool: &Pool, subscription_id: &str, reason: &str) -> Result<Option<Disabled>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "WITH target AS (SELECT id, failing_since FROM subscriptions WHERE id = $1 AND enabled FOR UPDATE)
             UPDATE subscriptions s SET enabled = FALSE, disabled_reason = $2, failing_since = NULL,
                    updated_at = now()
             FROM target WHERE s.id = target.id
             RETURNING s.id, s.portal_id, s.url, target.failing_since",
            &[&subscription_id, &reason],
        )
        .await?;
    Ok(row.map(|r| Disabled {
        subscription_id: r.get(0),
        portal_id: r.get(1),
        url: r.get(2),
        failing_since: r.get(3),
    }))
}

/// How many subscriptions the system has disabled (a `disabled_reason`: gone, failing) and
/// nobody has resumed since, across the whole deployment. Paused ones are not counted.
pub async fn count_disabled(pool: &Pool) -> Result<i64, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT count(*) FROM subscriptions WHERE NOT enabled AND disabled_reason IS NOT NULL",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The portal a subscription belongs to; `None` when it does not exist.
pub async fn portal_of(pool: &Pool, subscription_id: &str) -> Result<Option<String>, DbError> {
    let client = pool.get().await?;
    let row =
        client.query_opt("SELECT portal_id FROM subscriptions WHERE id = $1", &[&subscription_id]).await?;
    Ok(row.map(|r| r.get(0)))
}
