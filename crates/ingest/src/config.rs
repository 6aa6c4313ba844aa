//! The `[ingest]` configuration section.

use serde::{Deserialize, Serialize};

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
