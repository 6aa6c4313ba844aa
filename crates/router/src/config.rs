//! The `[router]` configuration section.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// How long a portal's plan and subscriptions are cached. A change made through the control
    /// API reaches routing within this time.
    pub cache_ttl_ms: u64,
    /// Portals whose routes are cached at once.
    pub cache_capacity: u64,
    /// Events being routed at once.
    pub max_in_flight: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self { cache_ttl_ms: 1000, cache_capacity: 100_000, max_in_flight: 2048 }
    }
}
