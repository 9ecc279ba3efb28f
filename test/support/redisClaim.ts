import { Redis } from 'ioredis';

/*
 * A Redis DB claimed for one user of it (a worker test file, a bench run): a key with a TTL that
 * its holder refreshes, so two runs on the same server never take (and flush) the same DB.
 */

/** The key that marks a Redis DB as taken (by a test file of any jest run, or a bench). */
export const OWNER_KEY = 'worker-tests:owner';
export const OWNER_TTL_MS = 60_000;

/** `url` with its path (database name or Redis DB number) replaced. */
export function withPath(url: string, pathname: string): string {
  const u = new URL(url);
  u.pathname = pathname;
  return u.toString();
}

/** A claimed DB: its URL, a connection to it, and the claim kept (flushDb keeps it too). */
export interface RedisClaim {
  url: string;
  redis: Redis;
  /** Flushes the DB and keeps the claim, in one step. */
  flushDb(): Promise<unknown>;
  /** Stops refreshing the claim (the key expires OWNER_TTL_MS later unless deleted). */
  stopRefreshing(): void;
}

/**
 * Claims the first DB of `candidates` on the server of `baseUrl` that no one holds (the claim key
 * expires OWNER_TTL_MS after its holder stops refreshing it: one that exists is live) and that
 * holds nothing else, except `candidates[0]` when `flushFirst` (it is flushed whatever it holds).
 * Returns null when every candidate is taken.
 */
export async function claimRedisDb(
  baseUrl: string,
  token: string,
  candidates: readonly number[],
  options: { flushFirst?: boolean; lazyConnect?: boolean } = {},
): Promise<RedisClaim | null> {
  for (const db of candidates) {
    const url = withPath(baseUrl, `/${db}`);
    const redis = new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: options.lazyConnect });
    try {
      if (options.lazyConnect) await redis.connect();
      const taken = (await redis.set(OWNER_KEY, token, 'PX', OWNER_TTL_MS, 'NX')) === 'OK';
      if (taken && ((options.flushFirst && db === candidates[0]) || (await redis.dbsize()) === 1)) {
        const keep = setInterval(() => void redis.set(OWNER_KEY, token, 'PX', OWNER_TTL_MS).catch(() => undefined), OWNER_TTL_MS / 4);
        keep.unref();
        return {
          url,
          redis,
          flushDb: () => redis.multi().flushdb().set(OWNER_KEY, token, 'PX', OWNER_TTL_MS).exec(),
          stopRefreshing: () => clearInterval(keep),
        };
      }
      if (taken) await redis.del(OWNER_KEY);
    } catch {
      // no such DB on this server: try the next
    }
    redis.disconnect();
  }
  return null;
}
