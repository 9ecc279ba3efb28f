#!/usr/bin/env bash
# The full test suite from a fresh clone: npm dependencies, redis-server and PostgreSQL (installed
# when missing; PostgreSQL started), a build (worker tests run real processes), then jest, which
# starts a Redis of its own for the run. Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/services.sh --tests
npm run --silent build
# the stores: a Redis this run starts for itself (or TEST_REDIS_URL), PostgreSQL's
# quiz_sessions_test (or TEST_DATABASE_URL); never the service's REDIS_URL / DATABASE_URL
# (test/support/globalSetup.ts)
unset REDIS_URL DATABASE_URL
exec npx jest "$@"
