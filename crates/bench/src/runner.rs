//! `synap-bench run`: the receiver, the ceilings, the stack, then each scenario in turn.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use synap_kafka::KafkaConfig;
use tokio::process::Child;

use crate::ceiling;
use crate::procstat::{self, CpuMark, ProcessUsage};
use crate::publisher::Publisher;
use crate::report::{BrokerLatency, Machine, Report, ScenarioResult};
use crate::scenarios::{Layout, Profile, Scenario};
use crate::settings::{DEFAULTS, parse_key_value};
use crate::setup::{NewSubscription, Setup};
use crate::stack::{self, Broker, Stack};
use crate::stats::{TagSummary, now_us};

#[derive(clap::Args)]
pub struct RunArgs {
    /// A run of a few seconds with tiny volumes: checks that the tool and every scenario work.
    #[arg(long)]
    pub smoke: bool,
    /// Only these scenarios (comma-separated names, e.g. `steady,fanout-100`); ceilings are
    /// always measured.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Where the service binaries are; default: next to this binary.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// The broker, when no private one is started (see --tansu).
    #[arg(long, env = "SYNAP_BENCH_KAFKA", default_value = "127.0.0.1:9092")]
    pub kafka: String,
    /// Start a private, empty broker from this tansu binary for every scenario and for the
    /// broker ceiling, instead of using --kafka. A shared in-memory tansu slows down as it fills
    /// with other runs' topics and batches; scripts/bench.sh always passes this.
    #[arg(long)]
    pub tansu: Option<PathBuf>,
    /// A PostgreSQL role allowed to create databases; the run gets a database of its own.
    #[arg(
        long,
        env = "SYNAP_BENCH_DATABASE_URL",
        default_value = "postgres://synap:synap@127.0.0.1:5432/synap"
    )]
    pub database_url: String,
    /// Extra environment for every service, `KEY=VALUE`; repeat. Overrides the bench defaults.
    #[arg(long = "service-env", value_parser = parse_key_value)]
    pub service_env: Vec<(String, String)>,
    /// Folder for report.json, report.md and the service logs.
    #[arg(long, default_value = "target/bench/latest")]
    pub out: PathBuf,
    /// Events of the `steady` burst instead of the profile's (60,000 in full): run it at several
    /// sizes to see that the services' peak memory does not grow with the burst.
    #[arg(long)]
    pub steady_events: Option<u64>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let mut profile = if args.smoke { Profile::smoke() } else { Profile::full() };
    if let Some(events) = args.steady_events {
        profile.steady_events = events.max(1);
    }
    let mut scenarios = profile.scenarios();
    if !args.scenarios.is_empty() {
        // The scaling scenarios run only when named (`scaling` names them all).
        scenarios.extend(profile.scaling_scenarios());
        let scaling = args.scenarios.iter().any(|n| n == "scaling");
        let known: HashSet<String> = scenarios.iter().map(|s| s.name.clone()).collect();
        if let Some(unknown) = args.scenarios.iter().find(|n| *n != "scaling" && !known.contains(*n)) {
            bail!("unknown scenario {unknown:?}; this profile has {known:?} and `scaling`");
        }
        scenarios.retain(|s| args.scenarios.contains(&s.name) || (scaling && s.name.starts_with("scale-")));
    }
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?.parent().context("binary folder")?.to_path_buf(),
    };
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let load_at_start = procstat::load_average();
    let started_at = chrono::Utc::now().to_rfc3339();

    let mut receiver = Receiver::start(&logs).await?;
    progress(&format!("receiver on {}", receiver.base));

    let kafka_for_ceiling = KafkaConfig {
        bootstrap_servers: args.kafka.clone(),
        topic_prefix: format!("benchceiling{}.", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        ..KafkaConfig::default()
    };
    progress("broker ceiling");
    let (records, partitions) = (profile.broker_records, profile.broker_partitions);
    let broker_ceiling =
        on_private_broker(&args, &logs.join("broker-ceiling"), &kafka_for_ceiling, |kafka| async move {
            ceiling::broker(&kafka, records, partitions, None, Duration::ZERO).await
        })
        .await?;
    let warmup = Duration::from_secs_f64(profile.latency_warmup_s);
    let mut broker_latency = Vec::new();
    for rate in floor_rates(&scenarios, &profile) {
        progress(&format!("broker latency at {rate} records/s"));
        let records = (rate * profile.broker_latency_seconds) as u64;
        let logs = logs.join(format!("broker-latency-{rate}"));
        let hop = on_private_broker(&args, &logs, &kafka_for_ceiling, |kafka| async move {
            // A topic of its own when the runs share the --kafka broker.
            let kafka =
                KafkaConfig { topic_prefix: format!("{}latency{rate}.", kafka.topic_prefix), ..kafka };
            ceiling::broker(&kafka, records, 6, Some(rate), warmup).await
        })
        .await?;
        broker_latency.push(BrokerLatency { records_per_s: rate, hop });
    }
    progress("HTTP ceiling");
    let http_ceiling = ceiling::http(
        &receiver.base,
        profile.http_concurrency,
        Duration::from_secs_f64(profile.http_seconds),
    )
    .await?;

    let options = stack::Options {
        bin_dir,
        bootstrap: args.kafka.clone(),
        admin_database_url: args.database_url.clone(),
        service_env: args.service_env.clone(),
        logs: logs.clone(),
    };
    let tansu = args.tansu.clone();
    let mut results: Vec<ScenarioResult> = Vec::new();
    for scenario in &scenarios {
        let outcome = async {
            let Some(tansu) = &tansu else {
                return run_scenario(&options, scenario, &receiver, http_ceiling.requests_per_s).await;
            };
            let broker = Broker::start(tansu, &options.logs.join(&scenario.name)).await?;
            let options = stack::Options { bootstrap: broker.bootstrap.clone(), ..options.clone() };
            let outcome = run_scenario(&options, scenario, &receiver, http_ceiling.requests_per_s).await;
            broker.stop().await;
            outcome
        }
        .await;
        let mut result = match outcome {
            Ok(result) => result,
            Err(e) => {
                receiver.child.kill().await.ok();
                return Err(e.context(format!("scenario {}", scenario.name)));
            }
        };
        if let Some(floor) =
            broker_latency.iter().find(|b| scenario.name == Scenario::latency_name(b.records_per_s))
        {
            result.floor_ms = Some(floor.floor_ms());
        }
        if scenario.name == "isolation"
            && let Some(steady) = results.iter().find(|r| r.name == "steady")
        {
            result.fraction_of_steady =
                ratio(result.receiver.deliveries_per_s, steady.receiver.deliveries_per_s);
            // The same tenants in `steady`, where no neighbour fails: what the failing ones cost
            // the others, apart from the work their events take anyway.
            let shared =
                scenarios.iter().find(|s| s.name == "steady").and_then(|s| scenario.portals_shared_with(s));
            if let Some(portals) = shared {
                let same = receiver.summary_healthy_in_isolation("steady", portals).await?;
                result.same_tenants_in_steady_per_s = same.deliveries_per_s;
                result.fraction_of_same_tenants_in_steady =
                    ratio(result.receiver.deliveries_per_s, same.deliveries_per_s);
            }
        }
        results.push(result);
    }
    receiver.child.kill().await.ok();

    let mut service_settings: Vec<(String, String)> =
        DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    service_settings.extend(args.service_env.iter().cloned());
    Ok(Report {
        tool: concat!("synap-bench ", env!("CARGO_PKG_VERSION")).into(),
        started_at,
        machine: machine(load_at_start),
        profile,
        broker: match &args.tansu {
            Some(tansu) => format!("private tansu ({}), one per scenario", tansu.display()),
            None => args.kafka.clone(),
        },
        service_settings,
        http_ceiling: Some(http_ceiling),
        broker_ceiling: Some(broker_ceiling),
        broker_latency,
        scenarios: results,
    })
}

/// The rates to measure the broker's one-hop latency at: each latency scenario's that runs, or
/// the profile's first when none does (every report gives the broker's latency).
fn floor_rates(scenarios: &[Scenario], profile: &Profile) -> Vec<f64> {
    let rates: Vec<f64> = profile.latency_runs.iter().map(|(rate, _)| *rate).collect();
    let running: Vec<f64> = rates
        .iter()
        .copied()
        .filter(|rate| scenarios.iter().any(|s| s.name == Scenario::latency_name(*rate)))
        .collect();
    if running.is_empty() { rates.into_iter().take(1).collect() } else { running }
}

/// Runs `measure` against a private, empty broker when --tansu is given (stopped afterwards),
/// otherwise against the --kafka broker.
async fn on_private_broker<F, Fut, T>(
    args: &RunArgs,
    logs: &Path,
    kafka: &KafkaConfig,
    measure: F,
) -> anyhow::Result<T>
where
    F: FnOnce(KafkaConfig) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let private = match &args.tansu {
        Some(tansu) => Some(Broker::start(tansu, logs).await?),
        None => None,
    };
    let kafka = KafkaConfig {
        bootstrap_servers: private
            .as_ref()
            .map(|b| b.bootstrap.clone())
            .unwrap_or(kafka.bootstrap_servers.clone()),
        ..kafka.clone()
    };
    let result = measure(kafka).await;
    if let Some(private) = private {
        private.stop().await;
    }
    result
}

/// One scenario on services of its own: fresh topics and database, so that no scenario reads
/// through another's history (the local broker's fetch cost grows with a partition's batches,
/// see docs/BENCHMARKS.md) or inherits its backlog.
async fn run_scenario(
    options: &stack::Options,
    scenario: &Scenario,
    receiver: &Receiver,
    http_ceiling: f64,
) -> anyhow::Result<ScenarioResult> {
    progress(&format!("{}: starting the services", scenario.name));
    let logs = options.logs.join(&scenario.name);
    let stack = Stack::start(&stack::Options { logs, ..options.clone() }).await?;
    let kafka_port = options.bootstrap.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(9092);
    let publisher = Publisher::new(&KafkaConfig {
        bootstrap_servers: options.bootstrap.clone(),
        topic_prefix: stack.topic_prefix.clone(),
        ..KafkaConfig::default()
    });
    let setup = Setup::connect(&stack.control_addr, &stack.admin_token, &receiver.base).await;
    let mut bench = match (publisher, setup) {
        (Ok(publisher), Ok(setup)) => {
            Bench { stack, publisher, setup, kafka_port, http_ceiling, http: reqwest::Client::new() }
        }
        (Err(e), _) | (_, Err(e)) => {
            stack.stop().await;
            return Err(e);
        }
    };
    // Whatever happens to the scenario, the services stop and the database goes.
    let result = bench.run(scenario, receiver).await;
    bench.stack.stop().await;
    let result = result?;
    progress(&format!(
        "{}: {}/{} delivered, {:.0} deliveries/s, p99 {:.1} ms",
        scenario.name,
        result.receiver.deliveries,
        result.expected_deliveries,
        result.receiver.deliveries_per_s.unwrap_or(0.0),
        result.receiver.latency_ms.p99
    ));
    Ok(result)
}

fn progress(what: &str) {
    eprintln!("[{}] {what}", chrono::Utc::now().format("%H:%M:%S"));
}

/// The receiver process.
struct Receiver {
    child: Child,
    pid: u32,
    base: String,
    http: reqwest::Client,
}

impl Receiver {
    async fn start(logs: &Path) -> anyhow::Result<Self> {
        let address_file = logs.join("receiver.address");
        let _ = std::fs::remove_file(&address_file);
        let log = std::fs::File::create(logs.join("receiver.log"))?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["receiver", "--address-file"])
            .arg(&address_file)
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("receiver pid")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let address = loop {
            if let Ok(address) = std::fs::read_to_string(&address_file) {
                break address;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the receiver did not start within 10 s; see {}", logs.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ok(Self { child, pid, base: format!("http://{address}"), http: reqwest::Client::new() })
    }

    async fn count(&self, tag: &str) -> anyhow::Result<u64> {
        let text =
            self.http.get(format!("{}/count", self.base)).query(&[("tag", tag)]).send().await?.text().await?;
        Ok(text.trim().parse()?)
    }

    async fn summary(&self, tag: &str, expect: u64, since_us: u64) -> anyhow::Result<TagSummary> {
        self.stats(&[
            ("tag", tag.to_owned()),
            ("expect", expect.to_string()),
            ("since_us", since_us.to_string()),
        ])
        .await
    }

    /// `tag`'s figures over the events of the portals that answer 2xx in an `isolation` layout
    /// of `portals` portals.
    async fn summary_healthy_in_isolation(&self, tag: &str, portals: u64) -> anyhow::Result<TagSummary> {
        self.stats(&[("tag", tag.to_owned()), ("healthy_in_isolation_of", portals.to_string())]).await
    }

    async fn stats(&self, query: &[(&str, String)]) -> anyhow::Result<TagSummary> {
        Ok(self
            .http
            .get(format!("{}/stats", self.base))
            .query(query)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

struct Bench {
    stack: Stack,
    publisher: Publisher,
    setup: Setup,
    kafka_port: u16,
    http_ceiling: f64,
    /// For the sender's `/metrics`.
    http: reqwest::Client,
}

impl Bench {
    async fn run(&mut self, scenario: &Scenario, receiver: &Receiver) -> anyhow::Result<ScenarioResult> {
        self.prepare(&scenario.layout).await?;
        // Consumers joining their groups, caches filling: paid here, not by the measurement.
        self.warm_up(scenario, receiver).await?;
        self.settle().await?;
        let held =
            if scenario.tier_backlog > 0 { Some(self.fill_retry_tiers(scenario).await?) } else { None };
        progress(&format!("{}: {}", scenario.name, scenario.what));
        let result = self.measure(scenario, receiver).await?;
        Ok(ScenarioResult { retries_held: held, ..result })
    }

    async fn prepare(&mut self, layout: &Layout) -> anyhow::Result<()> {
        let portals = layout.portals();
        let subscriptions: Vec<NewSubscription> = match layout {
            Layout::OnePerPortal { prefix, .. } => portals
                .iter()
                .enumerate()
                .map(|(i, portal)| NewSubscription {
                    portal: portal.clone(),
                    behaviour: layout.behaviour(i as u64),
                    path: format!("{prefix}/{i}"),
                    types: synap_contract::EventType::ALL.to_vec(),
                })
                .collect(),
            Layout::FanOut { prefix, endpoints, .. } => portals
                .iter()
                .enumerate()
                .flat_map(|(i, portal)| {
                    (0..*endpoints).map(move |j| NewSubscription {
                        portal: portal.clone(),
                        behaviour: crate::stats::Behaviour::Ok,
                        path: format!("{prefix}/{i}-{j}"),
                        types: vec![synap_contract::EventType::AttemptCompleted],
                    })
                })
                .collect(),
            Layout::Tenants { prefix, per_portal, .. } => portals
                .iter()
                .enumerate()
                .flat_map(|(i, portal)| {
                    (0..*per_portal).map(move |j| NewSubscription {
                        portal: portal.clone(),
                        behaviour: crate::stats::Behaviour::Ok,
                        path: format!("{prefix}/{i}-{j}"),
                        types: vec![synap_contract::EventType::ALL[j as usize]],
                    })
                })
                .collect(),
        };
        progress(&format!("creating {} portals and {} subscriptions", portals.len(), subscriptions.len()));
        self.setup.portals(&portals).await?;
        self.setup.subscriptions(subscriptions).await?;
        Ok(())
    }

    /// Sends every portal of the layout a few events and waits for them.
    async fn warm_up(&mut self, scenario: &Scenario, receiver: &Receiver) -> anyhow::Result<()> {
        let tag = format!("warmup-{}", scenario.name);
        let events = (scenario.layout.portals().len() as u64 * 2).clamp(20, 2_000);
        let expected: u64 = (0..events).map(|seq| scenario.layout.healthy_endpoints(seq)).sum();
        let layout = scenario.layout.clone();
        self.publisher.publish(&tag, events, None, |seq| layout.route(seq)).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while receiver.count(&tag).await? < expected {
            self.stack.check_alive()?;
            if tokio::time::Instant::now() > deadline {
                bail!("warm-up of {}: not every event arrived within 60 s", scenario.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Waits until the sender has stored the warm-up's attempt-log rows (its backlog is 0 two
    /// polls running, 10 s at most: in `isolation` failing endpoints keep adding rows): the
    /// warm-up's deliveries have all arrived, but thousands of rows may still be on their way to
    /// PostgreSQL, and the first measured events would share the machine with them
    /// (`fanout-1000`'s first event was 100–300 ms late in some runs).
    async fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut quiet = 0;
        while quiet < 2 {
            self.stack.check_alive()?;
            if tokio::time::Instant::now() > deadline {
                progress("the sender's attempt-log backlog did not empty within 10 s; measuring anyway");
                break;
            }
            let backlog = self.sender_metric("synap_attempt_log_backlog").await?;
            quiet = if backlog == 0.0 { quiet + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Fills every retry tier (`backlog`) and waits until the sender holds what it will of
    /// them: its `synap_retries_pending` unchanged for two seconds, 60 s at most. By then its
    /// tier consumers have read ahead as far as they go. Returns the retries held; none is an
    /// error, since the scenario would then measure nothing of what it is for.
    async fn fill_retry_tiers(&mut self, scenario: &Scenario) -> anyhow::Result<f64> {
        let tiers = self.publisher.fill_retry_tiers(scenario.tier_backlog).await?;
        progress(&format!(
            "{}: {} deliveries written to each of {} retry tiers",
            scenario.name,
            scenario.tier_backlog,
            tiers.len()
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let (mut held, mut unchanged) = (0.0, 0);
        while unchanged < 4 && tokio::time::Instant::now() < deadline {
            self.stack.check_alive()?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.sender_metric("synap_retries_pending").await?;
            unchanged = if now == held && now > 0.0 { unchanged + 1 } else { 0 };
            held = now;
        }
        anyhow::ensure!(
            held > 0.0,
            "the sender holds none of the retries written to its tiers (synap_retries_pending)"
        );
        progress(&format!("{}: the sender holds {held} retries until due", scenario.name));
        Ok(held)
    }

    /// The sum of a metric's samples on the sender's `/metrics`; 0 when it has none (an older
    /// sender) or no telemetry address.
    async fn sender_metric(&self, name: &str) -> anyhow::Result<f64> {
        let Some(addr) = self.stack.telemetry_addr("synap-sender") else { return Ok(0.0) };
        let text =
            self.http.get(format!("http://{addr}/metrics")).send().await?.error_for_status()?.text().await?;
        Ok(metric_sum(&text, name))
    }

    async fn measure(&mut self, scenario: &Scenario, receiver: &Receiver) -> anyhow::Result<ScenarioResult> {
        let mut watched: Vec<(String, Vec<u32>, bool)> =
            self.stack.pids().into_iter().map(|(name, pid)| (name, vec![pid], true)).collect();
        watched.push(("receiver".into(), vec![receiver.pid], true));
        if let Some(pid) = procstat::listener_pid(self.kafka_port) {
            watched.push(("broker".into(), vec![pid], false));
        }
        watched.push(("postgres".into(), procstat::pids_named("postgres"), false));
        // The publisher and the progress polling share the cores with the system under test.
        watched.push(("synap-bench".into(), vec![std::process::id()], false));
        for (_, pids, own) in &watched {
            if *own {
                pids.iter().for_each(|p| {
                    procstat::reset_peak(*p);
                });
            }
        }
        let marks: Vec<CpuMark> = watched.iter().map(|(_, pids, _)| CpuMark::take(pids)).collect();

        let started = tokio::time::Instant::now();
        let started_us = now_us();
        let expected = scenario.expected_deliveries();
        let layout = scenario.layout.clone();
        let published = tokio::time::timeout(
            scenario.deadline,
            self.publisher.publish(&scenario.name, scenario.events, scenario.rate, |seq| layout.route(seq)),
        )
        .await
        .context("publishing did not finish before the deadline")??;
        let mut complete = false;
        while started.elapsed() < scenario.deadline {
            if receiver.count(&scenario.name).await? >= expected {
                complete = true;
                break;
            }
            self.stack.check_alive()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let usage: Vec<ProcessUsage> = watched
            .iter()
            .zip(&marks)
            .map(|((name, pids, own), mark)| ProcessUsage {
                name: name.clone(),
                cpu_s: mark.elapsed(),
                peak_rss_mib: if *own { pids.first().and_then(|p| procstat::peak_rss_mib(*p)) } else { None },
            })
            .collect();
        let since_us = started_us + scenario.latency_warmup.as_micros() as u64;
        let summary = receiver.summary(&scenario.name, scenario.endpoints_per_event(), since_us).await?;
        let seconds = if complete {
            summary.last_arrival_us.saturating_sub(started_us) as f64 / 1e6
        } else {
            started.elapsed().as_secs_f64()
        };
        let cpu = |name: &str| usage.iter().find(|u| u.name == name).map(|u| u.cpu_s);
        Ok(ScenarioResult {
            name: scenario.name.clone(),
            what: scenario.what.clone(),
            expected_deliveries: expected,
            complete,
            seconds,
            fraction_of_http_ceiling: ratio(summary.deliveries_per_s, Some(self.http_ceiling)),
            fraction_of_steady: None,
            same_tenants_in_steady_per_s: None,
            fraction_of_same_tenants_in_steady: None,
            floor_ms: None,
            retries_held: None,
            router_cpu_ms_per_event: cpu("synap-router").map(|s| s * 1000.0 / published.events.max(1) as f64),
            sender_cpu_ms_per_delivery: cpu("synap-sender")
                .map(|s| s * 1000.0 / summary.deliveries.max(1) as f64),
            published,
            receiver: summary,
            processes: usage,
        })
    }
}

/// The sum of every sample of `name` in a Prometheus text exposition (`name value` or
/// `name{labels} value`); unparsable values count as 0.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(name))
        .filter(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        .filter_map(|rest| rest.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum()
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b.filter(|b| *b > 0.0)?)
}

fn machine(load_at_start: String) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mem_kib: f64 = field(&meminfo, "MemTotal").trim_end_matches(" kB").parse().unwrap_or(0.0);
    let git = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output();
    Machine {
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        cpu_model: field(&cpuinfo, "model name"),
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        load_at_start,
        load_at_end: procstat::load_average(),
        git_commit: git
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Profile, floor_rates, metric_sum};

    #[test]
    fn floors_are_measured_at_the_rates_of_the_latency_scenarios_that_run() {
        let p = Profile::full();
        let all = p.scenarios();
        assert_eq!(floor_rates(&all, &p), [500.0, 1000.0]);
        // fanout-1000 publishes at a fixed rate too, but has no floor.
        let some: Vec<_> = all
            .iter()
            .filter(|s| ["latency-1000", "fanout-1000"].contains(&s.name.as_str()))
            .cloned()
            .collect();
        assert_eq!(floor_rates(&some, &p), [1000.0]);
        let none: Vec<_> = all.iter().filter(|s| s.name == "steady").cloned().collect();
        assert_eq!(floor_rates(&none, &p), [500.0]);
    }

    #[test]
    fn a_metric_sums_its_samples_and_only_its_own() {
        let text = "# HELP synap_retries_pending Retries waiting.\n\
                    # TYPE synap_retries_pending gauge\n\
                    synap_retries_pending{tier=\"5s\"} 12\n\
                    synap_retries_pending{tier=\"5m\"} 1000\n\
                    synap_retries_pending_total 7\n\
                    synap_attempt_log_backlog 3\n\
                    synap_attempt_log_backlog_broken x\n";
        assert_eq!(metric_sum(text, "synap_retries_pending"), 1012.0);
        assert_eq!(metric_sum(text, "synap_attempt_log_backlog"), 3.0);
        assert_eq!(metric_sum(text, "synap_missing"), 0.0);
        assert_eq!(metric_sum("synap_attempt_log_backlog not-a-number\n", "synap_attempt_log_backlog"), 0.0);
    }
}
