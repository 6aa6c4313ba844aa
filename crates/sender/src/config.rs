//! The `[sender]` configuration section.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderConfig {
    /// Whole-request timeout: a 2xx must arrive within it to count as delivered.
    pub request_timeout_ms: u64,
    /// TCP and TLS connection timeout.
    pub connect_timeout_ms: u64,
    /// Deliveries being attempted at once.
    pub max_in_flight: usize,
    /// How long a subscription's URL and credentials are cached.
    pub cache_ttl_ms: u64,
    /// Delays before the second, third, … attempt. After the last one fails, the delivery goes
    /// to the deliveries dead-letter topic with the reason.
    pub retry_delays_ms: Vec<u64>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 15_000,
            connect_timeout_ms: 5_000,
            max_in_flight: 1024,
            cache_ttl_ms: 1000,
            retry_delays_ms: vec![0, 5_000],
        }
    }
}
