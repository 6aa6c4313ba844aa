//! The `[ingest]` configuration section.

use serde::{Deserialize, Serialize};
use synap_runtime::{Refusal, above_zero};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted event body (`data`), in bytes; larger records are dead-lettered.
    pub max_body_bytes: usize,
    /// Records validated and being written at once. Enough to cover the broker's
    /// acknowledgement at well past what one replica's CPU can validate (1,024 at 20 ms is
    /// 51,000 records/s); more only held memory (docs/BENCHMARKS.md, twelfth round).
    pub max_in_flight: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { max_body_bytes: 256 * 1024, max_in_flight: 1024 }
    }
}

impl IngestConfig {
    /// The settings no ingest can run with.
    pub fn validate(&self) -> Result<(), Refusal> {
        above_zero("ingest.max_in_flight", self.max_in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ingest_that_could_hold_no_record_is_refused() {
        assert_eq!(IngestConfig::default().validate(), Ok(()));
        let none = IngestConfig { max_in_flight: 0, ..IngestConfig::default() };
        assert_eq!(none.validate().unwrap_err().0, "ingest.max_in_flight");
        let one = IngestConfig { max_in_flight: 1, ..IngestConfig::default() };
        assert_eq!(one.validate(), Ok(()));
    }
}
