//! The `[control]` configuration section.

use serde::{Deserialize, Serialize};
use synap_runtime::ConfigError;

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Address the gRPC server listens on.
    pub listen_addr: String,
    /// Bearer token that may call every RPC. Required; keep it in a secret.
    pub admin_token: String,
    /// Accept `http://` subscription URLs. Off in production; on for the local stack.
    pub allow_http_urls: bool,
    /// How long a rotated-out signing secret keeps signing, unless the call says otherwise.
    pub secret_overlap_seconds: u64,
    /// How long TestSend waits for the sender to finish the attempt.
    pub test_send_timeout_ms: u64,
    /// The longest an API call may take; one still running then (the database or Kafka not
    /// answering) ends with UNAVAILABLE. Longer than any call needs when they answer: TestSend's
    /// wait, a resend's read and write (up to 45 s).
    pub call_timeout_ms: u64,
    /// PEM certificate chain the API serves over TLS (server certificate first). With
    /// `tls_key_file`; read again when it changes, so a renewed certificate needs no restart.
    pub tls_cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate.
    pub tls_key_file: String,
    /// PEM CA certificates: when set, every client must present a certificate they issued
    /// (mutual TLS), besides its bearer token.
    pub tls_client_ca_file: String,
    /// Serve plaintext gRPC when no certificate is configured. Bearer tokens then cross the
    /// network in the clear: only for local use or behind something that encrypts (a service
    /// mesh with mTLS). Off by default: without a certificate, control refuses to start.
    pub allow_plaintext: bool,
    /// How long a CreateSubscription `request_id` replays the first call's response, signing
    /// secret included. A replay after that is ALREADY_EXISTS: it creates nothing and never
    /// returns the secret again.
    pub request_id_ttl_seconds: u64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            listen_addr: "0.0.0.0:50051".into(),
            admin_token: String::new(),
            allow_http_urls: false,
            secret_overlap_seconds: 24 * 60 * 60,
            test_send_timeout_ms: 20_000,
            call_timeout_ms: 60_000,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            tls_client_ca_file: String::new(),
            allow_plaintext: false,
            request_id_ttl_seconds: 24 * 60 * 60,
        }
    }
}

impl ControlConfig {
    /// Refuses values the service cannot run with, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.admin_token.len() < 16 {
            return Err(ConfigError::Rejected {
                key: "control.admin_token",
                reason: "must be set (SYNAP_CONTROL__ADMIN_TOKEN) to at least 16 characters".into(),
            });
        }
        if self.secret_overlap_seconds > crate::validate::MAX_OVERLAP.as_secs() {
            return Err(ConfigError::Rejected {
                key: "control.secret_overlap_seconds",
                reason: format!("must be at most {}", crate::validate::MAX_OVERLAP.as_secs()),
            });
        }
        if self.test_send_timeout_ms == 0 {
            return Err(ConfigError::Rejected {
                key: "control.test_send_timeout_ms",
                reason: "must be positive".into(),
            });
        }
        if self.call_timeout_ms <= self.test_send_timeout_ms {
            return Err(ConfigError::Rejected {
                key: "control.call_timeout_ms",
                reason: format!(
                    "must be longer than control.test_send_timeout_ms ({} ms), or every TestSend that \
                     waits its full time would be cut off",
                    self.test_send_timeout_ms
                ),
            });
        }
        match (self.tls_cert_file.is_empty(), self.tls_key_file.is_empty()) {
            (false, true) => {
                return Err(ConfigError::Rejected {
                    key: "control.tls_key_file",
                    reason: "must be set when control.tls_cert_file is".into(),
                });
            }
            (true, false) => {
                return Err(ConfigError::Rejected {
                    key: "control.tls_cert_file",
                    reason: "must be set when control.tls_key_file is".into(),
                });
            }
            (true, true) if !self.tls_client_ca_file.is_empty() => {
                return Err(ConfigError::Rejected {
                    key: "control.tls_client_ca_file",
                    reason: "needs control.tls_cert_file and control.tls_key_file: client certificates \
                             are asked for in a TLS handshake"
                        .into(),
                });
            }
            (true, true) if !self.allow_plaintext => {
                return Err(ConfigError::Rejected {
                    key: "control.tls_cert_file",
                    reason: "must be set, with control.tls_key_file: bearer tokens must not cross the \
                             network in the clear. For local use, or behind a proxy or mesh that \
                             encrypts, set control.allow_plaintext = true instead"
                        .into(),
                });
            }
            _ => {}
        }
        if self.request_id_ttl_seconds == 0 {
            return Err(ConfigError::Rejected {
                key: "control.request_id_ttl_seconds",
                reason: "must be positive".into(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlConfig")
            .field("listen_addr", &self.listen_addr)
            .field("allow_http_urls", &self.allow_http_urls)
            .field("secret_overlap_seconds", &self.secret_overlap_seconds)
            .field("test_send_timeout_ms", &self.test_send_timeout_ms)
            .field("call_timeout_ms", &self.call_timeout_ms)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("tls_client_ca_file", &self.tls_client_ca_file)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("request_id_ttl_seconds", &self.request_id_ttl_seconds)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected_key(config: &ControlConfig) -> &'static str {
        match config.check() {
            Err(ConfigError::Rejected { key, .. }) => key,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn plaintext_only_when_allowed_and_tls_files_in_pairs() {
        let base = ControlConfig { admin_token: "0123456789abcdef".into(), ..Default::default() };
        assert_eq!(rejected_key(&base), "control.tls_cert_file", "no certificate, no plaintext");
        assert!(ControlConfig { allow_plaintext: true, ..base.clone() }.check().is_ok());
        let tls =
            ControlConfig { tls_cert_file: "c.pem".into(), tls_key_file: "k.pem".into(), ..base.clone() };
        assert!(tls.check().is_ok());
        assert!(ControlConfig { tls_client_ca_file: "ca.pem".into(), ..tls.clone() }.check().is_ok());
        let only_cert =
            ControlConfig { tls_cert_file: "c.pem".into(), allow_plaintext: true, ..base.clone() };
        assert_eq!(rejected_key(&only_cert), "control.tls_key_file");
        let only_key = ControlConfig { tls_key_file: "k.pem".into(), ..base.clone() };
        assert_eq!(rejected_key(&only_key), "control.tls_cert_file");
        let ca_alone = ControlConfig { tls_client_ca_file: "ca.pem".into(), allow_plaintext: true, ..base };
        assert_eq!(rejected_key(&ca_alone), "control.tls_client_ca_file");
    }

    #[test]
    fn calls_may_last_longer_than_a_test_send_waits() {
        let base = ControlConfig {
            admin_token: "0123456789abcdef".into(),
            allow_plaintext: true,
            ..Default::default()
        };
        assert!(base.check().is_ok());
        for call_timeout_ms in [0, 20_000] {
            assert_eq!(
                rejected_key(&ControlConfig { call_timeout_ms, ..base.clone() }),
                "control.call_timeout_ms"
            );
        }
        assert!(
            ControlConfig { call_timeout_ms: 2_000, test_send_timeout_ms: 1_000, ..base }.check().is_ok()
        );
    }
}
