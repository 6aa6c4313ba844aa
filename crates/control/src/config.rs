//! The `[control]` configuration section.

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Address the gRPC server listens on.
    pub listen_addr: String,
    /// Bearer token that may call every RPC. Required; keep it in a secret.
    pub admin_token: String,
    /// Accept `http://` subscription URLs. Off in production; on for the local stack.
    pub allow_http_urls: bool,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self { listen_addr: "0.0.0.0:50051".into(), admin_token: String::new(), allow_http_urls: false }
    }
}

impl std::fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlConfig")
            .field("listen_addr", &self.listen_addr)
            .field("allow_http_urls", &self.allow_http_urls)
            .finish_non_exhaustive()
    }
}
