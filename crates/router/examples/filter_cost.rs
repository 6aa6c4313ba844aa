//! The router's cost per event for one portal with 1,000 subscriptions to the event's type:
//! unfiltered, with wildcards, and with a filter on each. It runs the router's own decision
//! (`PortalRoutes::matches`: type patterns, plan rule, filter bindings, one evaluation per
//! filtered subscription, the metrics), not a model of it; the Kafka write that follows is the
//! same in every case and is measured by `synap-bench`.
//!
//! `cargo run --release -p synap-router --example filter_cost` (docs/BENCHMARKS.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use synap_contract::{EventType, Plan};
use synap_db::Route;
use synap_proto::pipeline::v1::Event;
use synap_router::filtering::EventView;
use synap_router::routes::PortalRoutes;

const SUBSCRIPTIONS: usize = 1_000;
/// Each case runs at least this long, after a warm-up of a tenth of it.
const RUN: Duration = Duration::from_secs(3);

fn portal(routes: Vec<Route>) -> PortalRoutes {
    PortalRoutes { plan: Some(Plan::Pro), features: vec![], routes }
}

fn routes(types: &[&str], filter: impl Fn(usize) -> Option<String>) -> Vec<Route> {
    (0..SUBSCRIPTIONS)
        .map(|i| Route {
            subscription_id: format!("sub_{i:04}"),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            filter: filter(i).map(|text| synap_filter::compiled(&text)),
        })
        .collect()
}

/// This thread's time on a CPU, in nanoseconds (the first field of its schedstat): on a machine
/// shared with other work, CPU time per event varies far less than wall-clock time.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_default()
}

/// Wall-clock and CPU nanoseconds per event, and deliveries per event.
fn measure(p: &PortalRoutes, event: &Event, ty: EventType) -> (f64, f64, usize) {
    let once = || {
        let view = EventView::new(event, ty);
        black_box(p.matches(ty, &view).map(|m| m.len()).unwrap_or_default())
    };
    let warm = Instant::now();
    while warm.elapsed() < RUN / 10 {
        once();
    }
    let (started, cpu, mut events, mut matched) = (Instant::now(), cpu_ns(), 0u64, 0);
    while started.elapsed() < RUN {
        matched = once();
        events += 1;
    }
    let wall = started.elapsed().as_nanos() as f64 / events as f64;
    (wall, (cpu_ns() - cpu) as f64 / events as f64, matched)
}

fn main() {
    let ty = EventType::ExamCompleted;
    let body = ty.example_body();
    let event = Event {
        id: "evt_bench".into(),
        r#type: ty.code().into(),
        portal_id: "prt_bench".into(),
        occurred_at_ms: 1_795_000_000_000,
        ingested_at_ms: 0,
        data: body.to_string().into_bytes().into(),
    };
    println!(
        "router cost per exam.completed event ({} bytes), one portal, {SUBSCRIPTIONS} subscriptions",
        event.data.len()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));

    // Compiling: what a route-cache load costs the first time it sees a portal's filters, and
    // afterwards (the compiled filters are shared by text).
    let texts: Vec<String> = (0..SUBSCRIPTIONS)
        .map(|i| format!(r#"data.exam.id == "exm_{i:04}" && data.attempt.scoreFrac < 0.9"#))
        .collect();
    let started = Instant::now();
    for text in &texts {
        synap_filter::compiled(text).expect("compiles");
    }
    let first = started.elapsed();
    let started = Instant::now();
    for text in &texts {
        synap_filter::compiled(text).expect("compiles");
    }
    let again = started.elapsed();
    println!(
        "compile {SUBSCRIPTIONS} filters: {:.1} ms the first time, {:.2} ms from the cache",
        first.as_secs_f64() * 1e3,
        again.as_secs_f64() * 1e3
    );

    let cases: Vec<(&str, PortalRoutes)> = vec![
        ("unfiltered, exact type", portal(routes(&["exam.completed"], |_| None))),
        ("unfiltered, wildcards (exam.*)", portal(routes(&["user.updated", "exam.*"], |_| None))),
        (
            "filtered: exam id and score (1 matches)",
            portal(routes(&["exam.completed"], |i| {
                Some(format!(
                    r#"data.exam.id == "{}" && data.attempt.scoreFrac < 0.9"#,
                    if i == 0 { "exm_1c9a63d2f8" } else { "exm_other" }
                ))
            })),
        ),
        (
            "filtered: exam ids of 1,000 customers",
            portal(routes(&["exam.completed"], |i| Some(texts[i].clone()))),
        ),
        (
            "filtered: exists over the sections (all match)",
            portal(routes(&["exam.completed"], |_| {
                Some("data.attempt.state.sections.items.exists(s, s.scoreFrac < 0.99)".into())
            })),
        ),
        (
            "filtered: field absent (every evaluation fails)",
            portal(routes(&["exam.completed"], |_| Some(r#"data["addedLater"] == "x""#.into()))),
        ),
    ];
    println!(
        "{:<50} {:>13} {:>13} {:>15} {:>11}",
        "case", "wall µs/event", "CPU µs/event", "CPU ns/subscr.", "deliveries"
    );
    for (name, p) in &cases {
        let (wall, cpu, matched) = measure(p, &event, ty);
        println!(
            "{name:<50} {:>13.1} {:>13.1} {:>15.0} {matched:>11}",
            wall / 1e3,
            cpu / 1e3,
            cpu / SUBSCRIPTIONS as f64
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
}
