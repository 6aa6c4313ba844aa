//! Signing secrets: Standard Webhooks `whsec_<base64>` keys, sealed at rest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

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

/// Stores `secret` as the subscription's current secret.
pub async fn insert(
    client: &impl deadpool_postgres::GenericClient,
    secrets: &SecretBox,
    subscription_id: &str,
    secret: &str,
) -> Result<(), DbError> {
    client
        .execute(
            "INSERT INTO subscription_secrets (subscription_id, secret) VALUES ($1, $2)",
            &[&subscription_id, &secrets.seal(secret.as_bytes())],
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
            "SELECT secret FROM subscription_secrets
             WHERE subscription_id = $1 AND (expires_at IS NULL OR expires_at > now())
             ORDER BY (expires_at IS NULL) DESC, created_at DESC",
            &[&subscription_id],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let sealed: Vec<u8> = row.get(0);
            String::from_utf8(secrets.open(&sealed)?)
                .map_err(|_| DbError::Corrupt("signing secret is not UTF-8".into()))
        })
        .collect()
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
