import { loadConfig } from '../../src/shared/config';
import { createKnex, migrateLatest, partitionMismatch } from '../../src/shared/db/knex';
import { redisServerAvailable, startRedisServer, type RedisServer } from './redisServer';

/** The PostgreSQL database the tests use unless TEST_DATABASE_URL names another. */
export const DEFAULT_TEST_DATABASE_URL = 'postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions_test';

/** The private Redis of this jest run, kept on globalThis for globalTeardown (same process). */
export const runRedis = globalThis as typeof globalThis & { quizTestRedis?: RedisServer };

/**
 * Before any test file: points the run at its stores and migrates the test database.
 *
 * Redis: the tests flush the Redis DBs they claim and scan every `session:*` key, so they never use
 * a Redis they did not start. Each jest run starts its own redis-server on a free port (no
 * persistence; gone with the run) unless TEST_REDIS_URL names a server kept for tests only. The
 * REDIS_URL of the caller's shell, which may be the service's own Redis, is ignored.
 *
 * PostgreSQL: TEST_DATABASE_URL, or the quiz_sessions_test database; the caller's DATABASE_URL is
 * ignored for the same reason. Tests add and remove only rows of their own users there, and the
 * worker tests make databases of their own next to it.
 *
 * Jest starts its workers after this runs, so they inherit both settings.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_REDIS_CLUSTER_NODES) {
    // npm run test:cluster: the local Redis Cluster (scripts/cluster.sh), in the bucketed layout
    process.env.REDIS_CLUSTER_NODES = process.env.TEST_REDIS_CLUSTER_NODES;
    process.env.REDIS_KEY_LAYOUT = 'bucketed';
    delete process.env.REDIS_URL;
  } else if (process.env.TEST_REDIS_URL) {
    process.env.REDIS_URL = process.env.TEST_REDIS_URL;
  } else {
    if (!redisServerAvailable()) {
      throw new Error(
        'the tests start a redis-server of their own and none is installed: run `npm test` (it installs one) or set TEST_REDIS_URL',
      );
    }
    // the same hash encoding threshold as production (scripts/services.sh), so memory figures match
    runRedis.quizTestRedis = await startRedisServer({ args: ['--hash-max-listpack-value', '4096', '--maxmemory-policy', 'noeviction'] });
    process.env.REDIS_URL = runRedis.quizTestRedis.url;
  }
  process.env.DATABASE_URL = process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;

  const config = loadConfig(process.env);
  const knex = createKnex(config);
  try {
    await migrateLatest(knex);
    // a run with PG_PARTITIONS tests partitioned tables, or fails here
    const mismatch = await partitionMismatch(knex, config);
    if (mismatch) throw new Error(`${process.env.DATABASE_URL}: ${mismatch}`);
  } finally {
    await knex.destroy();
  }
}
