//! The report: one JSON document for machines and a table for people, from the same data.

use serde::{Deserialize, Serialize};

use crate::ceiling::{BrokerCeiling, HttpCeiling};
use crate::procstat::ProcessUsage;
use crate::publisher::Published;
use crate::scenarios::Profile;
use crate::stats::TagSummary;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub started_at: String,
    pub machine: Machine,
    pub profile: Profile,
    /// `private tansu (<binary>)` or the `--kafka` address.
    pub broker: String,
    /// The services' environment beyond the wiring (see `settings.rs`), overrides included.
    pub service_settings: Vec<(String, String)>,
    pub http_ceiling: Option<HttpCeiling>,
    pub broker_ceiling: Option<BrokerCeiling>,
    /// The broker alone at each latency scenario's rate, one hop.
    #[serde(default)]
    pub broker_latency: Vec<BrokerLatency>,
    pub scenarios: Vec<ScenarioResult>,
}

/// One hop through a fresh broker at a fixed rate, with the services' client settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BrokerLatency {
    pub records_per_s: f64,
    pub hop: BrokerCeiling,
}

impl BrokerLatency {
    /// What a scenario at this rate cannot beat: three hops (inbound, events, deliveries), each
    /// at this one's p99.
    pub fn floor_ms(&self) -> f64 {
        3.0 * self.hop.hop_latency_ms.p99
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1/5/15-minute load averages when the run started and ended: other work on the machine
    /// makes every figure lower.
    pub load_at_start: String,
    pub load_at_end: String,
    pub git_commit: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub what: String,
    pub published: Published,
    pub expected_deliveries: u64,
    /// Every expected delivery arrived before the deadline.
    pub complete: bool,
    /// Publish start to the last arrival (or the deadline).
    pub seconds: f64,
    pub receiver: TagSummary,
    /// Sustained deliveries/s over the bare HTTP client's requests/s against the same receiver.
    pub fraction_of_http_ceiling: Option<f64>,
    /// For isolation: healthy deliveries/s over the steady scenario's deliveries/s (to every
    /// portal, the failing ones' included: on a machine whose cores every stage shares, their
    /// events' ingest and routing alone keep this below ~87%).
    pub fraction_of_steady: Option<f64>,
    /// For isolation: the deliveries/s that the portals healthy here got in `steady`, where no
    /// endpoint fails.
    #[serde(default)]
    pub same_tenants_in_steady_per_s: Option<f64>,
    /// For isolation: healthy deliveries/s over `same_tenants_in_steady_per_s`: how much the
    /// failing neighbours slow the healthy tenants down.
    #[serde(default)]
    pub fraction_of_same_tenants_in_steady: Option<f64>,
    /// For a latency scenario: three times the broker's one-hop p99 at its rate
    /// (`Report::broker_latency`), the floor its p99 is compared with.
    #[serde(default)]
    pub floor_ms: Option<f64>,
    /// For backlog: retries the sender held in memory, waiting for them to fall due, when the
    /// burst began (`synap_retries_pending`).
    #[serde(default)]
    pub retries_held: Option<f64>,
    pub processes: Vec<ProcessUsage>,
    /// Router CPU per published event: the routing cost.
    pub router_cpu_ms_per_event: Option<f64>,
    /// Sender CPU per healthy delivery.
    pub sender_cpu_ms_per_delivery: Option<f64>,
}

/// Scenarios that publish for at least this long get their latency by thirds in the table.
const MIN_PUBLISH_FOR_THIRDS_S: f64 = 10.0;

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "-".into())
}

impl Report {
    /// A Markdown table: one row per scenario, then the ceilings and the CPU split.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "synap-bench {} profile, broker: {}, {} CPUs ({}), load {} → {}, commit {}\n\n",
            self.profile.name,
            self.broker,
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.load_at_start,
            self.machine.load_at_end,
            self.machine.git_commit
        ));
        out.push_str(
            "| scenario | deliveries/s | events/s | p50 ms | p95 ms | p99 ms | max ms | all-endpoints ms p50/max | of HTTP ceiling | delivered | dup |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for s in &self.scenarios {
            let r = &s.receiver;
            let completion = if r.completion_ms.count > 0 && s.name.starts_with("fanout") {
                format!("{:.0} / {:.0}", r.completion_ms.p50, r.completion_ms.max)
            } else {
                "-".into()
            };
            out.push_str(&format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {}/{}{} | {} |\n",
                s.name,
                opt(r.deliveries_per_s, 0),
                opt(r.events_per_s, 0),
                r.latency_ms.p50,
                r.latency_ms.p95,
                r.latency_ms.p99,
                r.latency_ms.max,
                completion,
                s.fraction_of_http_ceiling
                    .map(|f| format!("{:.0}%", f * 100.0))
                    .unwrap_or_else(|| "-".into()),
                r.deliveries,
                s.expected_deliveries,
                if s.complete { "" } else { " (deadline)" },
                r.duplicates,
            ));
        }
        out.push('\n');
        if let Some(h) = &self.http_ceiling {
            out.push_str(&format!(
                "HTTP ceiling: {:.0} requests/s ({} loops, {:.0} s, p99 {:.1} ms, {} errors)\n",
                h.requests_per_s, h.concurrency, h.seconds, h.latency_ms.p99, h.errors
            ));
        }
        if let Some(b) = &self.broker_ceiling {
            out.push_str(&format!(
                "Broker ceiling, one hop ({} records of {} B, {} partitions): produce {:.0}/s, consume {}/s, hop p50 {:.1} ms p99 {:.1} ms\n",
                b.records,
                b.record_bytes,
                b.partitions,
                b.produced_per_s,
                opt(b.consumed_per_s, 0),
                b.hop_latency_ms.p50,
                b.hop_latency_ms.p99
            ));
        }
        for b in &self.broker_latency {
            let hop = &b.hop.hop_latency_ms;
            out.push_str(&format!(
                "Broker alone at {:.0} records/s, one hop ({} partitions, fresh broker, services' client settings): hop p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
                b.records_per_s, b.hop.partitions, hop.p50, hop.p95, hop.p99, hop.max
            ));
        }
        for s in &self.scenarios {
            if let Some(floor) = s.floor_ms {
                out.push_str(&format!(
                    "{}: p99 {:.1} ms, {:.1}× its floor of {floor:.1} ms (three hops at the broker's one-hop p99 at that rate)\n",
                    s.name,
                    s.receiver.latency_ms.p99,
                    s.receiver.latency_ms.p99 / floor.max(f64::MIN_POSITIVE)
                ));
            }
        }
        // Over a publish of seconds or more, a latency that grows with the run (a broker slowing
        // as its partitions fill) shows here; a p99 over the whole run hides it.
        for s in &self.scenarios {
            let published_s = s.published.finished_us.saturating_sub(s.published.started_us) as f64 / 1e6;
            let thirds = &s.receiver.latency_by_third_ms;
            if published_s >= MIN_PUBLISH_FOR_THIRDS_S && thirds.len() == 3 {
                let cells: Vec<String> = thirds.iter().map(|t| format!("{:.1}", t.p99)).collect();
                out.push_str(&format!(
                    "{}: p99 ms by third of the measured time (publish time, after warm-up): {}\n",
                    s.name,
                    cells.join(" → ")
                ));
            }
        }
        if let Some(iso) = self.scenarios.iter().find(|s| s.fraction_of_steady.is_some()) {
            out.push_str(&format!(
                "Isolation: healthy endpoints got {:.0}% of the steady scenario's deliveries/s",
                iso.fraction_of_steady.unwrap_or(0.0) * 100.0
            ));
            if let (Some(same), Some(fraction)) =
                (iso.same_tenants_in_steady_per_s, iso.fraction_of_same_tenants_in_steady)
            {
                out.push_str(&format!(
                    "; {:.0}% of what the same portals got in steady ({} against {same:.0}/s)",
                    fraction * 100.0,
                    opt(iso.receiver.deliveries_per_s, 0)
                ));
            }
            out.push('\n');
        }
        if let Some(backlog) = self.scenarios.iter().find(|s| s.retries_held.is_some()) {
            out.push_str(&format!(
                "Backlog: the sender held {:.0} retries until due while it delivered the burst\n",
                backlog.retries_held.unwrap_or(0.0)
            ));
        }
        out.push_str("\nCPU seconds (peak RSS MiB) per process during each scenario:\n\n");
        let names: Vec<String> = self
            .scenarios
            .first()
            .map(|s| s.processes.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "| scenario | {} | router ms/event | sender ms/delivery |\n",
            names.join(" | ")
        ));
        out.push_str(&format!("|---|{}---:|---:|\n", "---:|".repeat(names.len())));
        for s in &self.scenarios {
            let cells: Vec<String> = s
                .processes
                .iter()
                .map(|p| match p.peak_rss_mib {
                    Some(mib) => format!("{:.1} ({mib:.0})", p.cpu_s),
                    None => format!("{:.1}", p.cpu_s),
                })
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                s.name,
                cells.join(" | "),
                opt(s.router_cpu_ms_per_event, 3),
                opt(s.sender_cpu_ms_per_delivery, 3)
            ));
        }
        out
    }
}
