//! Per-subscription limits: requests in flight and requests per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One subscription's limits.
struct Limit {
    in_flight: Arc<Semaphore>,
    capacity: u32,
    /// Earliest time the next request may start under the rate limit.
    next_start: Mutex<Instant>,
}

pub struct Limits {
    subscriptions: Cache<String, Arc<Limit>>,
}

/// A slot: held while the request is in flight.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Default for Limits {
    fn default() -> Self {
        // Idle subscriptions' entries expire; a busy one's entry is kept alive by its use.
        Self {
            subscriptions: Cache::builder()
                .time_to_idle(Duration::from_secs(600))
                .max_capacity(100_000)
                .build(),
        }
    }
}

impl Limits {
    /// Waits up to `wait` for a slot of `subscription_id` (at most `capacity` in flight and
    /// `per_sec` starts per second); `None` when none freed up in time.
    pub async fn acquire(
        &self,
        subscription_id: &str,
        capacity: u32,
        per_sec: Option<u32>,
        wait: Duration,
    ) -> Option<Slot> {
        let capacity = capacity.max(1);
        let mut limit = self.subscriptions.get_with_by_ref(subscription_id, || new_limit(capacity));
        if limit.capacity != capacity {
            // The subscription's limit changed: requests in flight under the old one finish
            // under it.
            limit = new_limit(capacity);
            self.subscriptions.insert(subscription_id.to_owned(), limit.clone());
        }
        let deadline = Instant::now() + wait;
        let permit = tokio::time::timeout(wait, limit.in_flight.clone().acquire_owned()).await.ok()?.ok()?;
        if let Some(per_sec) = per_sec {
            let start = {
                let mut next = limit.next_start.lock().expect("rate lock");
                let start = (*next).max(Instant::now());
                if start > deadline {
                    return None;
                }
                *next = start + Duration::from_secs(1) / per_sec.max(1);
                start
            };
            tokio::time::sleep_until(start.into()).await;
        }
        Some(Slot { _permit: permit })
    }
}

fn new_limit(capacity: u32) -> Arc<Limit> {
    Arc::new(Limit {
        in_flight: Arc::new(Semaphore::new(capacity as usize)),
        capacity,
        next_start: Mutex::new(Instant::now()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_flight_is_capped_per_subscription() {
        let limits = Limits::default();
        let wait = Duration::from_millis(20);
        let a = limits.acquire("s", 2, None, wait).await.unwrap();
        let _b = limits.acquire("s", 2, None, wait).await.unwrap();
        assert!(limits.acquire("s", 2, None, wait).await.is_none());
        assert!(limits.acquire("other", 2, None, wait).await.is_some());
        drop(a);
        assert!(limits.acquire("s", 2, None, wait).await.is_some());
    }

    #[tokio::test]
    async fn rate_limit_spaces_starts() {
        let limits = Limits::default();
        let started = Instant::now();
        for _ in 0..3 {
            limits.acquire("s", 10, Some(20), Duration::from_secs(1)).await.unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(95), "{:?}", started.elapsed());
        assert!(limits.acquire("s", 10, Some(1), Duration::from_millis(10)).await.is_none());
    }
}
