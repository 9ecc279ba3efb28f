#!/usr/bin/env bash
# Makes Redis and PostgreSQL available for the service and its tests, idempotently.
#   - REDIS_URL / DATABASE_URL given: those servers are used as they are (only checked).
#   - otherwise: installs redis-server / postgresql from Debian's packages when missing, starts a
#     local Redis (AOF everysec, noeviction) on 127.0.0.1:6379 and the Debian PostgreSQL cluster on
#     127.0.0.1:5432, and creates the role `quiz` with the databases `quiz_sessions` and
#     `quiz_sessions_test`.
#   - with --tests: what the test suite needs. redis-server, prometheus (promtool) and
#     prometheus-alertmanager (amtool) installed, none started (each jest
#     run starts a Redis of its own: test/support/globalSetup.ts), PostgreSQL as above unless
#     TEST_DATABASE_URL is given; REDIS_URL / DATABASE_URL, the service's settings, are ignored.
#   - with --browser too: Debian's Chromium (/usr/bin/chromium) for the browser tests (npm run
#     test:e2e drives it with playwright-core; no browser is ever downloaded by npm).
set -euo pipefail
FOR_TESTS=0
WITH_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --tests) FOR_TESTS=1 ;;
    --browser) WITH_BROWSER=1 ;;
    *) printf '[services] unknown option %s\n' "$arg" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA="$ROOT/.data"
mkdir -p "$DATA"

log() { printf '[services] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to install $*: install it (sudo apt-get install -y $*) or set REDIS_URL / DATABASE_URL"
    exit 1
  fi
  if [ $apt_updated = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    log "using REDIS_URL"
    return
  fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    return
  fi
  mkdir -p "$DATA/redis"
  log "starting redis-server on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes \
    --dir "$DATA/redis" --logfile "$DATA/redis/redis.log" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --hash-max-listpack-value 4096 \
    --save ''
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "redis-server did not start; see $DATA/redis/redis.log"
  exit 1
}

psql_admin() { su postgres -c "psql -X -q -v ON_ERROR_STOP=1 -p 5432 $*"; }

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL"
    return
  fi
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local ver
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
    log "creating PostgreSQL $ver cluster"
    pg_createcluster "$ver" main --port 5432 >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -q online; then
    log "starting PostgreSQL $ver"
    pg_ctlcluster "$ver" main start
  fi
  for _ in $(seq 1 100); do
    su postgres -c "pg_isready -q -p 5432" && break
    sleep 0.1
  done
  if ! psql_admin "-tAc \"select 1 from pg_roles where rolname='quiz'\"" | grep -q 1; then
    psql_admin "-c \"create role quiz login password 'quiz' createdb\""
  fi
  for db in quiz_sessions quiz_sessions_test quiz_sessions_test_parts; do
    if ! psql_admin "-tAc \"select 1 from pg_database where datname='$db'\"" | grep -q 1; then
      psql_admin "-c \"create database $db owner quiz\""
    fi
  done
}

if [ $FOR_TESTS = 1 ]; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  # promtool and amtool check the alert rules and the Alertmanager config; the monitoring test runs
  # Debian's Prometheus against the service (test/alerts.test.ts, test/prometheus.dashboard.test.ts)
  command -v promtool >/dev/null 2>&1 || apt_install --no-install-recommends prometheus
  command -v amtool >/dev/null 2>&1 || apt_install --no-install-recommends prometheus-alertmanager
  if [ -n "${TEST_DATABASE_URL:-}" ]; then DATABASE_URL=$TEST_DATABASE_URL; else unset DATABASE_URL; fi
  ensure_postgres
else
  ensure_redis
  ensure_postgres
fi
if [ $WITH_BROWSER = 1 ]; then
  [ -x /usr/bin/chromium ] || apt_install chromium
fi
log "ready"
