//! What control reads back of a test send: the sender's row for its first attempt.

use crate::{DbError, Pool};

/// The outcome of one attempt, as the sender logged it in `delivery_attempts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// delivered, failed, exhausted or dropped.
    pub outcome: String,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub error_class: Option<String>,
}

/// The first logged attempt of `event_id` to `subscription_id`, once the sender wrote it.
pub async fn first_attempt(
    pool: &Pool,
    event_id: &str,
    subscription_id: &str,
) -> Result<Option<AttemptOutcome>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT outcome, status_code, latency_ms, error, error_class FROM delivery_attempts
             WHERE event_id = $1 AND subscription_id = $2 ORDER BY attempt, id LIMIT 1",
            &[&event_id, &subscription_id],
        )
        .await?;
    Ok(row.map(|row| AttemptOutcome {
        outcome: row.get(0),
        status_code: row.get(1),
        latency_ms: row.get(2),
        error: row.get(3),
        error_class: row.get(4),
    }))
}
