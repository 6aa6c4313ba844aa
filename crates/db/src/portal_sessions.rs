//! Web portal sign-in: single-use links and the browser sessions they start. Both tokens are
//! random and stored only as their SHA-256, like API keys: the database never holds what signs
//! a browser in.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{DbError, Pool};

/// Prefix of sign-in link tokens, so that one pasted somewhere is recognisable.
pub const LINK_PREFIX: &str = "pl_";
/// Prefix of session cookie values.
pub const SESSION_PREFIX: &str = "ps_";

/// Who a link or session signs in: one portal, and whether only to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    pub portal_id: String,
    pub read_only: bool,
    pub expires_at: DateTime<Utc>,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// `prefix` and 32 random bytes, URL-safe base64: unguessable, and safe in a URL path and a
/// cookie value without escaping.
fn generate(prefix: &str) -> String {
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn until(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

/// Mints a sign-in link token for `portal_id`, valid for `ttl`; returns the plain token (not
/// stored) and its expiry. Deletes links and sessions that expired a day ago or more on the way:
/// minting is rare, so the tables stay small without a background task.
pub async fn create_link(
    pool: &Pool,
    portal_id: &str,
    read_only: bool,
    ttl: Duration,
) -> Result<(String, DateTime<Utc>), DbError> {
    let token = generate(LINK_PREFIX);
    let expires_at = until(ttl);
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO portal_sign_in_links (token_hash, portal_id, read_only, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[&hash(&token), &portal_id, &read_only, &expires_at],
        )
        .await?;
    client
        .batch_execute(
            "DELETE FROM portal_sign_in_links WHERE expires_at < now() - interval '1 day';
             DELETE FROM portal_sessions WHERE expires_at < now() - interval '1 day';",
        )
        .await?;
    Ok((token, expires_at))
}

/// Opens a link: marks it used and starts a session valid for `session_ttl`, in one
/// transaction. `None` when the link is unknown, expired or used before: the `UPDATE … WHERE
/// used_at IS NULL` lets exactly one of two concurrent openings through.
pub async fn open_link(
    pool: &Pool,
    link_token: &str,
    session_ttl: Duration,
) -> Result<Option<(String, SignIn)>, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            "UPDATE portal_sign_in_links SET used_at = now()
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
             RETURNING portal_id, read_only",
            &[&hash(link_token)],
        )
        .await?
    else {
        return Ok(None);
    };
    let (portal_id, read_only): (String, bool) = (row.get(0), row.get(1));
    let session = generate(SESSION_PREFIX);
    let expires_at = until(session_ttl);
    tx.execute(
        "INSERT INTO portal_sessions (token_hash, portal_id, read_only, expires_at) VALUES ($1, $2, $3, $4)",
        &[&hash(&session), &portal_id, &read_only, &expires_at],
    )
    .await?;
    tx.commit().await?;
    Ok(Some((session, SignIn { portal_id, read_only, expires_at })))
}

/// The live session a cookie value names; `None` when unknown or expired.
pub async fn session(pool: &Pool, token: &str) -> Result<Option<SignIn>, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT portal_id, read_only, expires_at FROM portal_sessions
             WHERE token_hash = $1 AND expires_at > now()",
            &[&hash(token)],
        )
        .await?;
    Ok(row.map(|r| SignIn { portal_id: r.get(0), read_only: r.get(1), expires_at: r.get(2) }))
}

/// Ends a session (sign-out).
pub async fn end_session(pool: &Pool, token: &str) -> Result<(), DbError> {
    let client = pool.get().await?;
    client.execute("DELETE FROM portal_sessions WHERE token_hash = $1", &[&hash(token)]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_url_safe() {
        let (a, b) = (generate(LINK_PREFIX), generate(LINK_PREFIX));
        assert_ne!(a, b);
        assert!(a.starts_with(LINK_PREFIX) && a.len() == LINK_PREFIX.len() + 43);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(hash(&a), hash(&b));
    }
}
