#!/usr/bin/env bash
# Brings the whole system up locally and runs its main job: starts PostgreSQL and the broker
# (installing them when missing), builds, migrates, provisions topics, starts the four services
# and a demo receiver, then sends one event of each of the 13 types to a demo subscription and
# shows them arriving. The services keep running; `scripts/down.sh` stops them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_infra

say "building"
cargo build --workspace --bins --locked
BIN="$ROOT/target/debug"

ENV_FILE="$STATE/synap.env"
if [ ! -f "$ENV_FILE" ]; then
  say "writing $ENV_FILE (fresh encryption key and admin token)"
  # Secrets in the local database were sealed with the previous key and can never be opened
  # again: start the local database afresh rather than fail on every delivery.
  "$ROOT/scripts/down.sh" --services-only
  as_root su postgres -c "psql -qc 'DROP DATABASE IF EXISTS synap WITH (FORCE)'" >/dev/null
  ensure_postgres
  key=$(head -c 32 /dev/urandom | base64)
  token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  cat >"$ENV_FILE" <<ENV
# Local stack settings; every service reads SYNAP_<SECTION>__<KEY> (see deploy/synap.example.toml).
export SYNAP_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
export SYNAP_DATABASE__URL=postgres://synap:synap@127.0.0.1:5432/synap
export SYNAP_ENCRYPTION__KEY=$key
export SYNAP_CONTROL__ADMIN_TOKEN=$token
export SYNAP_CONTROL__LISTEN_ADDR=127.0.0.1:50051
# Local receivers speak plain HTTP; production deployments leave this off.
export SYNAP_CONTROL__ALLOW_HTTP_URLS=true
# The local control API listens on loopback only, without TLS; production serves TLS.
export SYNAP_CONTROL__ALLOW_PLAINTEXT=true
# Local receivers listen on loopback, which the outbound policy refuses by default.
export SYNAP_OUTBOUND__ALLOW_CIDRS='["127.0.0.0/8"]'
# The web portal on loopback (browsers keep its Secure cookie from http://127.0.0.1).
export SYNAP_PORTAL__PUBLIC_URL=http://127.0.0.1:8080
export SYNAP_PORTAL__LISTEN_ADDR=127.0.0.1:8080
# For synapctl:
export SYNAP_ENDPOINT=http://127.0.0.1:50051
export SYNAP_TOKEN=$token
export PATH="$BIN:\$PATH"
ENV
fi
# shellcheck disable=SC1090
source "$ENV_FILE"
# Env files written before the outbound policy existed lack the loopback allowlist.
if ! grep -q SYNAP_OUTBOUND__ALLOW_CIDRS "$ENV_FILE"; then
  echo "export SYNAP_OUTBOUND__ALLOW_CIDRS='[\"127.0.0.0/8\"]'" >>"$ENV_FILE"
  # shellcheck disable=SC1090
  source "$ENV_FILE"
fi

# Env files written before control served TLS lack the local plaintext switch.
if ! grep -q SYNAP_CONTROL__ALLOW_PLAINTEXT "$ENV_FILE"; then
  echo "export SYNAP_CONTROL__ALLOW_PLAINTEXT=true" >>"$ENV_FILE"
  # shellcheck disable=SC1090
  source "$ENV_FILE"
fi

# Env files written before the web portal existed lack its address.
if ! grep -q SYNAP_PORTAL__PUBLIC_URL "$ENV_FILE"; then
  printf '%s\n' "export SYNAP_PORTAL__PUBLIC_URL=http://127.0.0.1:8080" \
    "export SYNAP_PORTAL__LISTEN_ADDR=127.0.0.1:8080" >>"$ENV_FILE"
  # shellcheck disable=SC1090
  source "$ENV_FILE"
fi

"$ROOT/scripts/down.sh" --services-only

say "migrating the database and provisioning topics"
"$BIN/synap-admin" migrate
"$BIN/synap-admin" topics

start() { # name command…
  local name=$1
  shift
  nohup "$@" >"$LOGS/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}
say "starting ingest, router, sender, control and a demo receiver (logs in .local/logs)"
# Each service serves /metrics, /healthz and /readyz on its own port (9090 in a pod).
start synap-ingest env SYNAP_TELEMETRY__LISTEN_ADDR=127.0.0.1:9191 "$BIN/synap-ingest"
start synap-router env SYNAP_TELEMETRY__LISTEN_ADDR=127.0.0.1:9192 "$BIN/synap-router"
start synap-sender env SYNAP_TELEMETRY__LISTEN_ADDR=127.0.0.1:9193 "$BIN/synap-sender"
start synap-control env SYNAP_TELEMETRY__LISTEN_ADDR=127.0.0.1:9194 "$BIN/synap-control"
start receiver "$BIN/synap-admin" receive --listen 127.0.0.1:9999
wait_port 50051 30 synap-control
wait_port 8080 10 "the web portal"
wait_port 9999 10 receiver

say "demo: a Pro portal with the store feature, subscribed to all 13 event types"
"$BIN/synapctl" portal upsert demo --plan pro --feature store
if ! "$BIN/synapctl" --json subscription list --portal demo | grep -q '127.0.0.1:9999/webhooks'; then
  types=()
  for t in attempt.submitted attempt.completed attemptOverride.created exam.submitted exam.completed \
    user.registered user.updated user.addedToGroup user.registeredForExam assignment.completed \
    flag.planted store.purchase invite.sent; do types+=(--type "$t"); done
  "$BIN/synapctl" subscription create --portal demo --url http://127.0.0.1:9999/webhooks \
    --basic-auth demo:demo-password --description "local demo" "${types[@]}"
fi
"$BIN/synapctl" subscription list --portal demo

before=$(grep -c 'webhook-id=' "$LOGS/receiver.log" || true)
say "publishing one sample event of each type to the inbound topic"
"$BIN/synap-admin" publish --portal demo
for _ in $(seq 1 300); do
  now=$(grep -c 'webhook-id=' "$LOGS/receiver.log" || true)
  [ "$((now - before))" -ge 13 ] && break
  sleep 0.1
done
now=$(grep -c 'webhook-id=' "$LOGS/receiver.log" || true)
say "the demo receiver got $((now - before)) of 13 deliveries:"
grep 'webhook-id=' "$LOGS/receiver.log" | tail -n "$((now - before))"
[ "$((now - before))" -ge 13 ] || { echo "deliveries missing: see $LOGS" >&2; exit 1; }

link=$("$BIN/synapctl" portal-link --portal demo 2>/dev/null)
cat <<TXT

The demo portal's web page (a sign-in link: it works once, for 5 minutes;
\`synapctl portal-link --portal demo\` makes another):
  $link

The stack is up. Try it yourself:
  source .local/synap.env
  synapctl subscription create --portal demo --url http://127.0.0.1:9999/mine --type user.registered
  synap-admin publish --portal demo --type user.registered
  tail -f .local/logs/receiver.log
Stop it with scripts/down.sh.
TXT
