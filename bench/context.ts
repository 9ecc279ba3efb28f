import type { Knex } from 'knex';
import { SessionStore } from '../src/shared/store/sessionStore';
import type { BenchOptions } from './options';
import type { BenchStores } from './stores';
import type { BenchProcess } from '../test/support/processes';
import type { CpuTargets } from './cpu';

/** What every phase works with: the options, the stores, the running processes and their URLs. */
export interface BenchContext {
  options: BenchOptions;
  stores: BenchStores;
  /** The bench database, for the write-behind and expiry figures and for seeding. */
  knex: Knex;
  apiUrl: string;
  baselineUrl: string;
  /** The workers' /metrics URLs (persist-worker, lifecycle-worker). */
  workerMetricsUrls: string[];
  processes: BenchProcess[];
  /** The pids whose CPU use each run records. */
  cpuTargets: CpuTargets;
  log(message: string): void;
}

/** Redis `used_memory` in bytes (INFO memory). */
export async function usedMemory(ctx: BenchContext): Promise<number> {
  const info = await ctx.stores.redis.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (!m) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

/** The Redis server's pid (INFO server), for the CPU figures. */
export async function redisPid(ctx: Pick<BenchContext, 'stores'>): Promise<number> {
  const info = await ctx.stores.redis.info('server');
  return Number(/^process_id:(\d+)/m.exec(info)?.[1] ?? NaN);
}

/** How many attempts have changes not yet in PostgreSQL. */
export async function dirtyCount(ctx: BenchContext): Promise<number> {
  return new SessionStore(ctx.stores.redis, 60).dirtyCount();
}

/**
 * Waits until the write-behind has written every dirty attempt (the dirty set is empty), at most
 * `timeoutMs`; returns how long it took, and how many were still dirty (0 when it drained).
 */
export async function waitForDrain(ctx: BenchContext, timeoutMs: number): Promise<{ seconds: number; left: number }> {
  const started = Date.now();
  let left = await dirtyCount(ctx);
  while (left > 0 && Date.now() - started < timeoutMs) {
    await sleep(250);
    left = await dirtyCount(ctx);
  }
  return { seconds: (Date.now() - started) / 1000, left };
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts the keys matching `pattern` (SCAN, so Redis is never blocked). */
export async function countKeys(ctx: BenchContext, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await ctx.stores.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

/** MEMORY USAGE of these keys, averaged over those that exist (NaN when none does). */
export async function meanMemoryUsage(ctx: BenchContext, keys: string[]): Promise<number> {
  const usages = (await Promise.all(keys.map((k) => ctx.stores.redis.memory('USAGE', k)))).filter(
    (u): u is number => typeof u === 'number',
  );
  return usages.length ? Math.round(usages.reduce((a, b) => a + b, 0) / usages.length) : NaN;
}
