#!/usr/bin/env bash
# The full test suite from a fresh clone: npm dependencies, Redis and PostgreSQL (installed and
# started when REDIS_URL / DATABASE_URL are not given), a build (worker tests run real processes),
# then jest. Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/services.sh
npm run --silent build
export DATABASE_URL="${DATABASE_URL:-postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions_test}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
exec npx jest "$@"
