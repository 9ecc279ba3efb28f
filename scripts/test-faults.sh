#!/usr/bin/env bash
# The fault tests (test/faults): the service as real processes under load while Redis, PostgreSQL
# or the processes themselves are broken. Same set-up as scripts/test.sh (dependencies, Redis and
# PostgreSQL, a build), then jest with jest.faults.config.js, one file at a time. Extra arguments
# go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/services.sh --tests
npm run --silent build
# the stores: a Redis this run starts for itself (or TEST_REDIS_URL), PostgreSQL's
# quiz_sessions_test (or TEST_DATABASE_URL); never the service's REDIS_URL / DATABASE_URL
# (test/support/globalSetup.ts)
unset REDIS_URL DATABASE_URL
exec npx jest -c jest.faults.config.js --runInBand "$@"
