//! What the receiver measured, and the arithmetic behind each figure. The receiver computes these
//! summaries; the runner reads them back as JSON, so both sides share these types.

use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds over `count` samples.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (microseconds), reported in milliseconds.
    pub fn of_micros(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            let index = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index] as f64 / 1000.0
        };
        Self {
            count: samples.len() as u64,
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: samples[samples.len() - 1] as f64 / 1000.0,
        }
    }
}

/// Sustained rate of a stream of arrival times (microseconds): the middle 80% of the arrivals
/// divided by the time they spanned. Dropping the first and last 10% leaves out the warm-up
/// (consumers joining, caches filling) and the drain, so the figure is the steady state.
/// `None` with fewer than 20 arrivals, where the middle is too thin to mean anything.
pub fn sustained_per_second(arrivals_us: &mut [u64]) -> Option<f64> {
    if arrivals_us.len() < 20 {
        return None;
    }
    arrivals_us.sort_unstable();
    let low = arrivals_us.len() / 10;
    let high = arrivals_us.len() - 1 - arrivals_us.len() / 10;
    let span_us = arrivals_us[high].saturating_sub(arrivals_us[low]).max(1);
    Some((high - low) as f64 / (span_us as f64 / 1e6))
}

/// How an endpoint answers; the first segment of its path (`/ok/…`, `/fail/…`, `/hang/…`,
/// `/slow-<ms>/…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// 200 at once.
    Ok,
    /// 500 at once.
    Fail,
    /// Holds the request open and never answers.
    Hang,
    /// 200 after this many milliseconds.
    Slow(u64),
}

impl Behaviour {
    pub fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "ok" => Some(Self::Ok),
            "fail" => Some(Self::Fail),
            "hang" => Some(Self::Hang),
            _ => segment.strip_prefix("slow-")?.parse().ok().map(Self::Slow),
        }
    }

    pub fn segment(self) -> String {
        match self {
            Self::Ok => "ok".into(),
            Self::Fail => "fail".into(),
            Self::Hang => "hang".into(),
            Self::Slow(ms) => format!("slow-{ms}"),
        }
    }

    /// Whether a request to such an endpoint counts as a delivery.
    pub fn delivers(self) -> bool {
        matches!(self, Self::Ok | Self::Slow(_))
    }
}

/// Everything the receiver saw of one scenario (one event-id tag).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TagSummary {
    /// Every request, retries and duplicates included.
    pub requests: u64,
    /// Requests to endpoints that answer 500 or never answer.
    pub failing_requests: u64,
    /// First arrivals of (endpoint, event) pairs at endpoints that answer 2xx.
    pub deliveries: u64,
    /// Second and later arrivals of the same (endpoint, event) at a 2xx endpoint.
    pub duplicates: u64,
    /// Distinct 2xx endpoints that received at least one event.
    pub endpoints: u64,
    /// Distinct events that reached at least one 2xx endpoint.
    pub events: u64,
    /// Events that reached `expect` distinct 2xx endpoints.
    pub complete_events: u64,
    pub deliveries_per_s: Option<f64>,
    /// Rate at which events became complete (all their endpoints had them), middle 80%.
    pub events_per_s: Option<f64>,
    /// Publish → first arrival at each 2xx endpoint, for events published at or after `since`.
    pub latency_ms: Percentiles,
    /// Publish → arrival at the last of its `expect` endpoints, per complete event.
    pub completion_ms: Percentiles,
    /// Latency by second of publish time (all events, warm-up included): shows a latency that
    /// grows during a run, which a percentile over the whole run hides.
    pub timeline: Vec<Second>,
    /// Latency of the events published in each third of the measured time (after the warm-up
    /// cut), in order: a latency that grows with the run shows as rising thirds.
    #[serde(default)]
    pub latency_by_third_ms: Vec<Percentiles>,
    /// First and last arrival at a 2xx endpoint, unix microseconds.
    pub first_arrival_us: u64,
    pub last_arrival_us: u64,
}

/// Deliveries of the events published in one second of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the first publish.
    pub second: u64,
    pub deliveries: u64,
    pub p50_ms: f64,
    pub max_ms: f64,
}

/// Groups `(published µs, latency µs)` pairs by second of publish time.
pub fn timeline(samples: &[(u64, u64)]) -> Vec<Second> {
    let Some(start) = samples.iter().map(|(p, _)| *p).min() else { return Vec::new() };
    let mut by_second: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for (published, latency) in samples {
        by_second.entry((published - start) / 1_000_000).or_default().push(*latency);
    }
    by_second
        .into_iter()
        .map(|(second, mut latencies)| {
            let p = Percentiles::of_micros(&mut latencies);
            Second { second, deliveries: p.count, p50_ms: p.p50, max_ms: p.max }
        })
        .collect()
}

/// Splits `(published µs, latency µs)` pairs into three equal spans of publish time and takes the
/// percentiles of each. Empty when there are no samples.
pub fn thirds(samples: &[(u64, u64)]) -> Vec<Percentiles> {
    let (Some(first), Some(last)) =
        (samples.iter().map(|(p, _)| *p).min(), samples.iter().map(|(p, _)| *p).max())
    else {
        return Vec::new();
    };
    let span = (last - first + 1).div_ceil(3);
    let mut parts: [Vec<u64>; 3] = Default::default();
    for (published, latency) in samples {
        parts[((published - first) / span) as usize].push(*latency);
    }
    parts.iter_mut().map(|part| Percentiles::of_micros(part)).collect()
}

/// The event id the runner sets and the receiver reads back: `evt_<tag>_<seq>_<publish µs>`.
/// Carrying the publish time in the id lets the receiver compute latency with no join against
/// the publisher, on the same machine clock.
pub fn event_id(tag: &str, seq: u64, published_us: u64) -> String {
    format!("evt_{tag}_{seq}_{published_us}")
}

/// `(tag, seq, publish µs)` of an id made by [`event_id`].
pub fn parse_event_id(id: &str) -> Option<(&str, u64, u64)> {
    let rest = id.strip_prefix("evt_")?;
    let mut parts = rest.rsplitn(3, '_');
    let published = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let tag = parts.next()?;
    Some((tag, seq, published))
}

/// Unix time in microseconds.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = event_id("fanout-100", 42, 1_700_000_000_123_456);
        assert_eq!(parse_event_id(&id), Some(("fanout-100", 42, 1_700_000_000_123_456)));
        assert_eq!(parse_event_id("evt_123"), None);
        assert_eq!(parse_event_id("evt_x_y_1"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        let p = Percentiles::of_micros(&mut samples);
        assert_eq!((p.count, p.p50, p.p95, p.p99, p.max), (100, 50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of_micros(&mut []), Percentiles::default());
    }

    #[test]
    fn sustained_rate_ignores_ramp_and_tail() {
        // 1,000 arrivals 1 ms apart after a slow start and before a slow end.
        let mut arrivals: Vec<u64> = (0..1000).map(|i| 10_000_000 + i * 1000).collect();
        arrivals.extend([0, 1, 2, 100_000_000]);
        let rate = sustained_per_second(&mut arrivals).unwrap();
        assert!((rate - 1000.0).abs() < 5.0, "{rate}");
        assert_eq!(sustained_per_second(&mut [1, 2, 3]), None);
    }

    #[test]
    fn thirds_split_publish_time_evenly() {
        // Publish times 0..=8 s: thirds are [0, 3), [3, 6), [6, 9) s.
        let samples: Vec<(u64, u64)> = (0..=8).map(|s| (s * 1_000_000, (s + 1) * 1000)).collect();
        let parts = thirds(&samples);
        assert_eq!(parts.iter().map(|p| p.count).collect::<Vec<_>>(), [3, 3, 3]);
        assert_eq!(parts.iter().map(|p| p.max).collect::<Vec<_>>(), [3.0, 6.0, 9.0]);
        assert!(thirds(&[]).is_empty());
        // One sample: it lands in the first third.
        assert_eq!(thirds(&[(5, 7000)])[0].count, 1);
    }

    #[test]
    fn timeline_by_publish_second() {
        let seconds = timeline(&[(5_000_000, 1000), (5_500_000, 3000), (7_000_001, 2000)]);
        let rows: Vec<_> = seconds.iter().map(|s| (s.second, s.deliveries, s.max_ms)).collect();
        assert_eq!(rows, [(0, 2, 3.0), (2, 1, 2.0)]);
    }

    #[test]
    fn behaviours_from_paths() {
        for b in [Behaviour::Ok, Behaviour::Fail, Behaviour::Hang, Behaviour::Slow(250)] {
            assert_eq!(Behaviour::from_segment(&b.segment()), Some(b));
        }
        assert_eq!(Behaviour::from_segment("webhooks"), None);
    }
}
