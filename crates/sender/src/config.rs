//! The `[sender]` configuration section.

use serde::{Deserialize, Serialize};
use synap_runtime::{Refusal, above_zero};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderConfig {
    /// Whole-request timeout: a 2xx must arrive within it to count as delivered. A subscription
    /// may override it up to 30 s.
    pub request_timeout_ms: u64,
    /// TCP and TLS connection timeout.
    pub connect_timeout_ms: u64,
    /// Requests in flight at once, over all subscriptions.
    pub max_in_flight: usize,
    /// Delivery records the sender holds at once (read, not yet finished): those in flight and
    /// those waiting in memory for their subscription. Bounds memory: each cost about 20 KB of
    /// peak heap with its request, response and log row, so with 2,048 the sender's own heap
    /// peaked near 150 MiB however large a burst was; 8 KB less each since a delivery's target
    /// read is boxed (16 MiB less at 2,048; librdkafka's read-ahead comes on top: the
    /// consumer's `queued.max.messages.kbytes`, 16 MiB by default, docs/BENCHMARKS.md). Keep it
    /// above `max_waiting_per_subscription`, so that one subscription's queue cannot fill it.
    /// Larger is not faster: 4,096 delivered no more than 2,048, and 8,192 cost a third more CPU
    /// per delivery, in the benchmark (docs/BENCHMARKS.md).
    pub max_buffered: usize,
    /// How long a subscription's URL, credentials, signing secrets and options are cached at
    /// most. Changes reach the sender when PostgreSQL announces them (a listener, migration 80),
    /// within milliseconds, and an entry ends when a rotated-out secret in it expires; this is
    /// the safety net should a notification ever be lost. While the listener is disconnected
    /// entries live 1 s. While PostgreSQL is unreachable the last values read keep being used.
    pub cache_ttl_ms: u64,
    /// MiB of subscription targets cached at most (URL, credentials, signing keys, headers;
    /// about 1.4 KB for a subscription with one key and no custom headers, so 32 MiB holds some
    /// 23,000). A target pushed out is read again at its next delivery, one round trip of three
    /// queries. Without this bound the cache grew with every subscription delivered to, past the
    /// sender's memory budget at 30,000 (docs/BENCHMARKS.md, `scale-total-50000`). The copy
    /// kept for PostgreSQL outages shares these entries and has the same bound.
    pub target_cache_mib: u64,
    /// Delays before the second, third, … attempt (the first is immediate). Each delay is a
    /// retry tier topic (`<prefix>retry.<delay>`) where the delivery waits. After the last
    /// attempt fails, the delivery goes to the dead-letter topic and an operator event is sent.
    pub retry_delays_ms: Vec<u64>,
    /// Each retry delay varies by up to this fraction either way, so that retries of a burst do
    /// not hit an endpoint all at once.
    pub retry_jitter: f64,
    /// Longest `Retry-After` (on 429 and 503) that is honoured; longer ones wait this long.
    pub max_retry_after_ms: u64,
    /// Retries each tier consumer holds (in memory, offsets uncommitted) while waiting for their
    /// due time; the rest wait in the topic. Records of a tier fall due in about the order they
    /// arrived, so this bounds memory, not timeliness. 250 by default (1,000 until issue 13):
    /// each held record costs about 5 KB, and a long outage fills every tier.
    pub retry_tier_max_in_flight: usize,
    /// Requests in flight to one subscription at once, unless the subscription sets its own.
    pub max_in_flight_per_subscription: u32,
    /// A delivery waits in memory for a slot of its subscription while the subscription makes
    /// progress; once no request of it has started or finished for this long (a hanging
    /// endpoint), or its rate limit would hold the delivery back longer, the delivery waits in
    /// the first retry tier instead, without using up an attempt.
    pub slot_wait_ms: u64,
    /// Deliveries that may wait in memory for one subscription at most; more go to the first
    /// retry tier. Fewer may wait for a slow endpoint: only as many as would get a slot before
    /// the first tier's delay at the pace of its recent requests (with 16 slots and 5 s, 80 for
    /// an endpoint taking 1 s). Until the subscription's endpoint has answered once (since start,
    /// or since it last stalled), at most 4 per in-flight slot may wait. Half of `max_buffered`
    /// by default, so one subscription's burst leaves the other half to the rest.
    pub max_waiting_per_subscription: usize,
    /// Consecutive failures that say an endpoint is down (no answer, 5xx, 429, 408) that open a
    /// portal's circuit for it (its URL without the query): no requests of that portal go there
    /// until one probe after the cool-down succeeds. Each portal has its own circuit for an
    /// endpoint, so another portal subscribed to it cannot open its owner's.
    pub breaker_failures: u32,
    /// How long an open circuit waits before its probe. Also a retry tier of its own
    /// (`<prefix>retry.<cooldown>`): a delivery that finds the circuit open waits there for the
    /// probe, using up no attempt and writing no attempt-log row.
    pub breaker_cooldown_ms: u64,
    /// A subscription whose attempts have all failed for this long is disabled, with an
    /// operator event.
    pub disable_after_failing_ms: u64,
    /// Also POST every operator event (JSON) to this URL; empty for the Kafka topic only.
    pub operator_webhook_url: String,
    /// Attempt-log rows written to PostgreSQL in one transaction at most.
    pub log_batch_size: usize,
    /// How long the attempt log waits to fill a batch.
    pub log_batch_wait_ms: u64,
    /// How long an attempt waits for its log row to be stored in PostgreSQL directly before the
    /// row goes through the attempts topic instead (0: always through the topic).
    pub log_direct_wait_ms: u64,
    /// Also keep the response body (its first 16 KiB) of successful attempts in the attempt log.
    /// Off by default: bodies are kept for failed attempts only, where they explain the failure.
    pub store_success_bodies: bool,
}

/// The largest `sender.target_cache_mib`.
const MAX_TARGET_CACHE_MIB: u64 = 64 * 1024;

impl SenderConfig {
    /// `target_cache_mib` in bytes.
    pub fn target_cache_bytes(&self) -> u64 {
        self.target_cache_mib.min(MAX_TARGET_CACHE_MIB) * 1024 * 1024
    }

    /// The settings no sender can run with, as (key, reason).
    pub fn validate(&self) -> Result<(), Refusal> {
        if !(0.0..1.0).contains(&self.retry_jitter) {
            return Err(("sender.retry_jitter", "must be in [0, 1)".into()));
        }
        // No cache reads every target for every delivery; 64 GiB is past any real need and keeps
        // the byte count far from overflowing.
        if !(1..=MAX_TARGET_CACHE_MIB).contains(&self.target_cache_mib) {
            return Err(("sender.target_cache_mib", format!("must be 1 to {MAX_TARGET_CACHE_MIB}")));
        }
        // A tier consumer that may hold none never reads: every retry would wait for ever.
        above_zero("sender.retry_tier_max_in_flight", self.retry_tier_max_in_flight)
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        const MIN: u64 = 60_000;
        const HOUR: u64 = 60 * MIN;
        Self {
            request_timeout_ms: 15_000,
            connect_timeout_ms: 5_000,
            max_in_flight: 1024,
            max_buffered: 2048,
            cache_ttl_ms: 300_000,
            target_cache_mib: 32,
            retry_delays_ms: vec![
                5_000,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                14 * HOUR,
                20 * HOUR,
                24 * HOUR,
            ],
            retry_jitter: 0.2,
            max_retry_after_ms: 6 * HOUR,
            retry_tier_max_in_flight: 250,
            max_in_flight_per_subscription: 16,
            slot_wait_ms: 2_000,
            max_waiting_per_subscription: 1024,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            disable_after_failing_ms: 72 * HOUR,
            operator_webhook_url: String::new(),
            log_batch_size: 500,
            log_batch_wait_ms: 100,
            log_direct_wait_ms: 2_000,
            store_success_bodies: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_no_sender_can_run_with_are_refused_by_name() {
        assert_eq!(SenderConfig::default().validate(), Ok(()));
        let held_none = SenderConfig { retry_tier_max_in_flight: 0, ..SenderConfig::default() };
        assert_eq!(held_none.validate().unwrap_err().0, "sender.retry_tier_max_in_flight");
        let held_one = SenderConfig { retry_tier_max_in_flight: 1, ..SenderConfig::default() };
        assert_eq!(held_one.validate(), Ok(()));
        for mib in [0, MAX_TARGET_CACHE_MIB + 1, u64::MAX] {
            let cache = SenderConfig { target_cache_mib: mib, ..SenderConfig::default() };
            assert_eq!(cache.validate().unwrap_err().0, "sender.target_cache_mib", "{mib}");
        }
        for mib in [1, MAX_TARGET_CACHE_MIB] {
            let cache = SenderConfig { target_cache_mib: mib, ..SenderConfig::default() };
            assert_eq!(cache.validate(), Ok(()), "{mib}");
            assert_eq!(cache.target_cache_bytes(), mib << 20);
        }
        for jitter in [1.0, -0.1, f64::NAN] {
            let jittered = SenderConfig { retry_jitter: jitter, ..SenderConfig::default() };
            assert_eq!(jittered.validate().unwrap_err().0, "sender.retry_jitter", "{jitter}");
        }
    }
}
