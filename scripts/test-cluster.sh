#!/usr/bin/env bash
# The store, API and worker tests against a local Redis Cluster (3 masters, one replica each, from
# Debian's redis-server: scripts/cluster.sh), in the bucketed key layout, and PostgreSQL with
# hash-partitioned tables (PG_PARTITIONS=4, in its own database quiz_sessions_test_parts unless
# TEST_PARTITIONED_DATABASE_URL names another), so npm test covers plain tables and this run partitioned ones. Starts the cluster, runs jest.cluster.config.js, stops the cluster. Extra arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/services.sh --tests
NODES=$(bash scripts/cluster.sh start | sed -n 's/^REDIS_CLUSTER_NODES=//p')
trap 'bash scripts/cluster.sh stop' EXIT
npm run --silent build
unset REDIS_URL DATABASE_URL REDIS_CLUSTER_NODES
export PG_PARTITIONS=${PG_PARTITIONS:-4}
export TEST_DATABASE_URL=${TEST_PARTITIONED_DATABASE_URL:-postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions_test_parts}
TEST_REDIS_CLUSTER_NODES=$NODES npx jest -c jest.cluster.config.js "$@"
