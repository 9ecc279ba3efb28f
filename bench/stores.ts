import { Redis } from 'ioredis';
import { createDatabase, dropDatabase } from '../test/support/pgAdmin';

const DEFAULT_DATABASE_URL = 'postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * The key the worker tests use to claim a Redis DB (test/support/isolatedStores.ts): holding it
 * keeps a concurrent test run from taking (and flushing) the DB the bench is using.
 */
const OWNER_KEY = 'worker-tests:owner';
const OWNER_TTL_MS = 60_000;

/** `url` with its path (database name or Redis DB number) replaced. */
export function withPath(url: string, pathname: string): string {
  const u = new URL(url);
  u.pathname = pathname;
  return u.toString();
}

/** The bench's own Redis DB and PostgreSQL database, on the servers DATABASE_URL / REDIS_URL name. */
export interface BenchStores {
  redisUrl: string;
  databaseUrl: string;
  /** A connection to the bench's Redis DB (INFO, DBSIZE, seeding, the dirty set). */
  redis: Redis;
  /** Flushes the Redis DB and drops the database (unless kept). */
  destroy(keep: boolean): Promise<void>;
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
  let claimed: { url: string; redis: Redis } | null = null;
  for (const candidate of [db, ...Array.from({ length: 11 }, (_, i) => 5 + i).filter((d) => d !== db)]) {
    const url = withPath(redisBase, `/${candidate}`);
    const redis = new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: true });
    try {
      await redis.connect();
      // the claim key expires 60 s after its holder stops refreshing it: one that exists is live
      const taken = (await redis.set(OWNER_KEY, token, 'PX', OWNER_TTL_MS, 'NX')) === 'OK';
      // the preferred DB is flushed whatever it holds; a fallback must be empty
      if (taken && (candidate === db || (await redis.dbsize()) === 1)) {
        claimed = { url, redis };
        break;
      }
      if (taken) await redis.del(OWNER_KEY);
    } catch {
      // no such DB on this server: try the next
    }
    redis.disconnect();
  }
  if (!claimed) throw new Error(`no free Redis DB on ${redisBase} (DB ${db} and 5..15 are held by tests or another bench)`);
  const { url: redisUrl, redis } = claimed;
  if (redisUrl !== withPath(redisBase, `/${db}`)) log(`Redis DB ${db} is held by a test run; using ${redisUrl}`);
  await redis.multi().flushdb().set(OWNER_KEY, token, 'PX', OWNER_TTL_MS).exec();
  const keepClaim = setInterval(() => void redis.set(OWNER_KEY, token, 'PX', OWNER_TTL_MS).catch(() => undefined), OWNER_TTL_MS / 4);
  keepClaim.unref();

  const { url: databaseUrl } = await createBenchDatabase(database);

  return {
    redisUrl,
    databaseUrl,
    redis,
    async destroy(keep) {
      clearInterval(keepClaim);
      if (!keep) {
        await redis.flushdb().catch(() => undefined);
        await dropDatabase(adminUrl, database).catch((err) => log(`dropping ${database} failed: ${String(err)}`));
      } else await redis.del(OWNER_KEY).catch(() => undefined);
      redis.disconnect();
    },
  };
}

/** Creates `database` afresh as the role in DATABASE_URL (quiz has CREATEDB); `drop` removes it. */
export async function createBenchDatabase(database: string): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  await dropDatabase(adminUrl, database);
  return { url: await createDatabase(adminUrl, database), drop: () => dropDatabase(adminUrl, database) };
}
