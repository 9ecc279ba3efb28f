import type { Redis } from 'ioredis';
import { createDatabase, dropDatabase } from '../test/support/pgAdmin';
import { claimRedisDb, OWNER_KEY, withPath } from '../test/support/redisClaim';

const DEFAULT_DATABASE_URL = 'postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** The bench's own Redis DB and PostgreSQL database, on the servers DATABASE_URL / REDIS_URL name. */
export interface BenchStores {
  redisUrl: string;
  databaseUrl: string;
  /** A connection to the bench's Redis DB (INFO, DBSIZE, seeding, the dirty set). */
  redis: Redis;
  /** Flushes the Redis DB and drops the database (unless kept). */
  destroy(keep: boolean): Promise<void>;
  /**
   * Claims a second, empty Redis DB on the same server (the first free of 5..15), where a phase
   * sets keys aside (MOVE) and brings them back; `release` flushes it and gives it up.
   */
  spareDb(): Promise<{ db: number; redis: Redis; release(): Promise<void> }>;
}

/**
 * Claims Redis DB `db` (or, when a test run or another bench holds it, the first empty DB of
 * 5..15), flushes it,
 * and creates `database` afresh as the role in DATABASE_URL (quiz has CREATEDB).
 */
export async function createBenchStores(db: number, database: string, log: (m: string) => void): Promise<BenchStores> {
  const adminUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  const redisBase = process.env.REDIS_URL || DEFAULT_REDIS_URL;
  const token = `bench-${process.pid}-${Date.now()}`;
  const claim = await claimRedisDb(
    redisBase,
    token,
    [db, ...Array.from({ length: 11 }, (_, i) => 5 + i).filter((d) => d !== db)],
    // the preferred DB is flushed whatever it holds; a fallback must be empty
    { flushFirst: true, lazyConnect: true },
  );
  if (!claim) throw new Error(`no free Redis DB on ${redisBase} (DB ${db} and 5..15 are held by tests or another bench)`);
  const { url: redisUrl, redis } = claim;
  if (redisUrl !== withPath(redisBase, `/${db}`)) log(`Redis DB ${db} is held by a test run; using ${redisUrl}`);
  await claim.flushDb();

  const { url: databaseUrl } = await createBenchDatabase(database);
  const mainDb = Number(new URL(redisUrl).pathname.slice(1));

  return {
    redisUrl,
    databaseUrl,
    redis,
    async destroy(keep) {
      claim.stopRefreshing();
      if (!keep) {
        await redis.flushdb().catch(() => undefined);
        await dropDatabase(adminUrl, database).catch((err) => log(`dropping ${database} failed: ${String(err)}`));
      } else await redis.del(OWNER_KEY).catch(() => undefined);
      redis.disconnect();
    },
    async spareDb() {
      const candidates = Array.from({ length: 11 }, (_, i) => 5 + i).filter((d) => d !== mainDb);
      const spare = await claimRedisDb(redisBase, `${token}-spare`, candidates, { lazyConnect: true });
      if (!spare) throw new Error(`no free Redis DB on ${redisBase} to set keys aside in (5..15 are held)`);
      return {
        db: Number(new URL(spare.url).pathname.slice(1)),
        redis: spare.redis,
        async release() {
          spare.stopRefreshing();
          await spare.redis.flushdb().catch(() => undefined);
          spare.redis.disconnect();
        },
      };
    },
  };
}

/** Creates `database` afresh as the role in DATABASE_URL (quiz has CREATEDB); `drop` removes it. */
export async function createBenchDatabase(database: string): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  await dropDatabase(adminUrl, database);
  return { url: await createDatabase(adminUrl, database), drop: () => dropDatabase(adminUrl, database) };
}
