//! Compiled filters shared by text, process-wide. The router reloads a portal's routes every
//! `router.cache_ttl_ms` (1 s by default); without this, each reload would parse every filter of
//! the portal again. Compiling is pure, so a text's result (a filter, or why it is refused)
//! never goes stale; entries idle for ten minutes are dropped, and the count is bounded.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use moka::sync::Cache;

use crate::{Filter, Invalid};

/// Distinct filter texts kept compiled: 1,000 filtered subscriptions of 100 bytes compile to
/// about 3 MB of trees, so this bounds the cache to a few hundred MB in the worst case.
const CAPACITY: u64 = 100_000;
const IDLE: Duration = Duration::from_secs(600);

static COMPILED: LazyLock<Cache<String, Result<Arc<Filter>, Invalid>>> =
    LazyLock::new(|| Cache::builder().max_capacity(CAPACITY).time_to_idle(IDLE).build());

/// [`Filter::compile`] once per distinct text.
pub fn compiled(source: &str) -> Result<Arc<Filter>, Invalid> {
    if let Some(hit) = COMPILED.get(source) {
        return hit;
    }
    let result = Filter::compile(source).map(Arc::new);
    COMPILED.insert(source.to_owned(), result.clone());
    result
}
