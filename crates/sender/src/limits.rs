//! Per-subscription admission: requests in flight, requests per second, and a bounded queue of
//! deliveries waiting in memory for their turn.
//!
//! A delivery that finds its subscription's slots taken waits in memory (its record stays
//! uncommitted in Kafka, so a crash loses nothing) for as long as the subscription keeps making
//! progress. It is turned away, to wait in a retry tier instead, only when the subscription has
//! not started or finished a request for `stall` (a hanging endpoint), when its queue is full,
//! or when its rate limit would hold it back longer than `stall`. So a burst to a healthy
//! endpoint drains at the endpoint's pace, and a dead endpoint never holds more than its slots
//! and a short queue of the consumer's buffer.
//!
//! A queue is full when the delivery would not get a slot before the first retry tier (the
//! `horizon`) could hand it back, at the pace the subscription's recent requests took: a fast
//! endpoint may queue up to `max_waiting`, a slow one only what it can send meanwhile. Deferring
//! costs the sender a write and a read of the record and the delivery a tier's delay, so it is
//! worth it only when the delivery would wait longer in memory, holding a place of the buffer
//! that other subscriptions' deliveries could use. (A fixed cap of 512 sent a third of a
//! 240,000-event burst to healthy endpoints through the 5 s tier, for a quarter more of the
//! sender's CPU: docs/BENCHMARKS.md.)
//!
//! Until a subscription has shown that it answers (a request of it finished, and none stalled
//! since), its queue is kept to a few times its in-flight limit: a hanging endpoint would
//! otherwise hold `max_waiting` places of the buffer for the whole stall time before its
//! deliveries are turned away. This costs a subscription's very first burst (after a restart of
//! the sender, or for a new subscription): what does not fit waits in the first retry tier.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::lock::lock;

struct Health {
    /// When a request last started or finished.
    progress: Instant,
    /// When a request last finished.
    finished: Option<Instant>,
    /// When the subscription was last seen stalled.
    stalled: Option<Instant>,
    /// How long its recent requests held their slot (a moving average): the pace its queue
    /// drains at is its in-flight limit over this.
    request_time: Option<Duration>,
}

impl Health {
    /// Whether a request has finished since the subscription was last seen stalled.
    fn answers(&self) -> bool {
        match (self.finished, self.stalled) {
            (Some(finished), Some(stalled)) => finished >= stalled,
            (finished, _) => finished.is_some(),
        }
    }
}

/// Deliveries that may wait per in-flight slot for a subscription not yet seen answering.
const UNPROVEN_QUEUE_PER_SLOT: usize = 4;

/// Weight of the newest request in a subscription's average request time: the average follows
/// an endpoint that slows down within a few dozen requests.
const REQUEST_TIME_WEIGHT: u32 = 8;

/// Why a delivery was not admitted now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken and none has started or finished for the stall time.
    Stalled,
    /// Too many deliveries already wait for this subscription.
    QueueFull,
    /// The rate limit would hold the delivery back longer than the stall time.
    RateLimited,
}

impl Refusal {
    /// The `reason` label of `synap_deliveries_deferred_total`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Stalled => "stalled",
            Refusal::QueueFull => "queue_full",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// One subscription's limits.
struct Limit {
    in_flight: Arc<Semaphore>,
    capacity: u32,
    /// Deliveries waiting for a slot.
    waiting: AtomicUsize,
    /// When requests last started and finished, and when the subscription was last seen stalled.
    health: Mutex<Health>,
    /// Earliest time the next request may start under the rate limit.
    next_start: Mutex<Instant>,
}

impl Limit {
    fn new(capacity: u32) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            in_flight: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            waiting: AtomicUsize::new(0),
            health: Mutex::new(Health { progress: now, finished: None, stalled: None, request_time: None }),
            next_start: Mutex::new(now),
        })
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        lock(&self.health)
    }

    fn progressed(&self) {
        self.health().progress = Instant::now();
    }

    fn last_progress(&self) -> Instant {
        self.health().progress
    }

    /// A slot taken at `started` was given back; `None` if no request was made with it.
    fn finished(&self, started: Option<Instant>) {
        let now = Instant::now();
        let mut health = self.health();
        health.finished = Some(now);
        health.progress = now;
        if let Some(started) = started {
            let took = now - started;
            health.request_time = Some(match health.request_time {
                Some(mean) => (mean * (REQUEST_TIME_WEIGHT - 1) + took) / REQUEST_TIME_WEIGHT,
                None => took,
            });
        }
    }

    fn stalled(&self) -> Refusal {
        self.health().stalled = Some(Instant::now());
        Refusal::Stalled
    }

    /// How many deliveries may wait: as many as would get a slot within `horizon` at the pace of
    /// the subscription's recent requests, at most `max_waiting`; a few per slot until it answers.
    fn queue_limit(&self, horizon: Duration, max_waiting: usize) -> usize {
        let health = self.health();
        let slots = self.capacity as usize;
        if !health.answers() {
            return max_waiting.min(UNPROVEN_QUEUE_PER_SLOT * slots);
        }
        match health.request_time {
            Some(took) if !took.is_zero() => {
                let per_slot = horizon.as_secs_f64() / took.as_secs_f64();
                max_waiting.min((per_slot * slots as f64) as usize)
            }
            _ => max_waiting,
        }
    }
}

pub struct Limits {
    subscriptions: Cache<String, Arc<Limit>>,
    stall: Duration,
    horizon: Duration,
    max_waiting: usize,
}

/// A slot: held while the request is in flight.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    limit: Arc<Limit>,
    /// When the slot was taken; `None` once it is known no request was made with it.
    started: Option<Instant>,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, limit: Arc<Limit>) -> Self {
        limit.progressed();
        Self { _permit: permit, limit, started: Some(Instant::now()) }
    }

    /// Gives the slot back without a request made (the endpoint's circuit was open), so that
    /// its time does not count as the subscription's pace.
    pub fn unused(mut self) {
        self.started = None;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limit.finished(self.started);
    }
}

/// Counts a delivery among its subscription's waiting ones while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limits {
    /// `stall`: how long a subscription with every slot taken may go without a request starting
    /// or finishing before its waiting deliveries are turned away; `horizon`: how soon a
    /// delivery turned away is back (the first retry tier), so the longest a delivery is let wait
    /// in memory at the subscription's pace; `max_waiting`: deliveries that may wait for one
    /// subscription at most.
    pub fn new(stall: Duration, horizon: Duration, max_waiting: usize) -> Self {
        // Idle subscriptions' entries expire; a busy one's entry is kept alive by its use.
        Self {
            subscriptions: Cache::builder()
                .time_to_idle(Duration::from_secs(600))
                .max_capacity(100_000)
                .build(),
            stall,
            horizon,
            max_waiting,
        }
    }

    fn limit(&self, subscription_id: &str, capacity: u32) -> Arc<Limit> {
        let capacity = capacity.max(1);
        let limit = self.subscriptions.get_with_by_ref(subscription_id, || Limit::new(capacity));
        if limit.capacity == capacity {
            return limit;
        }
        // The subscription's limit changed: requests in flight under the old one finish under it.
        let limit = Limit::new(capacity);
        self.subscriptions.insert(subscription_id.to_owned(), limit.clone());
        limit
    }

    /// A slot of `subscription_id` (at most `capacity` in flight, `per_sec` starts per second),
    /// waiting in memory while the subscription makes progress; see the module notes for when
    /// it refuses instead.
    pub async fn acquire(
        &self,
        subscription_id: &str,
        capacity: u32,
        per_sec: Option<u32>,
    ) -> Result<Slot, Refusal> {
        let limit = self.limit(subscription_id, capacity);
        let permit = match limit.in_flight.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => self.wait_for_slot(&limit).await?,
        };
        let start = match per_sec {
            Some(per_sec) => {
                Some(rate_start(&limit, per_sec, Instant::now() + self.stall).ok_or(Refusal::RateLimited)?)
            }
            None => None,
        };
        let slot = Slot::new(permit, limit);
        if let Some(start) = start {
            tokio::time::sleep_until(start).await;
        }
        Ok(slot)
    }

    async fn wait_for_slot(&self, limit: &Arc<Limit>) -> Result<OwnedSemaphorePermit, Refusal> {
        let stalled_at = |limit: &Limit| limit.last_progress() + self.stall;
        if stalled_at(limit) <= Instant::now() {
            return Err(limit.stalled());
        }
        let max_waiting = limit.queue_limit(self.horizon, self.max_waiting);
        let _waiting = Waiting::enter(&limit.waiting, max_waiting).ok_or(Refusal::QueueFull)?;
        loop {
            let deadline = stalled_at(limit);
            match tokio::time::timeout_at(deadline, limit.in_flight.clone().acquire_owned()).await {
                Ok(permit) => return Ok(permit.expect("subscription semaphores are never closed")),
                // Another request started or finished meanwhile: still moving, keep waiting.
                Err(_) if stalled_at(limit) > Instant::now() => continue,
                Err(_) => return Err(limit.stalled()),
            }
        }
    }

    /// Waits as long as it takes for a slot: for ordered subscriptions, whose deliveries wait
    /// in their lane anyway.
    pub async fn acquire_patiently(
        &self,
        subscription_id: &str,
        capacity: u32,
        per_sec: Option<u32>,
    ) -> Slot {
        let limit = self.limit(subscription_id, capacity);
        let permit =
            limit.in_flight.clone().acquire_owned().await.expect("subscription semaphores are never closed");
        let slot = Slot::new(permit, limit);
        if let Some(per_sec) = per_sec {
            let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
            if let Some(start) = rate_start(&slot.limit, per_sec, far) {
                tokio::time::sleep_until(start).await;
            }
        }
        slot
    }
}

/// Books the next start under the rate limit, unless it would be after `latest`.
fn rate_start(limit: &Limit, per_sec: u32, latest: Instant) -> Option<Instant> {
    let mut next = lock(&limit.next_start);
    let start = (*next).max(Instant::now());
    if start > latest {
        return None;
    }
    *next = start + Duration::from_secs(1) / per_sec.max(1);
    Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_millis(2000);
    /// Long, so that only the tests of it see the queue cut short by the subscription's pace.
    const HORIZON: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn waits_while_the_subscription_moves() {
        let limits = Arc::new(Limits::new(STALL, HORIZON, 100));
        let first = limits.acquire("s", 1, None).await.unwrap();
        let waiter = {
            let limits = limits.clone();
            tokio::spawn(async move { limits.acquire("s", 1, None).await.map(|_| Instant::now()) })
        };
        // The slot frees after 1.5 s: within the stall time, so the waiter gets it.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(first);
        assert!(waiter.await.unwrap().is_ok());
        assert!(limits.acquire("other", 1, None).await.is_ok(), "subscriptions are apart");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_queue_behind_a_moving_subscription_keeps_waiting() {
        // 1 slot, each request 1 s: the tenth waiter waits 10 s, far past the stall time,
        // because every second something finishes (and within the horizon).
        let limits = Arc::new(Limits::new(STALL, HORIZON, 100));
        drop(limits.acquire("s", 1, None).await.unwrap()); // seen answering
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let limits = limits.clone();
            tasks.push(tokio::spawn(async move {
                let slot = limits.acquire("s", 1, None).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                drop(slot);
                Ok::<_, Refusal>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(started.elapsed() >= Duration::from_secs(10));
    }

    /// Requests of `s` that each hold their slot for `took`, `n` in all, one after another.
    async fn requests(limits: &Limits, slots: u32, took: Duration, n: usize) {
        for _ in 0..n {
            let slot = limits.acquire("s", slots, None).await.unwrap();
            tokio::time::sleep(took).await;
            drop(slot);
        }
    }

    /// With every one of its `slots` taken, exactly `n` deliveries may wait for `s`: the next is
    /// turned away. Then the `n` get their slots.
    async fn queue_holds(limits: &Arc<Limits>, slots: u32, n: usize) {
        let mut held = Vec::new();
        for _ in 0..slots {
            held.push(limits.acquire("s", slots, None).await.unwrap());
        }
        let queued: Vec<_> = (0..n)
            .map(|_| {
                let limits = limits.clone();
                tokio::spawn(async move { limits.acquire("s", slots, None).await.map(drop) })
            })
            .collect();
        while limits.limit("s", slots).waiting.load(Ordering::Acquire) < n {
            tokio::task::yield_now().await;
        }
        assert_eq!(limits.acquire("s", slots, None).await.err(), Some(Refusal::QueueFull));
        drop(held);
        for w in queued {
            w.await.unwrap().unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_holds_what_the_subscription_sends_before_the_first_tier_is_back() {
        // 2 slots, 1 s a request: 2 deliveries a second, so 10 get a slot within the 5 s the
        // first tier would take; the 11th would wait longer in memory, so it goes to the tier.
        let limits = Arc::new(Limits::new(STALL, Duration::from_secs(5), 100));
        requests(&limits, 2, Duration::from_secs(1), 2).await;
        queue_holds(&limits, 2, 10).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_subscription_queues_up_to_max_waiting() {
        // 10 ms a request: 500 would get the one slot within 5 s; the cap is 100.
        let limits = Arc::new(Limits::new(STALL, Duration::from_secs(5), 100));
        requests(&limits, 1, Duration::from_millis(10), 1).await;
        queue_holds(&limits, 1, 100).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_shrinks_as_the_endpoint_slows_down() {
        let limits = Limits::new(STALL, Duration::from_secs(5), 1000);
        let queue_limit =
            |limits: &Limits| limits.limit("s", 1).queue_limit(limits.horizon, limits.max_waiting);
        requests(&limits, 1, Duration::from_millis(10), 1).await;
        assert_eq!(queue_limit(&limits), 500);
        // A slot given back without a request (the circuit was open) says nothing of the pace
        // (counted as a request of no time, it would raise the limit to 571).
        limits.acquire("s", 1, None).await.unwrap().unused();
        assert_eq!(queue_limit(&limits), 500);
        // One slow answer among fast ones moves the average, not all of it.
        requests(&limits, 1, Duration::from_secs(1), 1).await;
        assert!((30..=50).contains(&queue_limit(&limits)), "{}", queue_limit(&limits));
        // An endpoint that stays slow is soon taken at its new pace: 1 a second, a queue of 5.
        requests(&limits, 1, Duration::from_secs(1), 30).await;
        assert_eq!(queue_limit(&limits), 5);
        // And one that is fast again gets its long queue back as quickly.
        requests(&limits, 1, Duration::from_millis(10), 40).await;
        assert!(queue_limit(&limits) > 250, "{}", queue_limit(&limits));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_subscription_turns_its_queue_away() {
        let limits = Arc::new(Limits::new(STALL, HORIZON, 100));
        let _hung = limits.acquire("s", 1, None).await.unwrap();
        let started = Instant::now();
        assert_eq!(limits.acquire("s", 1, None).await.err(), Some(Refusal::Stalled));
        assert_eq!(started.elapsed(), STALL, "waited out the stall time once");
        // Later arrivals are turned away at once while it stays stuck.
        let again = Instant::now();
        assert_eq!(limits.acquire("s", 1, None).await.err(), Some(Refusal::Stalled));
        assert_eq!(again.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_takes_the_long_queue_away_until_a_request_finishes() {
        let limits = Limits::new(STALL, HORIZON, 100);
        drop(limits.acquire("s", 1, None).await.unwrap());
        assert!(limits.limit("s", 1).health().answers());
        let hung = limits.acquire("s", 1, None).await.unwrap();
        assert_eq!(limits.acquire("s", 1, None).await.err(), Some(Refusal::Stalled));
        assert!(!limits.limit("s", 1).health().answers(), "seen stalled");
        drop(hung);
        assert!(limits.limit("s", 1).health().answers(), "answering again");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unproven_subscription_queues_a_few_per_slot() {
        let limits = Arc::new(Limits::new(STALL, HORIZON, 100));
        let held = limits.acquire("s", 1, None).await.unwrap();
        let spawn_waiter = || {
            let limits = limits.clone();
            tokio::spawn(async move { limits.acquire("s", 1, None).await.map(drop) })
        };
        let waiters: Vec<_> = (0..UNPROVEN_QUEUE_PER_SLOT).map(|_| spawn_waiter()).collect();
        tokio::task::yield_now().await;
        assert_eq!(
            limits.acquire("s", 1, None).await.err(),
            Some(Refusal::QueueFull),
            "nothing finished yet"
        );
        drop(held);
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        // Now it has finished requests: the whole queue is open to it, however long it idles.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let _held = limits.acquire("s", 1, None).await.unwrap();
        let more: Vec<_> = (0..10).map(|_| spawn_waiter()).collect();
        tokio::task::yield_now().await;
        drop(_held);
        for w in more {
            w.await.unwrap().unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_bounded() {
        let limits = Arc::new(Limits::new(STALL, HORIZON, 2));
        let _held = limits.acquire("s", 1, None).await.unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let limits = limits.clone();
                tokio::spawn(async move { limits.acquire("s", 1, None).await.err() })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(limits.acquire("s", 1, None).await.err(), Some(Refusal::QueueFull));
        for w in waiters {
            assert_eq!(w.await.unwrap(), Some(Refusal::Stalled));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_spaces_starts() {
        let limits = Limits::new(STALL, HORIZON, 100);
        let started = Instant::now();
        for _ in 0..3 {
            limits.acquire("s", 10, Some(20)).await.unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(100), "{:?}", started.elapsed());
        // One per second, one already booked: the next start is a second away, within 2 s.
        limits.acquire("r", 10, Some(1)).await.unwrap();
        limits.acquire("r", 10, Some(1)).await.unwrap();
        let limits = Limits::new(Duration::from_millis(10), HORIZON, 100);
        limits.acquire("r", 10, Some(1)).await.unwrap();
        assert_eq!(limits.acquire("r", 10, Some(1)).await.err(), Some(Refusal::RateLimited));
    }

    #[tokio::test(start_paused = true)]
    async fn patient_acquire_never_refuses() {
        let limits = Arc::new(Limits::new(STALL, HORIZON, 0));
        let held = limits.acquire_patiently("s", 1, None).await;
        let waiter = {
            let limits = limits.clone();
            tokio::spawn(async move { limits.acquire_patiently("s", 1, None).await })
        };
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(held);
        waiter.await.unwrap();
    }
}
