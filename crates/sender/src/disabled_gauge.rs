//! `synap_subscriptions_disabled` is a cluster-wide number read from PostgreSQL: the
//! subscriptions the system disabled (410 Gone, failing for the whole window) that nobody has
//! resumed. Counting what one process did since it started would reset on every restart, miss
//! what other replicas disabled and never go down on a resume. Every sender replica exports the
//! same value, so alerts and dashboards take `max()`, never `sum()`.

use std::time::Duration;

use synap_db::Pool;
use synap_telemetry::metrics::metrics;
use tokio_util::sync::CancellationToken;

/// How often every replica counts again; a replica that disables one counts at once.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// Sets the gauge from the database; on an error it keeps its last value (`/readyz` reports the
/// database itself).
pub async fn refresh(pool: &Pool) {
    match synap_db::delivery_state::count_disabled(pool).await {
        Ok(count) => {
            metrics().subscriptions_disabled().set(count);
        }
        Err(error) => tracing::warn!(%error, "disabled subscriptions not counted"),
    }
}

/// Refreshes the gauge at start and every [`REFRESH_EVERY`] until shutdown.
pub async fn run(pool: Pool, shutdown: CancellationToken) {
    loop {
        refresh(&pool).await;
        tokio::select! {
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
