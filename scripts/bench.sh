#!/usr/bin/env bash
# The benchmark of docs/BENCHMARKS.md, in one command: builds in release, starts the broker and
# PostgreSQL when they are not running, then runs every scenario against the real services (each
# scenario on a private, empty tansu broker and a database of its own) and
# prints the table. report.json, report.md and the service logs land in target/bench/<time>/.
#
#   scripts/bench.sh                        # every scenario, full size (about 10 minutes)
#   scripts/bench.sh --smoke                # a few seconds: checks that the tool works
#   scripts/bench.sh --scenarios steady,latency-500
#   scripts/bench.sh --service-env SYNAP_SENDER__MAX_IN_FLIGHT=4096   # try a setting
#
# Run it on a quiet machine: every figure is bounded by the two cores it shares with whatever
# else runs (the report records the load average at start and end).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_infra

say "building the services and the benchmark in release"
cargo build --release --locked \
  -p synap-ingest -p synap-router -p synap-sender -p synap-control -p synap-admin -p synap-bench

out="target/bench/$(date -u +%Y%m%dT%H%M%SZ)"
say "running the benchmark (results in $out)"
"$ROOT/target/release/synap-bench" run \
  --bin-dir "$ROOT/target/release" \
  --tansu "$(command -v tansu)" \
  --out "$out" "$@"
