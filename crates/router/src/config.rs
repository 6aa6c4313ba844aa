//! The `[router]` configuration section.

use serde::{Deserialize, Serialize};
use synap_runtime::{Refusal, above_zero};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// How long a portal's plan and subscriptions are cached at most. Changes reach routing
    /// when PostgreSQL announces them (a listener, migration 80), within milliseconds; this
    /// is the safety net should a notification ever be lost, so it can be long: a 10,000
    /// subscription deployment then reloads rarely instead of every second. While the listener
    /// is disconnected entries live 1 s ([`synap_db::changes::UNLISTENED_TTL`]).
    pub cache_ttl_ms: u64,
    /// Portals whose routes are cached at once.
    pub cache_capacity: u64,
    /// Events being routed at once; as for ingest's, 1,024 covers the broker's acknowledgement
    /// at more events per second than one replica can route.
    pub max_in_flight: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self { cache_ttl_ms: 300_000, cache_capacity: 100_000, max_in_flight: 1024 }
    }
}

impl RouterConfig {
    /// The settings no router can run with.
    pub fn validate(&self) -> Result<(), Refusal> {
        above_zero("router.max_in_flight", self.max_in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_that_could_hold_no_event_is_refused() {
        assert_eq!(RouterConfig::default().validate(), Ok(()));
        let none = RouterConfig { max_in_flight: 0, ..RouterConfig::default() };
        assert_eq!(none.validate().unwrap_err().0, "router.max_in_flight");
        let one = RouterConfig { max_in_flight: 1, ..RouterConfig::default() };
        assert_eq!(one.validate(), Ok(()));
    }
}
