//! Which encryption keys the database's sealed values need, kept in the database itself, so a
//! service started with the wrong key refuses to start instead of failing every delivery.
//!
//! Invariant: for every key the database holds sealed values under, `encryption_canaries` has a
//! row, a known text sealed under that key. Every write of a sealed value runs in a transaction
//! that also touches its key's canary ([`touch`]), so a value never exists without one; and
//! `synap-admin reseal` drops a canary only under that canary's row lock, after finding no value
//! left under its key, so a concurrent write either waits for the drop and writes the canary
//! again, or is waited for and then seen, which keeps the canary. The row lock serialises writes
//! of sealed values for the length of their (short) transactions: control-API rates, not the
//! delivery path, which only opens. Values sealed before key ids existed (layout 1) have one
//! canary, `legacy`: a copy of one of them, taken at the first start that finds them.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use synap_runtime::retry::{Stopped, transient};
use synap_runtime::{Classify, Fault};
use tokio_util::sync::CancellationToken;

use crate::secret_box::{KeyId, Layout, SecretBox, Slot};
use crate::{DbError, Pool};

/// The readiness check [`check_at_start`] passes; a service declares it before it serves
/// `/readyz`, so that it is not ready before its keys are checked.
pub const READINESS: &str = "encryption_keys";
/// The `key_id` of the canary of layout-1 values.
pub const LEGACY: &str = "legacy";
/// What a canary seals; known, so opening it proves the key.
const CANARY_TEXT: &[u8] = b"synap-webhooks encryption canary";
/// The columns that hold sealed values: `(table, column)`.
pub const SEALED_COLUMNS: [(&str, &str); 3] = [
    ("subscriptions", "basic_auth_password"),
    ("subscription_secrets", "secret"),
    ("subscription_headers", "sealed_value"),
];

/// Where the canary of `key_id` lives.
fn slot(key_id: &str) -> Slot {
    Slot::new("encryption_canaries", "canary", key_id)
}

/// The `key_id` column of a canary: `legacy` or the hex key id.
pub fn canary_id(layout: Layout) -> String {
    match layout {
        Layout::Legacy => LEGACY.to_owned(),
        Layout::Keyed(id) => id.to_string(),
    }
}

/// The first bytes of every value stored under `layout`.
pub fn prefix(layout: Layout) -> Vec<u8> {
    match layout {
        Layout::Legacy => vec![1],
        Layout::Keyed(id) => id.header().to_vec(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "the database holds secrets sealed under key id {key_id}, and no key in `encryption.keys` \
         (or `encryption.key`) has that id (configured key ids: {configured}); configure that key \
         (see the key rotation procedure in the README)"
    )]
    Missing { key_id: String, configured: String },
    #[error(
        "the key with id {key_id} in `encryption.keys` (or `encryption.key`) does not open the \
         database's canary for that id: the canary is damaged"
    )]
    WrongKey { key_id: String },
    #[error(
        "the database holds secrets sealed before key ids existed, and no key in `encryption.keys` \
         (or `encryption.key`) opens them (configured key ids: {configured}); configure the key \
         they were sealed with"
    )]
    Legacy { configured: String },
    #[error("`encryption_canaries` holds a row whose key id {key_id:?} is not a key id")]
    Corrupt { key_id: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Classify for KeyCheckError {
    fn fault(&self) -> Fault {
        match self {
            KeyCheckError::Db(e) => e.fault(),
            _ => Fault::Permanent,
        }
    }
}

fn configured(secrets: &SecretBox) -> String {
    secrets.key_ids().map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
}

/// Makes sure the canary of the sealing key exists, and holds its row lock until the
/// transaction of `client` ends. Call it in the transaction that writes a value sealed now.
pub async fn touch(client: &impl GenericClient, secrets: &SecretBox) -> Result<(), DbError> {
    let key_id = secrets.sealing_key_id().to_string();
    let canary = secrets.seal(CANARY_TEXT, &slot(&key_id));
    // DO UPDATE, not DO NOTHING: it takes the row lock that `drop_if_unused` waits for.
    client
        .execute(
            "INSERT INTO encryption_canaries (key_id, canary) VALUES ($1, $2)
             ON CONFLICT (key_id) DO UPDATE SET key_id = EXCLUDED.key_id",
            &[&key_id, &canary],
        )
        .await?;
    Ok(())
}

/// What the database's values need, as [`check`] found it.
#[derive(Debug, Default)]
pub struct Checked {
    /// `legacy` and hex key ids with a canary, every one opened by a configured key.
    pub key_ids: Vec<String>,
}

/// Checks that the configured keys open every canary, adding the legacy canary when layout-1
/// values exist without one and the sealing key's canary when it is missing.
pub async fn check(pool: &Pool, secrets: &SecretBox) -> Result<Checked, KeyCheckError> {
    let client = pool.get().await.map_err(DbError::from)?;
    let mut canaries: Vec<(String, Vec<u8>)> = client
        .query("SELECT key_id, canary FROM encryption_canaries ORDER BY created_at, key_id", &[])
        .await
        .map_err(DbError::from)?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    if canaries.is_empty()
        && let Some(old) = legacy_sample(&client).await?
    {
        // The first start after an upgrade from layout 1: one of those values becomes their
        // canary, once a configured key is known to open it (a refused start writes nothing).
        secrets
            .open(&old, &slot(LEGACY))
            .map_err(|_| KeyCheckError::Legacy { configured: configured(secrets) })?;
        client
            .execute(
                "INSERT INTO encryption_canaries (key_id, canary) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&LEGACY, &old],
            )
            .await
            .map_err(DbError::from)?;
        canaries.push((LEGACY.to_owned(), old));
    }
    for (key_id, canary) in &canaries {
        if key_id == LEGACY {
            secrets
                .open(canary, &slot(key_id))
                .map_err(|_| KeyCheckError::Legacy { configured: configured(secrets) })?;
            continue;
        }
        let id = KeyId::parse(key_id).ok_or_else(|| KeyCheckError::Corrupt { key_id: key_id.clone() })?;
        if !secrets.has_key(id) {
            return Err(KeyCheckError::Missing { key_id: key_id.clone(), configured: configured(secrets) });
        }
        match secrets.open(canary, &slot(key_id)) {
            Ok(text) if text == CANARY_TEXT => {}
            _ => return Err(KeyCheckError::WrongKey { key_id: key_id.clone() }),
        }
    }
    let sealing = secrets.sealing_key_id().to_string();
    if !canaries.iter().any(|(id, _)| *id == sealing) {
        touch(&client, secrets).await?;
        canaries.push((sealing, Vec::new()));
    }
    Ok(Checked { key_ids: canaries.into_iter().map(|(id, _)| id).collect() })
}

/// One layout-1 value, if any remains.
async fn legacy_sample(client: &impl GenericClient) -> Result<Option<Vec<u8>>, DbError> {
    for (table, column) in SEALED_COLUMNS {
        let row = client
            .query_opt(
                &format!(
                    "SELECT {column} FROM {table} WHERE substring({column} from 1 for 1) = '\\x01'::bytea LIMIT 1"
                ),
                &[],
            )
            .await?;
        if let Some(row) = row {
            return Ok(Some(row.get(0)));
        }
    }
    Ok(None)
}

/// [`check`] at a service's start: waits out an unreachable database (the `encryption_keys`
/// readiness check stays failed meanwhile) and returns the first permanent failure. Returns
/// `Ok` also when `shutdown` fires first; the caller then stops.
pub async fn check_at_start(
    pool: &Pool,
    secrets: &SecretBox,
    readiness: &synap_telemetry::Readiness,
    shutdown: &CancellationToken,
) -> Result<(), KeyCheckError> {
    readiness.require(READINESS);
    let checked = transient(
        shutdown,
        Duration::from_millis(200),
        || check(pool, secrets),
        |error, wait| tracing::warn!(%error, ?wait, "cannot check the encryption keys yet; retrying"),
    )
    .await;
    match checked {
        Ok(checked) => {
            tracing::info!(
                sealing_key_id = %secrets.sealing_key_id(),
                database_key_ids = ?checked.key_ids,
                "encryption keys open every sealed value's canary"
            );
            readiness.set(READINESS, Ok(()));
            Ok(())
        }
        Err(Stopped::Shutdown) => Ok(()),
        Err(Stopped::Permanent(error)) => Err(error),
    }
}

/// How many values are still stored under `layout`, per sealed column.
pub async fn values_under(client: &impl GenericClient, layout: Layout) -> Result<u64, DbError> {
    let prefix = prefix(layout);
    let mut total = 0;
    for (table, column) in SEALED_COLUMNS {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {table} WHERE substring({column} from 1 for octet_length($1::bytea)) = $1::bytea"
                ),
                &[&prefix],
            )
            .await?;
        total += row.get::<_, i64>(0) as u64;
    }
    Ok(total)
}

/// Drops the canary of `layout` when no value is stored under it any more; returns how many
/// values remain (0 when dropped). The sealing key's canary is never dropped: its values are
/// only counted.
pub async fn drop_if_unused(pool: &Pool, secrets: &SecretBox, layout: Layout) -> Result<u64, DbError> {
    let sealing = layout == Layout::Keyed(secrets.sealing_key_id());
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // The lock `touch` takes too: a write under this key waits for this transaction, or this
    // transaction waits for the write and then sees its value.
    tx.query("SELECT 1 FROM encryption_canaries WHERE key_id = $1 FOR UPDATE", &[&canary_id(layout)]).await?;
    let remaining = values_under(&tx, layout).await?;
    if remaining == 0 && !sealing {
        tx.execute("DELETE FROM encryption_canaries WHERE key_id = $1", &[&canary_id(layout)]).await?;
    }
    tx.commit().await?;
    Ok(remaining)
}

/// Every canary's key id (`legacy` or hex), oldest first.
pub async fn canary_ids(pool: &Pool) -> Result<Vec<String>, DbError> {
    let client = pool.get().await?;
    Ok(client
        .query("SELECT key_id FROM encryption_canaries ORDER BY created_at, key_id", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}
