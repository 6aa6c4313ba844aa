//! Numbered SQL migrations, applied in order, each once. One transaction holds the pending ones,
//! so a failed run changes nothing; an advisory lock serialises concurrent runs (a Helm hook and a
//! developer's script, say).

use crate::{DbError, Pool};

/// (version, name, SQL), in order. Never edit a released migration: add the next one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "portals_and_subscriptions", include_str!("../migrations/0001_portals_and_subscriptions.sql")),
    (2, "secrets_and_attempts", include_str!("../migrations/0002_secrets_and_attempts.sql")),
    (10, "control_api", include_str!("../migrations/0010_control_api.sql")),
    (20, "delivery_guarantees", include_str!("../migrations/0020_delivery_guarantees.sql")),
    (21, "omit_traceparent", include_str!("../migrations/0021_omit_traceparent.sql")),
    (22, "attempt_vocabulary", include_str!("../migrations/0022_attempt_vocabulary.sql")),
    (23, "endpoint_circuits", include_str!("../migrations/0023_endpoint_circuits.sql")),
    (30, "encryption_canaries", include_str!("../migrations/0030_encryption_canaries.sql")),
    (40, "partitioned_attempts", include_str!("../migrations/0040_partitioned_attempts.sql")),
    (50, "subscription_filters", include_str!("../migrations/0050_subscription_filters.sql")),
    (60, "signature_schemes", include_str!("../migrations/0060_signature_schemes.sql")),
    (61, "custom_headers", include_str!("../migrations/0061_custom_headers.sql")),
    (70, "portal_sessions", include_str!("../migrations/0070_portal_sessions.sql")),
    (80, "change_notifications", include_str!("../migrations/0080_change_notifications.sql")),
    (81, "notify_custom_headers", include_str!("../migrations/0081_notify_custom_headers.sql")),
];

/// Arbitrary constant naming the lock; any other user of advisory locks must avoid it.
const LOCK_KEY: i64 = 0x5359_4e41_5000_0001;

/// Applies the pending migrations and returns their versions.
pub async fn run(pool: &Pool) -> Result<Vec<i32>, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: Vec<i32> =
        tx.query("SELECT version FROM schema_migrations", &[]).await?.iter().map(|row| row.get(0)).collect();
    let mut ran = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, name, "applying migration");
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[version, name]).await?;
        ran.push(*version);
    }
    tx.commit().await?;
    Ok(ran)
}

#[cfg(test)]
mod rollback_safety;
