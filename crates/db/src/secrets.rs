//! Signing secrets: Standard Webhooks `whsec_<base64>` keys, sealed at rest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use crate::secret_box::Slot;
use crate::{DbError, Pool, SecretBox};

/// Prefix of every signing secret (Standard Webhooks).
pub const PREFIX: &str = "whsec_";

/// A new random secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate() -> String {
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// Where a signing secret is sealed: bound to its subscription and to its own row, so that it
/// opens neither in another subscription's row nor in another row of the same subscription.
pub fn slot(subscription_id: &str, row_id: i64) -> Slot {
    Slot::new("subscription_secrets", "secret", format!("{subscription_id}/{row_id}"))
}

/// Stores `secret` as the subscription's current secret. `client` must be in a transaction:
/// the sealing key's canary is touched in it (see [`crate::keyring`]).
pub async fn insert(
    client: &impl deadpool_postgres::GenericClient,
    secrets: &SecretBox,
    subscription_id: &str,
    secret: &str,
) -> Result<(), DbError> {
    crate::keyring::touch(client, secrets).await?;
    // The row id is part of the sealed value's slot, so it is taken before the insert.
    let row_id: i64 = client
        .query_one("SELECT nextval(pg_get_serial_sequence('subscription_secrets', 'id'))", &[])
        .await?
        .get(0);
    let sealed = secrets.seal(secret.as_bytes(), &slot(subscription_id, row_id));
    client
        .execute(
            "INSERT INTO subscription_secrets (id, subscription_id, secret) VALUES ($1, $2, $3)",
            &[&row_id, &subscription_id, &sealed],
        )
        .await?;
    Ok(())
}

/// The secrets that sign a delivery now: the current one first, then any previous one still in
/// its rotation overlap.
pub async fn valid(pool: &Pool, secrets: &SecretBox, subscription_id: &str) -> Result<Vec<String>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, secret FROM subscription_secrets
             WHERE subscription_id = $1 AND (expires_at IS NULL OR expires_at > now())
             ORDER BY (expires_at IS NULL) DESC, created_at DESC",
            &[&subscription_id],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let (row_id, sealed): (i64, Vec<u8>) = (row.get(0), row.get(1));
            String::from_utf8(secrets.open(&sealed, &slot(subscription_id, row_id))?)
                .map_err(|_| DbError::Corrupt("signing secret is not UTF-8".into()))
        })
        .collect()
}

/// When the next of the subscription's valid secrets expires (a previous secret in its rotation
/// overlap), if any: a cache of [`valid`] must not outlive it.
pub async fn next_expiry(pool: &Pool, subscription_id: &str) -> Result<Option<DateTime<Utc>>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT min(expires_at) FROM subscription_secrets
             WHERE subscription_id = $1 AND expires_at > now()",
            &[&subscription_id],
        )
        .await?;
    Ok(row.get(0))
}

/// Makes `new_secret` current; the previous current secret stays valid until `overlap_until`.
pub async fn rotate(
    pool: &Pool,
    secrets: &SecretBox,
    subscription_id: &str,
    new_secret: &str,
    overlap_until: DateTime<Utc>,
) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE subscription_secrets SET expires_at = $2
         WHERE subscription_id = $1 AND expires_at IS NULL",
        &[&subscription_id, &overlap_until],
    )
    .await?;
    insert(&tx, secrets, subscription_id, new_secret).await?;
    tx.commit().await?;
    Ok(())
}
