//! Portal API keys: bearer tokens that act for one portal. Only a token's SHA-256 is stored;
//! the plain token is returned once, at creation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use crate::{DbError, Pool};

/// Prefix of every portal API key token, so that leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "sk_";
/// How many leading characters of a token listings show.
const SHOWN_PREFIX_LEN: usize = 10;

#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: String,
    pub portal_id: String,
    pub name: String,
    pub token_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, portal_id, name, token_prefix, created_at, revoked_at, last_used_at";

impl ApiKey {
    fn from_row(row: &Row) -> Self {
        ApiKey {
            id: row.get("id"),
            portal_id: row.get("portal_id"),
            name: row.get("name"),
            token_prefix: row.get("token_prefix"),
            created_at: row.get("created_at"),
            revoked_at: row.get("revoked_at"),
            last_used_at: row.get("last_used_at"),
        }
    }
}

/// The stored form of a token.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random token: `sk_` and 32 random bytes, URL-safe base64.
fn generate_token() -> String {
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Creates a key for `portal_id`; returns it with its plain token, which is not stored.
pub async fn create(pool: &Pool, portal_id: &str, name: &str) -> Result<(ApiKey, String), DbError> {
    let id = format!("key_{}", uuid::Uuid::now_v7().simple());
    let token = generate_token();
    let client = pool.get().await?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO api_keys (id, portal_id, name, token_hash, token_prefix)
                 VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
            ),
            &[&id, &portal_id, &name, &hash(&token), &&token[..SHOWN_PREFIX_LEN]],
        )
        .await?;
    Ok((ApiKey::from_row(&row), token))
}

/// A portal's keys, newest first.
pub async fn list(pool: &Pool, portal_id: &str, include_revoked: bool) -> Result<Vec<ApiKey>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM api_keys WHERE portal_id = $1 AND ($2 OR revoked_at IS NULL)
                 ORDER BY created_at DESC, id DESC"
            ),
            &[&portal_id, &include_revoked],
        )
        .await?;
    Ok(rows.iter().map(ApiKey::from_row).collect())
}

/// Revokes the key (keeping the first revocation time); `None` when it does not exist.
pub async fn revoke(pool: &Pool, id: &str) -> Result<Option<ApiKey>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(ApiKey::from_row))
}

/// The portal a live (unrevoked) token acts for. Records the use at most once a minute, so
/// that authentication does not write on every call.
pub async fn authenticate(pool: &Pool, token: &str) -> Result<Option<String>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT id, portal_id, last_used_at < now() - interval '1 minute' OR last_used_at IS NULL
             FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL",
            &[&hash(token)],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let (id, portal_id, stale): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
    if stale {
        client.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", &[&id]).await?;
    }
    Ok(Some(portal_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }
}
