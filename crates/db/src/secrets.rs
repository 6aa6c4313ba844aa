//! Signing keys, sealed at rest: Standard Webhooks `whsec_<base64>` secrets (scheme v1,
//! HMAC-SHA256) and `whsk_<base64>` Ed25519 signing keys (scheme v1a), whose `whpk_<base64>`
//! public key is stored beside them in the clear.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use crate::secret_box::Slot;
use crate::{DbError, Pool, SecretBox};

/// Prefix of every v1 signing secret (Standard Webhooks).
pub const PREFIX: &str = "whsec_";
/// Prefix of a v1a secret key: base64 of the 64-byte Ed25519 key pair (the 32-byte seed, then
/// the 32-byte public key), the layout of RFC 8032 implementations such as NaCl and of svix.
pub const SECRET_KEY_PREFIX: &str = "whsk_";
/// Prefix of a v1a public key: base64 of the 32-byte Ed25519 public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// How deliveries to a subscription are signed (the `webhook-signature` identifiers of Standard
/// Webhooks). Stored per key as `subscription_secrets.scheme`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// HMAC-SHA256 with a secret both sides hold.
    #[default]
    V1,
    /// Ed25519: Synap signs with a key only it holds; the customer verifies with the public key.
    V1a,
}

impl Scheme {
    pub fn code(self) -> &'static str {
        match self {
            Scheme::V1 => "v1",
            Scheme::V1a => "v1a",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "v1" => Some(Scheme::V1),
            "v1a" => Some(Scheme::V1a),
            _ => None,
        }
    }
}

/// A signing key opened for the sender. Its `Debug` never shows the key.
#[derive(Clone)]
pub enum SigningKey {
    /// `whsec_…`, as the customer holds it.
    V1(String),
    V1a(ed25519_dalek::SigningKey),
}

impl SigningKey {
    pub fn scheme(&self) -> Scheme {
        match self {
            SigningKey::V1(_) => Scheme::V1,
            SigningKey::V1a(_) => Scheme::V1a,
        }
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SigningKey::V1(a), SigningKey::V1(b)) => a == b,
            (SigningKey::V1a(a), SigningKey::V1a(b)) => a.to_keypair_bytes() == b.to_keypair_bytes(),
            _ => false,
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningKey::V1(_) => f.write_str("SigningKey::V1(..)"),
            SigningKey::V1a(key) => write!(f, "SigningKey::V1a({})", public_key_text(&key.verifying_key())),
        }
    }
}

/// A key just generated, before it is stored: its text (`whsec_…` or `whsk_…`) and, for v1a,
/// its public key. Its `Debug` never shows the secret.
pub struct NewKey {
    pub scheme: Scheme,
    pub secret: String,
    pub public_key: Option<String>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("scheme", &self.scheme)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

fn random_32() -> [u8; 32] {
    use aes_gcm::aead::rand_core::RngCore;
    let mut bytes = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new random v1 secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate() -> String {
    format!("{PREFIX}{}", STANDARD.encode(random_32()))
}

/// A new random key of `scheme`.
pub fn generate_key(scheme: Scheme) -> NewKey {
    match scheme {
        Scheme::V1 => NewKey { scheme, secret: generate(), public_key: None },
        Scheme::V1a => {
            let key = ed25519_dalek::SigningKey::from_bytes(&random_32());
            NewKey {
                scheme,
                secret: secret_key_text(&key),
                public_key: Some(public_key_text(&key.verifying_key())),
            }
        }
    }
}

/// `whsk_` + base64 of the key pair (seed, then public key).
pub fn secret_key_text(key: &ed25519_dalek::SigningKey) -> String {
    format!("{SECRET_KEY_PREFIX}{}", STANDARD.encode(key.to_keypair_bytes()))
}

/// `whpk_` + base64 of the public key.
pub fn public_key_text(key: &ed25519_dalek::VerifyingKey) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(key.to_bytes()))
}

/// Reads a `whsk_` key back; its public half must match its seed. The error never shows the key.
pub fn parse_secret_key(text: &str) -> Result<ed25519_dalek::SigningKey, DbError> {
    let corrupt = |why: &str| DbError::Corrupt(format!("v1a signing key {why}"));
    let encoded = text.strip_prefix(SECRET_KEY_PREFIX).ok_or_else(|| corrupt("does not start with whsk_"))?;
    let bytes = STANDARD.decode(encoded).map_err(|_| corrupt("is not base64"))?;
    let pair: [u8; 64] = bytes.try_into().map_err(|_| corrupt("is not 64 bytes"))?;
    ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
        .map_err(|_| corrupt("holds a public key that does not match its seed"))
}

/// Where a signing key is sealed: bound to its subscription and to its own row, so that it
/// opens neither in another subscription's row nor in another row of the same subscription.
pub fn slot(subscription_id: &str, row_id: i64) -> Slot {
    Slot::new("subscription_secrets", "secret", format!("{subscription_id}/{row_id}"))
}

/// Stores `key` as the subscription's current key. `client` must be in a transaction: the
/// sealing key's canary is touched in it (see [`crate::keyring`]).
pub async fn insert(
    client: &impl deadpool_postgres::GenericClient,
    secrets: &SecretBox,
    subscription_id: &str,
    key: &NewKey,
) -> Result<(), DbError> {
    crate::keyring::touch(client, secrets).await?;
    // The row id is part of the sealed value's slot, so it is taken before the insert.
    let row_id: i64 = client
        .query_one("SELECT nextval(pg_get_serial_sequence('subscription_secrets', 'id'))", &[])
        .await?
        .get(0);
    let sealed = secrets.seal(key.secret.as_bytes(), &slot(subscription_id, row_id));
    client
        .execute(
            "INSERT INTO subscription_secrets (id, subscription_id, secret, scheme, public_key)
             VALUES ($1, $2, $3, $4, $5)",
            &[&row_id, &subscription_id, &sealed, &key.scheme.code(), &key.public_key],
        )
        .await?;
    Ok(())
}

/// The keys that sign a delivery now: the current one first, then any previous one still in its
/// rotation overlap (of either scheme: moving from v1 to v1a sends both signatures meanwhile).
pub async fn valid(
    pool: &Pool,
    secrets: &SecretBox,
    subscription_id: &str,
) -> Result<Vec<SigningKey>, DbError> {
    let client = pool.get().await?;
    let rows = client.query(VALID_SQL, &[&subscription_id]).await?;
    opened_keys(&rows, secrets, subscription_id)
}

/// The subscription's valid secrets (`$1`), current first: what [`opened_keys`] reads.
pub(crate) const VALID_SQL: &str = "SELECT id, secret, scheme FROM subscription_secrets
     WHERE subscription_id = $1 AND (expires_at IS NULL OR expires_at > now())
     ORDER BY (expires_at IS NULL) DESC, created_at DESC, id DESC";

/// The keys of [`VALID_SQL`]'s rows, opened.
pub(crate) fn opened_keys(
    rows: &[tokio_postgres::Row],
    secrets: &SecretBox,
    subscription_id: &str,
) -> Result<Vec<SigningKey>, DbError> {
    // Sized to the rows: collecting `Result`s cannot know the count and starts at four keys,
    // which is most of a cached target when one key is all there is.
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let (row_id, sealed, scheme): (i64, Vec<u8>, String) = (row.get(0), row.get(1), row.get(2));
        let text = String::from_utf8(secrets.open(&sealed, &slot(subscription_id, row_id))?)
            .map_err(|_| DbError::Corrupt("signing secret is not UTF-8".into()))?;
        keys.push(match Scheme::parse(&scheme) {
            Some(Scheme::V1) => SigningKey::V1(text),
            Some(Scheme::V1a) => SigningKey::V1a(parse_secret_key(&text)?),
            None => return Err(DbError::Corrupt(format!("unknown signature scheme {scheme:?}"))),
        });
    }
    Ok(keys)
}

/// Makes `key` current; the previous current key stays valid until `overlap_until`.
pub async fn rotate(
    pool: &Pool,
    secrets: &SecretBox,
    subscription_id: &str,
    key: &NewKey,
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
    insert(&tx, secrets, subscription_id, key).await?;
    tx.commit().await?;
    Ok(())
}

/// A v1a public key that verifies deliveries now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// `whpk_…`.
    pub key: String,
    /// `None` for the current key; else when its rotation overlap ends.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What anyone may see of a subscription's signing: its scheme and its v1a public keys (current
/// first). Read without opening any sealed value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicSigning {
    pub scheme: Scheme,
    pub public_keys: Vec<PublicKey>,
}

/// [`PublicSigning`] of each of `subscription_ids` that exists.
pub async fn public(
    client: &impl deadpool_postgres::GenericClient,
    subscription_ids: &[&str],
) -> Result<HashMap<String, PublicSigning>, DbError> {
    let rows = client
        .query(
            "SELECT subscription_id, scheme, public_key, expires_at FROM subscription_secrets
             WHERE subscription_id = ANY ($1) AND (expires_at IS NULL OR expires_at > now())
             ORDER BY subscription_id, (expires_at IS NULL) DESC, created_at DESC, id DESC",
            &[&subscription_ids],
        )
        .await?;
    let mut out: HashMap<String, PublicSigning> = HashMap::new();
    for row in rows {
        let (id, scheme, key, expires_at): (String, String, Option<String>, Option<DateTime<Utc>>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let scheme = Scheme::parse(&scheme)
            .ok_or_else(|| DbError::Corrupt(format!("unknown signature scheme {scheme:?}")))?;
        let entry = out.entry(id).or_default();
        if expires_at.is_none() {
            entry.scheme = scheme;
        }
        if let Some(key) = key {
            entry.public_keys.push(PublicKey { key, expires_at });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1a_keys_round_trip_and_name_their_public_key() {
        let new = generate_key(Scheme::V1a);
        assert!(new.secret.starts_with(SECRET_KEY_PREFIX));
        let key = parse_secret_key(&new.secret).unwrap();
        assert_eq!(new.public_key.as_deref(), Some(public_key_text(&key.verifying_key()).as_str()));
        let public = STANDARD
            .decode(new.public_key.as_deref().unwrap().strip_prefix(PUBLIC_KEY_PREFIX).unwrap())
            .unwrap();
        assert_eq!(public.len(), 32);
        assert!(!format!("{new:?}").contains(&new.secret[5..]), "Debug hides the secret");
        assert!(!format!("{:?}", SigningKey::V1a(key)).contains(&new.secret[5..]));
    }

    /// RFC 8032 §7.1, TEST 1: the seed gives the RFC's public key, in the `whpk_` encoding.
    #[test]
    fn the_public_key_is_the_rfc_8032_one() {
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().unwrap();
        let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(public_key_text(&key.verifying_key()), format!("whpk_{}", STANDARD.encode(&public)));
        let text = secret_key_text(&key);
        assert_eq!(STANDARD.decode(&text[5..]).unwrap(), [seed.as_slice(), &public].concat());
        assert!(parse_secret_key(&text).is_ok());
    }

    #[test]
    fn damaged_v1a_keys_are_refused_without_showing_them() {
        let good = generate_key(Scheme::V1a).secret;
        let mut bytes = STANDARD.decode(&good[5..]).unwrap();
        bytes[40] ^= 1;
        let mismatched = format!("whsk_{}", STANDARD.encode(&bytes));
        for bad in [
            good.replace("whsk_", "whsec_"),
            "whsk_not base64!".to_owned(),
            format!("whsk_{}", STANDARD.encode([1u8; 32])),
            mismatched.clone(),
        ] {
            let error = parse_secret_key(&bad).unwrap_err().to_string();
            assert!(!error.contains(&bad[6..]), "{error}");
        }
    }

    #[test]
    fn schemes_have_one_spelling() {
        for scheme in [Scheme::V1, Scheme::V1a] {
            assert_eq!(Scheme::parse(scheme.code()), Some(scheme));
        }
        assert_eq!(Scheme::parse("V1A"), None);
    }
}
