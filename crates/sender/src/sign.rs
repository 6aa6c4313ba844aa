//! Standard Webhooks signatures (EVENTS.md §4): `v1` (HMAC-SHA256 with a shared `whsec_`
//! secret) and `v1a` (Ed25519 with a `whsk_` key only Synap holds), over `id.timestamp.body`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use synap_db::secrets::SigningKey;

/// A signing key made ready once per cache load: the `whsec_` secret decoded and the HMAC keyed
/// (its inner and outer pads hashed), so that an attempt only hashes its own content.
#[derive(Clone)]
pub enum Signer {
    V1(Hmac<Sha256>),
    V1a(ed25519_dalek::SigningKey),
}

impl Signer {
    /// A secret that is not `whsec_<base64>` signs with its raw bytes, so a damaged secret still
    /// yields a signature the customer can see is wrong rather than none at all.
    pub fn new(key: &SigningKey) -> Self {
        match key {
            SigningKey::V1(secret) => {
                let encoded = secret.strip_prefix(synap_db::secrets::PREFIX).unwrap_or(secret);
                let key = STANDARD.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec());
                Signer::V1(Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length"))
            }
            SigningKey::V1a(key) => Signer::V1a(key.clone()),
        }
    }
}

/// Key material stays out of `Debug` output (targets are logged at debug level).
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signer::V1(_) => "Signer::V1(<redacted>)",
            Signer::V1a(_) => "Signer::V1a(<redacted>)",
        })
    }
}

/// The `webhook-signature` value: one `v1,<base64 HMAC>` or `v1a,<base64 Ed25519 signature>`
/// per valid key, current first, space-separated (several during a rotation overlap, of either
/// scheme when a subscription moves from v1 to v1a).
pub fn signature(signers: &[Signer], id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    // "v1a,", 88 base64 characters and a separating space: the most one signature takes.
    let mut value = String::with_capacity(signers.len() * 93);
    for (n, signer) in signers.iter().enumerate() {
        if n > 0 {
            value.push(' ');
        }
        match signer {
            Signer::V1(keyed) => {
                // The content is fed in parts: no copy of the body per signature.
                let mut mac = keyed.clone();
                for part in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
                    mac.update(part);
                }
                value.push_str("v1,");
                STANDARD.encode_string(mac.finalize().into_bytes(), &mut value);
            }
            Signer::V1a(key) => {
                // Ed25519 hashes its message twice, so it takes it whole.
                let mut content = Vec::with_capacity(id.len() + timestamp.len() + 2 + body.len());
                for part in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
                    content.extend_from_slice(part);
                }
                value.push_str("v1a,");
                STANDARD.encode_string(key.sign(&content).to_bytes(), &mut value);
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    fn v1(secret: &str) -> Signer {
        Signer::new(&SigningKey::V1(secret.to_owned()))
    }

    fn v1a(key: ed25519_dalek::SigningKey) -> Signer {
        Signer::new(&SigningKey::V1a(key))
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(
                &[v1("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                body
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn one_signature_per_secret() {
        let secrets = vec![v1("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), v1("whsec_c2Vjb25k")];
        let value = signature(&secrets, "evt_1", 1, b"{}");
        let parts: Vec<&str> = value.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_ne!(parts[0], parts[1]);
    }

    /// Ed25519 is deterministic (RFC 8032): a fixed key and message give one signature. The key
    /// is RFC 8032's TEST 1 key; the signature was checked with an independent verifier (ring,
    /// in the end-to-end harness, verifies every v1a delivery the same way).
    #[test]
    fn v1a_signs_id_timestamp_body_with_ed25519() {
        let seed: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
            0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
        ];
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let body = br#"{"test": 2432232314}"#;
        let header = signature(&[v1a(key.clone())], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        let encoded = header.strip_prefix("v1a,").expect("v1a identifier");
        let bytes: [u8; 64] = STANDARD.decode(encoded).unwrap().try_into().unwrap();
        let content = br#"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#;
        let verifying = key.verifying_key();
        assert!(verifying.verify(content, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok());
        assert!(
            verifying
                .verify(b"msg_other.1614265330.{}", &ed25519_dalek::Signature::from_bytes(&bytes))
                .is_err()
        );
        assert_eq!(header, signature(&[v1a(key)], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body));
    }

    #[test]
    fn a_move_from_v1_to_v1a_sends_both_current_first() {
        let new = synap_db::secrets::parse_secret_key(
            &synap_db::secrets::generate_key(synap_db::secrets::Scheme::V1a).secret,
        )
        .unwrap();
        let value = signature(&[v1a(new), v1("whsec_c2Vjb25k")], "evt_1", 1, b"{}");
        let parts: Vec<&str> = value.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("v1a,") && parts[1].starts_with("v1,"), "{value}");
    }
}
