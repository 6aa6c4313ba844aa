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
            .field("request_id_ttl_seconds", &self.request_id_ttl_seconds)
            .finish_non_exhaustive()
    }
}
