//! The retry schedule: when each attempt happens and which delay tier it waits in.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct RetrySchedule {
    /// Delay before attempt 2, 3, …
    delays: Vec<Duration>,
    jitter: f64,
    max_retry_after: Duration,
    /// The distinct non-zero delays, ascending: one Kafka topic each.
    tiers: Vec<Duration>,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Attempt `attempt` after `delay` (zero: at once).
    Retry { attempt: u32, delay: Duration },
    /// The schedule is used up.
    Exhausted,
}

impl RetrySchedule {
    pub fn new(delays_ms: &[u64], jitter: f64, max_retry_after: Duration) -> Self {
        let delays: Vec<Duration> = delays_ms.iter().map(|ms| Duration::from_millis(*ms)).collect();
        let mut tiers: Vec<Duration> = delays.iter().copied().filter(|d| !d.is_zero()).collect();
        tiers.sort();
        tiers.dedup();
        Self { delays, jitter: jitter.clamp(0.0, 0.9), max_retry_after, tiers }
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// After attempt `failed` failed (its response asking for `retry_after`, if it did).
    pub fn next(&self, failed: u32, retry_after: Option<Duration>) -> Next {
        let Some(base) = self.delays.get(failed.max(1) as usize - 1) else { return Next::Exhausted };
        let mut delay = base.mul_f64(1.0 + rand::rng().random_range(-self.jitter..=self.jitter));
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(self.max_retry_after));
        }
        Next::Retry { attempt: failed + 1, delay }
    }

    /// Adds a tier for `delay` (e.g. the circuit breaker's cool-down, where deliveries to an
    /// endpoint whose circuit is open wait for its probe) when the schedule has none.
    pub fn with_tier(mut self, delay: Duration) -> Self {
        if !delay.is_zero() && !self.tiers.contains(&delay) {
            self.tiers.push(delay);
            self.tiers.sort();
        }
        self
    }

    /// The longest any retry can wait: the longest delay with its jitter, the `Retry-After` cap,
    /// or the longest tier.
    pub fn longest_delay(&self) -> Duration {
        let delays = self.delays.iter().max().copied().unwrap_or_default().mul_f64(1.0 + self.jitter);
        let tiers = self.tiers.last().copied().unwrap_or_default();
        delays.max(self.max_retry_after).max(tiers)
    }

    pub fn tiers(&self) -> &[Duration] {
        &self.tiers
    }

    /// The tier a retry due in `delay` waits in: the nearest by ratio (a 4 min retry is nearer
    /// 5 min than 5 s). A tier's consumer holds each record until it is due, and its committed
    /// offset cannot pass a record still held, so the records of a tier must fall due in about
    /// the order they arrive. Taking the longest tier no longer than the delay put every retry
    /// jittered below its tier's delay into the tier before: with the default jitter, half of
    /// the 5 minute retries sat for minutes among the 5 second ones, holding that tier's slots
    /// and its offset.
    pub fn tier_for(&self, delay: Duration) -> Option<Duration> {
        let distance = |tier: &Duration| (delay.as_secs_f64().max(0.001) / tier.as_secs_f64()).ln().abs();
        self.tiers.iter().copied().min_by(|a, b| distance(a).total_cmp(&distance(b)))
    }

    /// The first tier, where deliveries wait for a slot of a busy subscription.
    pub fn shortest_tier(&self) -> Option<Duration> {
        self.tiers.first().copied()
    }
}

/// A tier's name in its topic: `500ms`, `5s`, `5m`, `2h`.
pub fn tier_label(delay: Duration) -> String {
    let ms = delay.as_millis() as u64;
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(jitter: f64) -> RetrySchedule {
        RetrySchedule::new(&[5_000, 300_000, 1_800_000, 5_000], jitter, Duration::from_secs(3600))
    }

    #[test]
    fn follows_the_delays_then_is_exhausted() {
        let s = schedule(0.0);
        assert_eq!(s.attempts(), 5);
        assert_eq!(s.next(1, None), Next::Retry { attempt: 2, delay: Duration::from_secs(5) });
        assert_eq!(s.next(3, None), Next::Retry { attempt: 4, delay: Duration::from_secs(1800) });
        assert_eq!(s.next(5, None), Next::Exhausted);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let s = schedule(0.2);
        for _ in 0..200 {
            let Next::Retry { delay, .. } = s.next(2, None) else { panic!() };
            assert!(delay >= Duration::from_secs(240) && delay <= Duration::from_secs(360), "{delay:?}");
        }
    }

    #[test]
    fn retry_after_lengthens_within_the_cap() {
        let s = schedule(0.0);
        assert_eq!(
            s.next(1, Some(Duration::from_secs(60))),
            Next::Retry { attempt: 2, delay: Duration::from_secs(60) }
        );
        assert_eq!(
            s.next(1, Some(Duration::from_secs(86_400))),
            Next::Retry { attempt: 2, delay: Duration::from_secs(3600) }
        );
        assert_eq!(
            s.next(2, Some(Duration::from_secs(1))),
            Next::Retry { attempt: 3, delay: Duration::from_secs(300) }
        );
    }

    #[test]
    fn tiers_are_the_distinct_delays() {
        let s = schedule(0.0);
        assert_eq!(s.tiers(), [Duration::from_secs(5), Duration::from_secs(300), Duration::from_secs(1800)]);
        assert_eq!(
            s.tier_for(Duration::from_secs(6)),
            Some(Duration::from_secs(5)),
            "jitter stays in its tier"
        );
        assert_eq!(s.tier_for(Duration::from_secs(4)), Some(Duration::from_secs(5)), "either way");
        assert_eq!(
            s.tier_for(Duration::from_secs(240)),
            Some(Duration::from_secs(300)),
            "a 5 min retry jittered down"
        );
        assert_eq!(s.tier_for(Duration::from_secs(360)), Some(Duration::from_secs(300)), "and up");
        assert_eq!(
            s.tier_for(Duration::from_secs(30)),
            Some(Duration::from_secs(5)),
            "nearer 5 s than 5 min"
        );
        assert_eq!(
            s.tier_for(Duration::from_secs(60)),
            Some(Duration::from_secs(300)),
            "nearer 5 min than 5 s"
        );
        assert_eq!(s.tier_for(Duration::from_secs(300)), Some(Duration::from_secs(300)));
        assert_eq!(s.tier_for(Duration::from_millis(10)), Some(Duration::from_secs(5)));
        assert_eq!(s.tier_for(Duration::from_secs(7200)), Some(Duration::from_secs(1800)));
        // With the default jitter, every retry waits in its own delay's tier.
        let jittered = schedule(0.2);
        for failed in 1..=4 {
            let Next::Retry { delay, .. } = jittered.next(failed, None) else { panic!() };
            let base = schedule(0.0).next(failed, None);
            let Next::Retry { delay: base, .. } = base else { panic!() };
            assert_eq!(jittered.tier_for(delay), Some(base), "{delay:?}");
        }
        assert_eq!(RetrySchedule::new(&[], 0.0, Duration::ZERO).tier_for(Duration::from_secs(1)), None);
        let parked = schedule(0.0).with_tier(Duration::from_secs(30));
        assert_eq!(parked.tiers()[1], Duration::from_secs(30));
        assert_eq!(parked.tier_for(Duration::from_secs(31)), Some(Duration::from_secs(30)));
        let breaker =
            RetrySchedule::new(&[600_000], 0.2, Duration::from_secs(3600)).with_tier(Duration::from_secs(30));
        assert_eq!(
            breaker.tier_for(Duration::from_secs(480)),
            Some(Duration::from_secs(600)),
            "not the 30 s tier"
        );
        assert_eq!(schedule(0.0).with_tier(Duration::from_secs(5)).tiers().len(), 3, "no duplicate");
        assert_eq!(tier_label(Duration::from_secs(5)), "5s");
        assert_eq!(tier_label(Duration::from_secs(300)), "5m");
        assert_eq!(tier_label(Duration::from_secs(7200)), "2h");
        assert_eq!(tier_label(Duration::from_millis(200)), "200ms");
    }

    #[test]
    fn the_longest_delay_covers_jitter_retry_after_and_tiers() {
        assert_eq!(schedule(0.2).longest_delay(), Duration::from_secs(3600), "the Retry-After cap");
        let s = RetrySchedule::new(&[5_000, 7_200_000], 0.5, Duration::from_secs(60));
        assert_eq!(s.longest_delay(), Duration::from_secs(10_800), "2 h and half again");
        let s = RetrySchedule::new(&[], 0.0, Duration::ZERO).with_tier(Duration::from_secs(30));
        assert_eq!(s.longest_delay(), Duration::from_secs(30), "the breaker's tier");
    }
}
