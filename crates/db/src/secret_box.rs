//! Secrets sealed at rest with AES-256-GCM, so that a database dump alone reveals none of them.
//!
//! Sealed layout: `[version = 1][12-byte random nonce][ciphertext + 16-byte tag]`. The version
//! byte leaves room for key rotation.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "`encryption.key` is not set (SYNAP_ENCRYPTION__KEY); generate one with `openssl rand -base64 32`"
    )]
    MissingKey,
    #[error("`encryption.key` must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("a sealed secret could not be opened (wrong encryption key or corrupted value)")]
    Open,
}

#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Builds the box from a base64-encoded 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Ok(Self { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)) })
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self.cipher.encrypt(&nonce, plaintext).expect("AES-GCM encryption cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SecretError::Open);
        }
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        self.cipher.decrypt(nonce, &sealed[1 + NONCE_LEN..]).map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn round_trip_and_no_plaintext() {
        let sb = SecretBox::from_base64(KEY).unwrap();
        let sealed = sb.seal(b"hunter2-password");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sb.open(&sealed).unwrap(), b"hunter2-password");
    }

    #[test]
    fn wrong_key_or_tampering_fails() {
        let sb = SecretBox::from_base64(KEY).unwrap();
        let other = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let mut sealed = sb.seal(b"x");
        assert!(other.open(&sealed).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(sb.open(&sealed).is_err());
    }

    #[test]
    fn rejects_short_keys() {
        assert!(matches!(SecretBox::from_base64("c2hvcnQ="), Err(SecretError::BadKey)));
    }
}

/// The `[encryption]` configuration section.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Base64 of 32 random bytes that seal secrets at rest. Required by control and sender;
    /// changing it makes stored secrets unreadable.
    pub key: String,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionConfig { key: <redacted> }")
    }
}

impl EncryptionConfig {
    pub fn secret_box(&self) -> Result<SecretBox, SecretError> {
        if self.key.is_empty() {
            return Err(SecretError::MissingKey);
        }
        SecretBox::from_base64(&self.key)
    }
}
