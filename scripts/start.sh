#!/usr/bin/env bash
# Starts the whole service from a fresh clone: npm dependencies, Redis and PostgreSQL (installed
# and started unless REDIS_URL / DATABASE_URL are given), a build, the migrations, then the API and
# each worker role as its own process (as the Procfile runs them). Ctrl-C (or SIGTERM) stops them
# all gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/services.sh
npm run --silent build
node dist/src/main.js migrate

# a larger young generation: under load the API's in-flight requests otherwise survive scavenges
# and are promoted, and garbage collection becomes its largest cost (docs/BENCHMARKS.md)
export NODE_OPTIONS="--max-semi-space-size=64 ${NODE_OPTIONS:-}"

pids=()
stop() {
  trap - INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM

node dist/src/main.js api & pids+=($!)
METRICS_PORT="${PERSIST_METRICS_PORT:-9465}" node dist/src/main.js persist-worker & pids+=($!)
METRICS_PORT="${LIFECYCLE_METRICS_PORT:-9466}" node dist/src/main.js lifecycle-worker & pids+=($!)
METRICS_PORT="${WEBHOOK_METRICS_PORT:-9467}" node dist/src/main.js webhook-worker & pids+=($!)

# if any process dies, stop the others and fail
set +e
wait -n "${pids[@]}"
status=$?
stop
exit "$status"
