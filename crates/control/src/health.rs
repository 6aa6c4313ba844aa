//! GetSubscriptionHealth: a subscription's last 24 hours from the attempt log, with its
//! endpoint's circuit and its own state, for the portal's health view.

use chrono::Utc;
use synap_db::Pool;
use synap_db::circuits::CircuitState;
use synap_db::subscriptions::State;
use synap_proto::control::v1 as api;
use tonic::Status;

use crate::convert::{state_to_api, timestamp};
use crate::errors::db;

/// The window the health view covers.
const WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The health of `sub` (the caller's access is checked already).
pub async fn of(pool: &Pool, sub: synap_db::Subscription) -> Result<api::SubscriptionHealth, Status> {
    let since = Utc::now() - WINDOW;
    let hours = synap_db::health::hourly(pool, &sub.id, since).await.map_err(db)?;
    let last_error = synap_db::health::last_error(pool, &sub.id, since).await.map_err(db)?;
    let circuit = synap_db::circuits::of_subscription(pool, &sub.id).await.map_err(db)?;
    let (delivered, total) =
        hours.iter().fold((0i64, 0i64), |(d, t), h| (d + h.delivered, t + h.delivered + h.failed));
    let open = circuit.filter(|c| c.state == CircuitState::Open);
    let state = sub.state();
    let clamp = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    Ok(api::SubscriptionHealth {
        since: Some(timestamp(since)),
        buckets: hours
            .iter()
            .map(|h| api::HealthBucket {
                start: Some(timestamp(h.start)),
                delivered: clamp(h.delivered),
                failed: clamp(h.failed),
                mean_latency_ms: h.mean_latency_ms.round() as u32,
                p95_latency_ms: h.p95_latency_ms.round() as u32,
            })
            .collect(),
        success_rate: (total > 0).then(|| delivered as f64 / total as f64),
        last_error_at: last_error.as_ref().map(|e| timestamp(e.at)),
        last_error_class: last_error.as_ref().and_then(|e| e.error_class.clone()).unwrap_or_default(),
        last_error: last_error.and_then(|e| e.error).unwrap_or_default(),
        circuit_open: open.is_some(),
        circuit_opened_at: open.as_ref().and_then(|c| c.opened_at).map(timestamp),
        circuit_reason: open.and_then(|c| c.reason).unwrap_or_default(),
        state: state_to_api(state) as i32,
        disabled_reason: sub.disabled_reason.clone().unwrap_or_default(),
        // Pausing and disabling both stamp `updated_at`; while inactive nothing else changes
        // it but an edit, so it is when the subscription stopped receiving (or later).
        inactive_since: (state != State::Active).then(|| timestamp(sub.updated_at)),
        subscription_id: sub.id,
    })
}
