//! `synap-bench receiver`: the webhook endpoints, as a process of their own so that their CPU is
//! not the services' and can be measured apart.
//!
//! `POST /<behaviour>/<anything>` answers as the first path segment says (see [`Behaviour`]) and
//! records the arrival time against the `webhook-id`; the id carries the scenario tag and the
//! publish time (see [`crate::stats::event_id`]). `GET /stats?tag=…&expect=…&since_us=…` sums up
//! one scenario; `GET /count?tag=…` is the cheap progress figure the runner polls.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::scenarios::Layout;
use crate::stats::{
    Behaviour, Percentiles, TagSummary, now_us, parse_event_id, sustained_per_second, thirds, timeline,
};

#[derive(clap::Args)]
pub struct ReceiverArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Writes the bound address to this file once listening (for the runner that spawned it).
    #[arg(long)]
    pub address_file: Option<std::path::PathBuf>,
}

/// One first arrival at a 2xx endpoint.
struct Arrival {
    endpoint: u32,
    seq: u64,
    published_us: u64,
    arrived_us: u64,
}

#[derive(Default)]
struct Tag {
    requests: u64,
    failing_requests: u64,
    duplicates: u64,
    seen: HashSet<(u32, u64)>,
    arrivals: Vec<Arrival>,
}

#[derive(Default)]
struct Recorded {
    /// Endpoint paths interned to small numbers.
    endpoints: HashMap<String, u32>,
    tags: HashMap<String, Tag>,
}

type Shared = Arc<Mutex<Recorded>>;

pub async fn run(args: ReceiverArgs) -> anyhow::Result<()> {
    let shared = Shared::default();
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/count", get(count))
        .fallback(webhook)
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let address = listener.local_addr()?;
    if let Some(path) = &args.address_file {
        // Written then renamed, so the runner never reads half an address.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, address.to_string())?;
        std::fs::rename(&partial, path)?;
    }
    println!("receiver listening on http://{address}");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn webhook(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let arrived_us = now_us();
    let path = uri.path();
    let Some(behaviour) = path.split('/').nth(1).and_then(Behaviour::from_segment) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some((tag, seq, published_us)) = parse_event_id(id) {
        record(&shared, path, tag, seq, published_us, arrived_us, behaviour);
    }
    match behaviour {
        Behaviour::Ok => StatusCode::OK.into_response(),
        Behaviour::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Behaviour::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK.into_response()
        }
        Behaviour::Hang => {
            // Until the client gives up and closes the connection, which drops this future.
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

fn record(
    shared: &Shared,
    path: &str,
    tag: &str,
    seq: u64,
    published_us: u64,
    arrived_us: u64,
    b: Behaviour,
) {
    let mut recorded = shared.lock().expect("receiver state");
    let next = recorded.endpoints.len() as u32;
    let endpoint = *recorded.endpoints.entry(path.to_owned()).or_insert(next);
    let tag = recorded.tags.entry(tag.to_owned()).or_default();
    tag.requests += 1;
    if !b.delivers() {
        tag.failing_requests += 1;
    } else if tag.seen.insert((endpoint, seq)) {
        tag.arrivals.push(Arrival { endpoint, seq, published_us, arrived_us });
    } else {
        tag.duplicates += 1;
    }
}

#[derive(Deserialize)]
struct StatsQuery {
    tag: String,
    /// Distinct endpoints an event must reach to be complete.
    #[serde(default = "one")]
    expect: u64,
    /// Latency counts only events published at or after this time (unix µs): the warm-up cut.
    #[serde(default)]
    since_us: u64,
    /// Counts only the events of portals that answer 2xx in an `isolation` layout of this many
    /// portals ([`Layout::healthy_in_isolation`]): asked of `steady`, the same tenants without
    /// failing neighbours.
    #[serde(default)]
    healthy_in_isolation_of: Option<u64>,
}

fn one() -> u64 {
    1
}

async fn count(State(shared): State<Shared>, Query(q): Query<StatsQuery>) -> String {
    let recorded = shared.lock().expect("receiver state");
    recorded.tags.get(&q.tag).map(|t| t.arrivals.len()).unwrap_or(0).to_string()
}

async fn stats(State(shared): State<Shared>, Query(q): Query<StatsQuery>) -> axum::Json<TagSummary> {
    let recorded = shared.lock().expect("receiver state");
    let Some(tag) = recorded.tags.get(&q.tag) else { return axum::Json(TagSummary::default()) };
    axum::Json(summarise(tag, &tag.kept(q.healthy_in_isolation_of), q.expect, q.since_us))
}

impl Tag {
    /// Every first arrival, or with `Some(portals)` those of the portals healthy in an
    /// `isolation` layout of that many.
    fn kept(&self, healthy_in_isolation_of: Option<u64>) -> Vec<&Arrival> {
        match healthy_in_isolation_of {
            Some(portals) => {
                self.arrivals.iter().filter(|a| Layout::healthy_in_isolation(portals, a.seq)).collect()
            }
            None => self.arrivals.iter().collect(),
        }
    }
}

/// The figures of `tag` over the first arrivals `kept` (all of the tag's, or a subset of them).
fn summarise(tag: &Tag, kept: &[&Arrival], expect: u64, since_us: u64) -> TagSummary {
    let mut arrivals: Vec<u64> = kept.iter().map(|a| a.arrived_us).collect();
    let mut latencies: Vec<u64> = kept
        .iter()
        .filter(|a| a.published_us >= since_us)
        .map(|a| a.arrived_us.saturating_sub(a.published_us))
        .collect();
    // Per event: how many endpoints have it, and when the last of them got it.
    let mut per_event: HashMap<u64, (u64, u64, u64)> = HashMap::new();
    for a in kept {
        let entry = per_event.entry(a.seq).or_insert((0, a.published_us, 0));
        entry.0 += 1;
        entry.2 = entry.2.max(a.arrived_us);
    }
    let endpoints: HashSet<u32> = kept.iter().map(|a| a.endpoint).collect();
    let complete: Vec<(u64, u64)> = per_event
        .values()
        .filter(|(n, ..)| *n >= expect)
        .map(|(_, published, last)| (*published, *last))
        .collect();
    let mut completion: Vec<u64> = complete
        .iter()
        .filter(|(published, _)| *published >= since_us)
        .map(|(published, last)| last.saturating_sub(*published))
        .collect();
    let by_publish: Vec<(u64, u64)> =
        kept.iter().map(|a| (a.published_us, a.arrived_us.saturating_sub(a.published_us))).collect();
    let measured: Vec<(u64, u64)> =
        by_publish.iter().copied().filter(|(published, _)| *published >= since_us).collect();
    let mut completed_at: Vec<u64> = complete.iter().map(|(_, last)| *last).collect();
    TagSummary {
        requests: tag.requests,
        failing_requests: tag.failing_requests,
        deliveries: kept.len() as u64,
        duplicates: tag.duplicates,
        endpoints: endpoints.len() as u64,
        events: per_event.len() as u64,
        complete_events: complete.len() as u64,
        deliveries_per_s: sustained_per_second(&mut arrivals),
        events_per_s: sustained_per_second(&mut completed_at),
        latency_ms: Percentiles::of_micros(&mut latencies),
        completion_ms: Percentiles::of_micros(&mut completion),
        timeline: timeline(&by_publish),
        latency_by_third_ms: thirds(&measured),
        first_arrival_us: arrivals.first().copied().unwrap_or(0),
        last_arrival_us: arrivals.last().copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_needs_every_endpoint() {
        let shared = Shared::default();
        // Event 1 reaches both endpoints, event 2 only one; a retry of event 1 is a duplicate.
        record(&shared, "/ok/a", "t", 1, 1_000, 3_000, Behaviour::Ok);
        record(&shared, "/ok/b", "t", 1, 1_000, 5_000, Behaviour::Ok);
        record(&shared, "/ok/a", "t", 1, 1_000, 6_000, Behaviour::Ok);
        record(&shared, "/ok/a", "t", 2, 2_000, 4_000, Behaviour::Ok);
        record(&shared, "/fail/c", "t", 2, 2_000, 4_000, Behaviour::Fail);
        let recorded = shared.lock().unwrap();
        let tag = &recorded.tags["t"];
        let s = summarise(tag, &tag.kept(None), 2, 0);
        assert_eq!((s.requests, s.failing_requests, s.deliveries, s.duplicates), (5, 1, 3, 1));
        assert_eq!((s.events, s.complete_events), (2, 1));
        assert_eq!(s.completion_ms.max, 4.0);
        assert_eq!(s.latency_ms.max, 4.0);
        // The warm-up cut drops event 1 from the latency figures.
        assert_eq!(summarise(tag, &tag.kept(None), 1, 1_500).latency_ms.count, 1);
    }

    #[test]
    fn a_subset_counts_only_the_tenants_healthy_in_isolation() {
        let shared = Shared::default();
        // Of 10 portals, events 0 and 1 (and 10, 11) belong to the two that fail in isolation.
        for seq in 0..20 {
            record(&shared, &format!("/ok/p{}", seq % 10), "steady", seq, 1_000, 2_000 + seq, Behaviour::Ok);
        }
        let recorded = shared.lock().unwrap();
        let tag = &recorded.tags["steady"];
        let subset = summarise(tag, &tag.kept(Some(10)), 1, 0);
        assert_eq!((subset.deliveries, subset.endpoints, subset.events), (16, 8, 16));
        assert_eq!(summarise(tag, &tag.kept(None), 1, 0).deliveries, 20);
        // Published requests still count whole: the subset picks deliveries, not traffic.
        assert_eq!(subset.requests, 20);
    }
}
