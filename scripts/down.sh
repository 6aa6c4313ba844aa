#!/usr/bin/env bash
# Stops the services that scripts/up.sh started; with no argument, the local broker too.
# PostgreSQL is the machine's own and keeps running.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

names=(synap-ingest synap-router synap-sender synap-control receiver)
[ "${1:-}" = --services-only ] || names+=(tansu)
for name in "${names[@]}"; do
  pidfile="$STATE/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name"
  fi
  rm -f "$pidfile"
done
