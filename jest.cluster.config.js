/**
 * Jest for `npm run test:cluster`: the store, API and worker tests against the local 3-master Redis
 * Cluster with replicas (scripts/cluster.sh; globalSetup points the run at it through
 * TEST_REDIS_CLUSTER_NODES), in the bucketed key layout, one file at a time (the cluster is shared
 * by the whole run; the workers' sweeps visit all of it).
 */
const base = require('./jest.config');

/** The tests that run on the cluster: every one that needs no Redis of its own to stop, flush or SELECT. */
const CLUSTER_TESTS = [
  'api.smoke',
  'auth.matrix',
  'cluster.workers',
  'errors.contract',
  'events',
  'idempotency',
  'keys.slots',
  'listings',
  'quiz.policy',
  'sessions.close',
  'sessions.concurrency',
  'sessions.controls',
  'sessions.progress',
  'sessions.read',
  'sessions.resume',
  'sessions.start',
  'streams',
  'streams.shards',
];

module.exports = {
  ...base,
  testMatch: CLUSTER_TESTS.map((name) => `<rootDir>/test/${name}.test.ts`),
  maxWorkers: 1,
};
