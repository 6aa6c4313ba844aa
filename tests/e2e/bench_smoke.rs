//! The benchmark's smoke run (`synap-bench run --smoke`): every scenario end to end with tiny
//! volumes, and a report that holds what docs/BENCHMARKS.md says it holds. It measures nothing;
//! it proves that `scripts/bench.sh` will work.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Where cargo put the binaries: next to this test binary's `deps/` folder.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(|deps| deps.parent()).expect("target dir").to_path_buf()
}

fn bench() -> Command {
    let path = bin_dir().join("synap-bench");
    assert!(path.exists(), "{} is missing: `cargo build --workspace --bins` first", path.display());
    let mut command = Command::new(path);
    command.arg("run").arg("--bin-dir").arg(bin_dir());
    // A private broker when tansu is installed (scripts/lib.sh puts it on PATH), as
    // scripts/bench.sh runs it; else the shared one.
    match tansu() {
        Some(tansu) => {
            command.arg("--tansu").arg(tansu);
        }
        None => {
            if let Ok(kafka) = std::env::var("SYNAP_TEST_KAFKA") {
                command.args(["--kafka", &kafka]);
            }
        }
    }
    if let Ok(url) = std::env::var("SYNAP_TEST_DATABASE_URL") {
        command.args(["--database-url", &url]);
    }
    command
}

/// The tansu binary on PATH, if any.
fn tansu() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("tansu")).find(|p| p.is_file()))
}

fn number(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("{pointer} missing in {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_run_reports_every_scenario() {
    let out = bin_dir().join("test-logs").join(format!("bench-{}", uuid::Uuid::new_v4().simple()));
    let output = tokio::task::spawn_blocking({
        let out = out.clone();
        move || {
            // A short request timeout lets the sender drain the never-answering endpoints of the
            // isolation scenario quickly at shutdown.
            bench()
                .args(["--smoke", "--service-env", "SYNAP_SENDER__REQUEST_TIMEOUT_MS=1000", "--out"])
                .arg(&out)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "synap-bench failed: {}\nlogs in {}",
        String::from_utf8_lossy(&output.stderr),
        out.display()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| steady |"), "no table on stdout: {stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["profile"]["name"], "smoke");
    assert!(number(&report, "/http_ceiling/requests_per_s") > 0.0);
    assert!(number(&report, "/broker_ceiling/produced_per_s") > 0.0);
    assert!(report["machine"]["cpus"].as_u64().unwrap() >= 1);

    let scenarios = report["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["steady", "latency-100", "fanout-20", "tenants", "backlog", "isolation"]);
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["complete"], true, "{name} did not finish: {s}");
        assert_eq!(s["receiver"]["deliveries"], s["expected_deliveries"], "{name}: {s}");
        assert_eq!(s["published"]["acked"], s["published"]["events"], "{name}: {s}");
        let latency = &s["receiver"]["latency_ms"];
        assert!(
            number(latency, "/p50") > 0.0 && number(latency, "/p50") <= number(latency, "/max"),
            "{name}"
        );
        // Every latency sample falls in one of the three thirds of the measured time.
        let thirds = s["receiver"]["latency_by_third_ms"].as_array().unwrap();
        let in_thirds: u64 = thirds.iter().map(|t| t["count"].as_u64().unwrap()).sum();
        assert_eq!((thirds.len(), in_thirds), (3, latency["count"].as_u64().unwrap()), "{name}");
        let processes: Vec<&str> =
            s["processes"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        for service in ["synap-ingest", "synap-router", "synap-sender", "synap-control", "receiver"] {
            assert!(processes.contains(&service), "{name}: no figures for {service}: {processes:?}");
        }
    }
    // The latency scenario is compared with three hops through a fresh broker at its own rate.
    let floors = report["broker_latency"].as_array().unwrap();
    assert_eq!(floors.len(), 1, "{floors:?}");
    assert_eq!(floors[0]["records_per_s"].as_f64(), Some(100.0));
    let hop_p99 = number(&floors[0], "/hop/hop_latency_ms/p99");
    assert!(hop_p99 > 0.0, "{floors:?}");
    // (serde_json reads floats back to within a unit in the last place, not always exactly.)
    assert!((number(&scenarios[1], "/floor_ms") - 3.0 * hop_p99).abs() < 1e-9, "{}", scenarios[1]);
    assert!(scenarios[0]["floor_ms"].is_null(), "steady is no latency scenario");
    // Each of the 5 fan-out events reached all 20 endpoints; the isolation scenario's failing
    // endpoints were tried, and only the healthy ones count as delivered.
    let fanout = &scenarios[2]["receiver"];
    assert_eq!((fanout["complete_events"].as_u64(), fanout["endpoints"].as_u64()), (Some(5), Some(20)));
    // The backlog scenario's sender held retries from every tier while it delivered the burst.
    let backlog = &scenarios[4];
    assert!(number(backlog, "/retries_held") > 0.0, "{backlog}");
    let isolation = &scenarios[5];
    assert!(isolation["receiver"]["failing_requests"].as_u64().unwrap() > 0, "{isolation}");
    assert!(isolation["fraction_of_steady"].is_number(), "{isolation}");
    // Compared with the same portals in steady: 8 of the 10.
    assert!(number(isolation, "/same_tenants_in_steady_per_s") > 0.0, "{isolation}");
    assert!(isolation["fraction_of_same_tenants_in_steady"].is_number(), "{isolation}");
    let table = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(table.contains("| isolation |"), "{table}");
    assert!(table.contains("latency-100: p99 ") && table.contains("its floor of"), "{table}");
}

#[test]
fn unknown_scenarios_are_refused() {
    let output =
        bench().args(["--smoke", "--scenarios", "nope", "--out"]).arg(std::env::temp_dir()).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown scenario \"nope\""));
}

/// `broker-history` with tiny sizes: one row per history size, each with the trickle's records
/// after its first second read back (about 100; the bounds leave room for a loaded machine).
#[test]
fn broker_history_prints_a_row_per_size() {
    let tansu = tansu().expect("tansu on PATH: scripts/lib.sh installs it");
    let out = bin_dir().join("test-logs").join(format!("history-{}", uuid::Uuid::new_v4().simple()));
    let output = Command::new(bin_dir().join("synap-bench"))
        .args(["broker-history", "--batches", "0,200", "--rate", "100", "--seconds", "2", "--tansu"])
        .arg(tansu)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for size in ["0", "200"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {size} |")))
            .unwrap_or_else(|| panic!("no row for {size}: {stdout}"));
        let records: u64 = row.trim_end_matches(" |").rsplit("| ").next().unwrap().parse().unwrap();
        assert!((50..=150).contains(&records), "about the second second's 100 records read back: {row}");
    }
}
