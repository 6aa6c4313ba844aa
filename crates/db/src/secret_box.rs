//! Secrets sealed at rest with AES-256-GCM, so that a database dump alone reveals none of them.
//!
//! Layouts of a sealed value (the first byte says which):
//! - **2**: `[2][8-byte key id][12-byte random nonce][ciphertext + 16-byte tag]`. The associated
//!   data binds the value to its [`Slot`] (table, column, row), so a value copied into another
//!   row or column does not open; the key id says which configured key opens it.
//! - **1** (written before key rotation existed): `[1][nonce][ciphertext + tag]`, no key id and
//!   no associated data. Still opened, by trying every configured key; `synap-admin reseal`
//!   rewrites them as layout 2.
//!
//! Several keys may be configured: the first seals, all open. That is what makes a key
//! rotation possible without a moment where some value cannot be read.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};

const LEGACY: u8 = 1;
const KEYED: u8 = 2;
const NONCE_LEN: usize = 12;
const KEY_ID_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// Bytes before the nonce in layout 2: the version and the key id.
pub const KEYED_HEADER_LEN: usize = 1 + KEY_ID_LEN;
/// The message a key id is the HMAC of: fixed, so the id names the key without revealing it.
const KEY_ID_LABEL: &[u8] = b"synap-webhooks encryption key id v1";

/// Which key sealed a value: the first 8 bytes of HMAC-SHA256(key, a fixed label). Without the
/// key it tells nothing about it; with the key anyone can recompute it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    fn of(key: &[u8; 32]) -> Self {
        let mut mac =
            <Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(KEY_ID_LABEL);
        let digest = mac.finalize().into_bytes();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self(id)
    }

    /// Parses the hex form ([`std::fmt::Display`]).
    pub fn parse(hex: &str) -> Option<Self> {
        if hex.len() != KEY_ID_LEN * 2 || !hex.is_ascii() {
            return None;
        }
        let mut id = [0u8; KEY_ID_LEN];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(id))
    }

    /// The key id in the first bytes of a layout-2 value.
    pub fn from_header(header: &[u8]) -> Option<Self> {
        match header {
            [KEYED, id @ ..] if id.len() >= KEY_ID_LEN => Some(Self(id[..KEY_ID_LEN].try_into().ok()?)),
            _ => None,
        }
    }

    /// The first bytes of every layout-2 value sealed under this key.
    pub fn header(&self) -> [u8; KEYED_HEADER_LEN] {
        let mut header = [0u8; KEYED_HEADER_LEN];
        header[0] = KEYED;
        header[1..].copy_from_slice(&self.0);
        header
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Where a sealed value lives: its table, column and row. Part of the associated data, so the
/// value opens only there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub table: &'static str,
    pub column: &'static str,
    /// The row's owner, e.g. the subscription id (and, where one owner has several rows, the
    /// row's own id too).
    pub row: String,
}

impl Slot {
    pub fn new(table: &'static str, column: &'static str, row: impl Into<String>) -> Self {
        Self { table, column, row: row.into() }
    }

    /// The associated data: every field length-prefixed, so no two slots encode alike.
    fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        let mut aad =
            Vec::with_capacity(header.len() + 12 + self.table.len() + self.column.len() + self.row.len());
        aad.extend_from_slice(header);
        for field in [self.table, self.column, self.row.as_str()] {
            aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
            aad.extend_from_slice(field.as_bytes());
        }
        aad
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{} of {}", self.table, self.column, self.row)
    }
}

/// How a stored value was sealed, read from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Layout 1: no key id, no associated data.
    Legacy,
    /// Layout 2, under this key.
    Keyed(KeyId),
}

impl Layout {
    pub fn of(sealed: &[u8]) -> Option<Self> {
        match *sealed.first()? {
            LEGACY if sealed.len() >= 1 + NONCE_LEN + TAG_LEN => Some(Layout::Legacy),
            KEYED if sealed.len() >= KEYED_HEADER_LEN + NONCE_LEN + TAG_LEN => {
                KeyId::from_header(sealed).map(Layout::Keyed)
            }
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "`encryption.keys` (or its one-key shorthand `encryption.key`) is not set \
         (SYNAP_ENCRYPTION__KEYS / SYNAP_ENCRYPTION__KEY); generate a key with `openssl rand -base64 32`"
    )]
    MissingKey,
    #[error(
        "`encryption.key` and `encryption.keys` are both set; `encryption.key` is the one-key \
         shorthand: list every key in `encryption.keys` instead (the first seals, all open)"
    )]
    BothSet,
    #[error("`{key}` must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)")]
    BadKey { key: String },
    #[error("`{key}` repeats an earlier key of `encryption.keys` (key id {key_id})")]
    DuplicateKey { key: String, key_id: KeyId },
    #[error("the sealed value in {slot} is not a sealed value this version can read")]
    Malformed { slot: Slot },
    #[error(
        "the sealed value in {slot} is sealed under key id {key_id}, which no key in \
         `encryption.keys` has"
    )]
    UnknownKey { slot: Slot, key_id: KeyId },
    #[error(
        "the sealed value in {slot} does not open with key id {key_id} (corrupted, or copied from \
         another row or column)"
    )]
    Open { slot: Slot, key_id: KeyId },
    #[error(
        "the sealed value in {slot} (layout 1, from before key ids) opens with no key in \
         `encryption.keys`"
    )]
    OpenLegacy { slot: Slot },
}

struct SealingKey {
    id: KeyId,
    cipher: Aes256Gcm,
}

/// The configured keys: the first seals, every one opens.
#[derive(Clone)]
pub struct SecretBox {
    keys: std::sync::Arc<[SealingKey]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox").field("key_ids", &self.key_ids().collect::<Vec<_>>()).finish()
    }
}

impl SecretBox {
    /// Builds the box from one base64-encoded 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        Self::from_named(&[("encryption.key".to_owned(), key)])
    }

    /// Builds the box from base64 keys, each with the configuration key that named it (for
    /// errors); the first seals.
    fn from_named(keys: &[(String, &str)]) -> Result<Self, SecretError> {
        let mut built: Vec<SealingKey> = Vec::with_capacity(keys.len());
        for (name, encoded) in keys {
            let bytes: [u8; 32] = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| SecretError::BadKey { key: name.clone() })?;
            let id = KeyId::of(&bytes);
            if built.iter().any(|k| k.id == id) {
                return Err(SecretError::DuplicateKey { key: name.clone(), key_id: id });
            }
            built.push(SealingKey { id, cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)) });
        }
        if built.is_empty() {
            return Err(SecretError::MissingKey);
        }
        Ok(Self { keys: built.into() })
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> KeyId {
        self.keys[0].id
    }

    /// Every configured key id, the sealing one first.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    pub fn has_key(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Seals `plaintext` under the first key, bound to `slot`.
    pub fn seal(&self, plaintext: &[u8], slot: &Slot) -> Vec<u8> {
        let key = &self.keys[0];
        let header = key.id.header();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = slot.associated_data(&header);
        let ciphertext = key
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: &aad })
            .expect("AES-GCM encryption cannot fail");
        let mut out = Vec::with_capacity(KEYED_HEADER_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value stored in `slot`: layout 2 with the key its id names, layout 1 with
    /// whichever configured key opens it.
    pub fn open(&self, sealed: &[u8], slot: &Slot) -> Result<Vec<u8>, SecretError> {
        match Layout::of(sealed) {
            None => Err(SecretError::Malformed { slot: slot.clone() }),
            Some(Layout::Legacy) => {
                let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
                self.keys
                    .iter()
                    .find_map(|k| k.cipher.decrypt(nonce, &sealed[1 + NONCE_LEN..]).ok())
                    .ok_or_else(|| SecretError::OpenLegacy { slot: slot.clone() })
            }
            Some(Layout::Keyed(key_id)) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.id == key_id)
                    .ok_or_else(|| SecretError::UnknownKey { slot: slot.clone(), key_id })?;
                let (header, rest) = sealed.split_at(KEYED_HEADER_LEN);
                let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
                let aad = slot.associated_data(header);
                key.cipher
                    .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
                    .map_err(|_| SecretError::Open { slot: slot.clone(), key_id })
            }
        }
    }

    /// True when `sealed` is not yet what [`SecretBox::seal`] writes now: layout 1, or layout 2
    /// under a key other than the first.
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        Layout::of(sealed) != Some(Layout::Keyed(self.sealing_key_id()))
    }
}

/// The `[encryption]` configuration section.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Base64 of 32 random bytes: the one-key shorthand of `keys`.
    pub key: String,
    /// Base64 keys of 32 random bytes each: the first seals, every one opens (see the key
    /// rotation procedure in the README). Required by control and sender (this or `key`).
    pub keys: Vec<String>,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptionConfig {{ key: <redacted>, keys: <{} redacted> }}", self.keys.len())
    }
}

impl EncryptionConfig {
    pub fn secret_box(&self) -> Result<SecretBox, SecretError> {
        match (self.key.trim().is_empty(), self.keys.is_empty()) {
            (false, false) => Err(SecretError::BothSet),
            (true, true) => Err(SecretError::MissingKey),
            (false, true) => SecretBox::from_named(&[("encryption.key".to_owned(), &self.key)]),
            (true, false) => {
                let named: Vec<(String, &str)> = self
                    .keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (format!("encryption.keys[{i}]"), k.as_str()))
                    .collect();
                SecretBox::from_named(&named)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn other_key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    fn slot(row: &str) -> Slot {
        Slot::new("subscriptions", "basic_auth_password", row)
    }

    fn keys(list: &[&str]) -> SecretBox {
        EncryptionConfig { key: String::new(), keys: list.iter().map(|k| k.to_string()).collect() }
            .secret_box()
            .unwrap()
    }

    /// A value as the code before key ids wrote it.
    fn seal_legacy(key: &str, plaintext: &[u8]) -> Vec<u8> {
        let bytes = STANDARD.decode(key).unwrap();
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = vec![LEGACY];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&cipher.encrypt(&nonce, plaintext).unwrap());
        out
    }

    #[test]
    fn round_trip_and_no_plaintext() {
        let sb = SecretBox::from_base64(KEY).unwrap();
        let sealed = sb.seal(b"hunter2-password", &slot("sub_1"));
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sealed[0], KEYED);
        assert_eq!(&sealed[..KEYED_HEADER_LEN], &sb.sealing_key_id().header());
        assert_eq!(sb.open(&sealed, &slot("sub_1")).unwrap(), b"hunter2-password");
    }

    #[test]
    fn a_value_copied_to_another_row_or_column_does_not_open() {
        let sb = SecretBox::from_base64(KEY).unwrap();
        let sealed = sb.seal(b"pw", &slot("sub_1"));
        for elsewhere in [
            slot("sub_2"),
            slot("sub_1 "),
            Slot::new("subscriptions", "other_column", "sub_1"),
            Slot::new("subscription_secrets", "basic_auth_password", "sub_1"),
        ] {
            let error = sb.open(&sealed, &elsewhere).unwrap_err();
            assert!(matches!(error, SecretError::Open { .. }), "{elsewhere}: {error}");
            assert!(error.to_string().contains(&elsewhere.to_string()), "{error}");
        }
        // Field boundaries count: ("ab", "c") and ("a", "bc") are different slots.
        let a = Slot::new("t", "ab", "c");
        let b = Slot::new("t", "a", "bc");
        assert!(sb.open(&sb.seal(b"x", &a), &b).is_err());
    }

    #[test]
    fn wrong_key_unknown_key_or_tampering_fails() {
        let sb = SecretBox::from_base64(KEY).unwrap();
        let other = SecretBox::from_base64(&other_key(7)).unwrap();
        let mut sealed = sb.seal(b"x", &slot("s"));
        let error = other.open(&sealed, &slot("s")).unwrap_err();
        assert!(matches!(error, SecretError::UnknownKey { key_id, .. } if key_id == sb.sealing_key_id()));
        assert!(error.to_string().contains(&sb.sealing_key_id().to_string()), "{error}");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(sb.open(&sealed, &slot("s")), Err(SecretError::Open { .. })));
        // A forged header naming another key does not help either.
        let mut forged = sb.seal(b"x", &slot("s"));
        forged[1..KEYED_HEADER_LEN].copy_from_slice(&other.sealing_key_id().header()[1..]);
        assert!(other.open(&forged, &slot("s")).is_err());
        for short in [&[][..], &[KEYED][..], &[LEGACY, 0, 0][..], &[9u8; 40][..]] {
            assert!(matches!(sb.open(short, &slot("s")), Err(SecretError::Malformed { .. })));
        }
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let (a, b) = (KEY.to_owned(), other_key(2));
        let only_a = keys(&[&a]);
        let b_then_a = keys(&[&b, &a]);
        let under_a = only_a.seal(b"secret", &slot("s"));
        assert_eq!(b_then_a.open(&under_a, &slot("s")).unwrap(), b"secret");
        let under_b = b_then_a.seal(b"secret", &slot("s"));
        assert_eq!(Layout::of(&under_b), Some(Layout::Keyed(keys(&[&b]).sealing_key_id())));
        assert_eq!(keys(&[&a, &b]).open(&under_b, &slot("s")).unwrap(), b"secret");
        assert!(only_a.open(&under_b, &slot("s")).is_err());
        assert!(b_then_a.needs_reseal(&under_a));
        assert!(!b_then_a.needs_reseal(&under_b));
    }

    #[test]
    fn layout_1_values_open_with_any_configured_key_and_need_resealing() {
        let legacy = seal_legacy(KEY, b"old-password");
        assert_eq!(Layout::of(&legacy), Some(Layout::Legacy));
        let sb = keys(&[&other_key(3), KEY]);
        // Layout 1 has no associated data: it opens wherever it is read.
        assert_eq!(sb.open(&legacy, &slot("anything")).unwrap(), b"old-password");
        assert!(sb.needs_reseal(&legacy));
        let error = keys(&[&other_key(3)]).open(&legacy, &slot("sub_9")).unwrap_err();
        assert!(matches!(error, SecretError::OpenLegacy { .. }));
        assert!(error.to_string().contains("sub_9"), "{error}");
    }

    #[test]
    fn key_ids_are_stable_distinct_and_reveal_nothing_of_the_key() {
        let a = SecretBox::from_base64(KEY).unwrap().sealing_key_id();
        assert_eq!(a, SecretBox::from_base64(KEY).unwrap().sealing_key_id());
        assert_ne!(a, SecretBox::from_base64(&other_key(1)).unwrap().sealing_key_id());
        let hex = a.to_string();
        assert_eq!(hex.len(), 16);
        assert_eq!(KeyId::parse(&hex), Some(a));
        assert_eq!(KeyId::parse("zz"), None);
        assert_eq!(KeyId::parse("é0000000000000000"), None);
        let raw = STANDARD.decode(KEY).unwrap();
        let raw_hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!raw_hex.contains(&hex[..8]), "the id is not a piece of the key");
        // Pinned (computed independently, with Python's hmac): the id is part of every stored
        // value, so its derivation must never change.
        assert_eq!(hex, "6998ce6c947928fc");
    }

    #[test]
    fn configuration_errors_name_the_key() {
        let config = |key: &str, keys: &[&str]| EncryptionConfig {
            key: key.to_owned(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        };
        let message = |c: EncryptionConfig| c.secret_box().unwrap_err().to_string();
        assert!(message(config("", &[])).contains("encryption.keys"));
        assert!(message(config(KEY, &[KEY])).contains("`encryption.key` and `encryption.keys` are both set"));
        assert!(message(config("c2hvcnQ=", &[])).contains("`encryption.key` must be 32 bytes"));
        assert!(message(config("", &[KEY, "not base64!"])).contains("`encryption.keys[1]` must be 32 bytes"));
        assert!(message(config("", &[KEY, &other_key(1), KEY])).contains("`encryption.keys[2]` repeats"));
        assert!(config(&format!(" {KEY}\n"), &[]).secret_box().is_ok(), "whitespace around a key is fine");
        let debug = format!("{:?}", config(KEY, &[KEY]));
        assert!(!debug.contains(KEY), "{debug}");
    }
}
