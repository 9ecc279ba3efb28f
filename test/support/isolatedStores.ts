import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { loadConfig } from '../../src/shared/config';
import { createKnex } from '../../src/shared/db/knex';
import { SessionRepository } from '../../src/shared/store/sessionRepository';
import { createDatabase, dropDatabase } from './pgAdmin';
import { killAllProcesses, runToCompletion } from './processes';
import { claimRedisDb, OWNER_KEY, type RedisClaim } from './redisClaim';

/** A store setting globalSetup made for this run (test/support/globalSetup.ts). */
function runSetting(name: 'DATABASE_URL' | 'REDIS_URL'): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is unset: the tests run through jest's globalSetup (npm test), which points them at their own stores`);
  return value;
}

/**
 * A test file's own PostgreSQL database and Redis DB. The workers' sweeps scan every row of
 * quiz_sessions and the dirty set is one Redis key, so worker tests cannot share either with
 * other files running at the same time (in this jest run or another one on the same servers).
 */
export interface IsolatedStores {
  databaseUrl: string;
  redisUrl: string;
  queuePrefix: string;
  /** A connection to the file's database, for assertions. */
  knex: Knex;
  /** A connection to the file's Redis DB, for assertions. */
  redis: Redis;
  /** The repository over `knex`, for calling the store directly. */
  repo: SessionRepository;
  /** The service settings that point a process at these stores. */
  env: Record<string, string>;
  /** Empties the table and the Redis DB (between tests, with no process running). */
  reset(): Promise<void>;
  /** Drops the database and flushes the Redis DB. */
  destroy(): Promise<void>;
}

/**
 * Claims an empty Redis DB for this file: DB 2 + JEST_WORKER_ID (jest runs one file at a time per
 * worker), or else the first empty one of 15..10. A DB holding anything but the claim is somebody
 * else's and is never taken (nor flushed). The claim is a key with a TTL, refreshed while the file runs.
 */
async function claimTestDb(baseUrl: string, token: string): Promise<RedisClaim> {
  const preferred = 2 + Number(process.env.JEST_WORKER_ID ?? 1);
  // from the top down: low DB numbers are the ones people pick by hand
  const fallbacks = [15, 14, 13, 12, 11, 10].filter((db) => db !== preferred);
  const claim = await claimRedisDb(baseUrl, token, [preferred, ...fallbacks]);
  if (!claim) throw new Error('no free Redis DB for the worker tests (2 + JEST_WORKER_ID and 10..15 are all taken or hold data)');
  return claim;
}

/**
 * Creates `quiz_w_<random>` next to the test database (host and credentials from DATABASE_URL),
 * migrates it with `node dist/src/main.js migrate`, and claims a Redis DB on the REDIS_URL server
 * (see claimRedisDb), flushed now, between tests and on destroy.
 */
export async function createIsolatedStores(): Promise<IsolatedStores> {
  const adminUrl = runSetting('DATABASE_URL');
  const name = `quiz_w_${randomBytes(6).toString('hex')}`;
  const token = `${name}-${process.pid}`;
  const claim = await claimTestDb(runSetting('REDIS_URL'), token);
  const { url: redisUrl, redis } = claim;
  // flushes the DB and keeps the claim, in one step
  const flush = claim.flushDb;
  await flush();

  const databaseUrl = await createDatabase(adminUrl, name);
  const queuePrefix = `wtest-${randomBytes(4).toString('hex')}`;
  const env = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, QUEUE_PREFIX: queuePrefix };

  try {
    await runToCompletion('migrate', env);
  } catch (err) {
    await dropDatabase(adminUrl, name);
    claim.stopRefreshing();
    await redis.del(OWNER_KEY).catch(() => undefined);
    redis.disconnect();
    throw err;
  }
  const knex = createKnex(loadConfig({ DATABASE_URL: databaseUrl }, { DATABASE_POOL_MAX: 5 }));

  return {
    databaseUrl,
    redisUrl,
    queuePrefix,
    knex,
    redis,
    repo: new SessionRepository(knex),
    env,
    async reset() {
      await knex.raw('truncate quiz_sessions, attempt_events');
      await flush();
    },
    async destroy() {
      claim.stopRefreshing();
      await redis.flushdb().catch(() => undefined);
      redis.disconnect();
      await knex.destroy();
      await dropDatabase(adminUrl, name);
    },
  };
}

/**
 * Gives the calling test file its own stores for its whole run: created before its first test,
 * emptied after each test when `resetAfterEach` (with every process of the test killed first),
 * destroyed after its last. Returns a getter for them.
 */
export function useIsolatedStores(options: { resetAfterEach?: boolean } = {}): () => IsolatedStores {
  let stores: IsolatedStores | undefined;
  beforeAll(async () => {
    stores = await createIsolatedStores();
  }, 60_000);
  if (options.resetAfterEach) {
    afterEach(async () => {
      await killAllProcesses();
      await stores?.reset();
    });
  }
  afterAll(async () => {
    await killAllProcesses();
    await stores?.destroy();
  }, 30_000);
  return () => {
    if (!stores) throw new Error('the isolated stores are created in beforeAll: use them inside tests and hooks');
    return stores;
  };
}
