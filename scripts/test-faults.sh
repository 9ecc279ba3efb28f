#!/usr/bin/env bash
# The fault tests (test/faults): the service as real processes under load while Redis, PostgreSQL
# or the processes themselves are broken. Same set-up as scripts/test.sh (dependencies, Redis and
# PostgreSQL, a build), then jest with jest.faults.config.js, one file at a time. Extra arguments
# go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/services.sh
npm run --silent build
export DATABASE_URL="${DATABASE_URL:-postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions_test}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
exec npx jest -c jest.faults.config.js --runInBand "$@"
