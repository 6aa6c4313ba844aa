#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, and the end-to-end suite against the real
# broker and PostgreSQL, which it installs and starts when they are missing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_infra
ensure_grpcurl
ensure_browser

if [ "${CI:-}" = true ]; then
  # Tests drop their own databases; only an interrupted run leaves one behind.
  say "dropping databases left by interrupted test runs"
  as_root su postgres -c "psql -qtAc \"SELECT datname FROM pg_database WHERE datname LIKE 'synap\_t%'\"" |
    while read -r db; do as_root su postgres -c "psql -qc 'DROP DATABASE \"$db\" WITH (FORCE)'" >/dev/null; done
fi

say "checking format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

say "checking the Helm chart"
"$ROOT/scripts/check-helm.sh"

say "building"
cargo build --workspace --bins --tests --locked

say "running the tests"
export SYNAP_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
export SYNAP_TEST_DATABASE_URL="postgres://synap:synap@127.0.0.1:5432/synap"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
