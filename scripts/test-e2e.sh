#!/usr/bin/env bash
# The browser tests (test/e2e): the pages in Debian's Chromium (/usr/bin/chromium, installed with
# apt-get when missing; playwright-core drives it and never downloads a browser), against the
# service run as real processes. Same set-up as scripts/test.sh (dependencies, Redis and
# PostgreSQL, a build), then jest with jest.e2e.config.js. Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/services.sh --tests --browser
npm run --silent build
# the stores: a Redis this run starts for itself (or TEST_REDIS_URL), PostgreSQL's
# quiz_sessions_test (or TEST_DATABASE_URL); never the service's REDIS_URL / DATABASE_URL
# (test/support/globalSetup.ts)
unset REDIS_URL DATABASE_URL
exec npx jest -c jest.e2e.config.js --runInBand "$@"
