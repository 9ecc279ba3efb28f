import { SessionRepository } from '../../src/shared/store/sessionRepository';
import { SessionStore, sessionKey } from '../../src/shared/store/sessionStore';
import { countKeys, meanMemoryUsage, sleep, usedMemory, type BenchContext } from '../context';
import { formatSpread, interleavedRuns, roundSpread, rpsRatioSpread, type Arm, type MeasuredRun, type Spread } from '../measure';
import type { Target } from '../load';
import { round } from '../stats';
import { seededAttempt } from '../workload';
import { seedBaseline } from './http';
import { baselineKey } from '../baseline';
import { mapConcurrent } from '../../test/support/http';

/** The scale phase's results. */
export interface ScaleResult {
  /** Attempts seeded directly (PostgreSQL rows + Redis hashes through SessionStore.fill). */
  seeded: number;
  seedSeconds: number;
  /** used_memory delta per seeded attempt (hash with 20 answers, clean: no job, no dirty entry). */
  bytesPerAttempt: number;
  /** MEMORY USAGE of one attempt hash, averaged over a sample. */
  hashMemoryUsageBytes: number;
  /** session:* keys in Redis at each measurement (earlier phases' attempts included). */
  small: ScaleRun;
  large: ScaleRun;
  /** p99 with the large set over p99 with the small set. */
  p99Ratio: number;
  /**
   * The same ratio over the baseline's ratio (baseline GET over as many hashes, run just before):
   * what is left once the machine's drift between the two measurements is taken out.
   */
  p99RatioOverBaseline: number;
  /** Service GET 2xx/s with the large set over with the small set, and the same over the baseline's. */
  rpsRatio: number;
  rpsRatioOverBaseline: number;
  /** rpsRatioOverBaseline round by round (each round's four slices): lowest and highest. */
  rpsRatioOverBaselineBySlice: Spread;
  /**
   * With every attempt seeded, the service's GET in turns (interleaved slices, one measurement)
   * over the first `small.openAttempts` of them and over all: the same process, keyspace and
   * moment, so what is left is what reading over more attempts costs (Redis's caches, the
   * API's), with no drift between two measurements minutes apart to take out.
   */
  sameRun: { hot: MeasuredRun; all: MeasuredRun; rpsRatio: number; rpsRatioBySlice: Spread; p99Ratio: number };
}

/** A GET run with `openAttempts` seeded attempts (reads spread over them), and the baseline's beside it. */
export interface ScaleRun {
  openAttempts: number;
  sessionKeys: number;
  run: MeasuredRun;
  baseline: MeasuredRun;
}

/**
 * Seeds attempts with 20 answers straight into PostgreSQL (multi-row upsert, the repository's
 * own) and Redis (SessionStore.fill, the API's own cache fill) — the state the API leaves after
 * start + one write, minus the jobs — and the bare baseline's JSON texts for as many, then
 * measures GET with the base count of attempts in the service's Redis DB and with the full count,
 * reads spread uniformly over them, the service and the baseline alike.
 *
 * The two sizes take turns in one interleaved measurement (baseline and service at each size, the
 * slices alternating, as every compared run of the bench), so a drift of the machine falls on both
 * sizes alike: measured one after the other, minutes apart, the baseline's own throughput moved by
 * 7–12 % between them on this machine, more than the effect being measured. For the small size the
 * attempts beyond the base count (the service's hashes and the baseline's texts) are set aside in
 * a spare Redis DB of the same server (MOVE, outside the measured slices) and brought back for the
 * large one: the service's and the baseline's keyspaces hold 10,000 or 100,000 of them (Redis's
 * memory holds all of them both times).
 */
export async function scalePhase(ctx: BenchContext): Promise<ScaleResult> {
  const o = ctx.options;
  const store = new SessionStore(ctx.stores.redis, 1800);
  const repo = new SessionRepository(ctx.knex);
  const ids: string[] = [];
  let seedSeconds = 0;
  const seed = async (count: number) => {
    const started = Date.now();
    const now = Date.now();
    for (let start = 0; start < count; start += 1000) {
      const first = ids.length; // one user per attempt: the one-open-attempt-per-user-and-quiz rule holds
      const batch = Array.from({ length: Math.min(1000, count - start) }, (_, i) => seededAttempt(`bench-scale-${first + i}`, now));
      for (let j = 0; j < batch.length; j += 500) await repo.upsertSnapshots(batch.slice(j, j + 500));
      await mapConcurrent(batch.length, 100, (i) => store.fill(batch[i]));
      ids.push(...batch.map((a) => a.id));
    }
    seedSeconds += (Date.now() - started) / 1000;
  };

  const memBefore = await usedMemory(ctx);
  await seed(o.scaleBaseAttempts);
  await sleep(200);
  const memBase = await usedMemory(ctx);
  ctx.log(`scale: seeded ${ids.length} attempts (${round((memBase - memBefore) / ids.length, 0)} B each)`);
  await seed(o.scaleAttempts - o.scaleBaseAttempts);
  await sleep(200);
  const memAll = await usedMemory(ctx);
  await seedBaseline(ctx, ids.length, false);
  ctx.log(
    `scale: seeded ${ids.length} attempts in ${seedSeconds.toFixed(1)} s (${round((memAll - memBefore) / ids.length, 0)} B each); ` +
      `GET at ${o.connections[0]} connections, ${o.scaleBaseAttempts} and ${ids.length} attempts in turns`,
  );

  const base = o.scaleBaseAttempts;
  const extras = ids.slice(base).flatMap((id, i) => [sessionKey(id), baselineKey(base + i)]);
  const spare = await ctx.stores.spareDb();
  const mainDb = Number(new URL(ctx.stores.redisUrl).pathname.slice(1));
  const held = { size: 'large' as 'small' | 'large' };
  const sessionKeys: Record<'small' | 'large', number> = { small: NaN, large: NaN };
  /** Sets the attempts beyond the base count aside (small) or brings them back (large). */
  const resize = async (to: 'small' | 'large') => {
    if (held.size === to) return;
    const [from, db] = to === 'small' ? [ctx.stores.redis, spare.db] : [spare.redis, mainDb];
    let moved = 0;
    for (let i = 0; i < extras.length; i += 2000) {
      const pipeline = from.pipeline();
      for (const key of extras.slice(i, i + 2000)) pipeline.move(key, db);
      for (const [err, n] of (await pipeline.exec()) ?? []) if (!err && n === 1) moved++;
    }
    if (moved !== extras.length) throw new Error(`scale: moved ${moved} of ${extras.length} keys to DB ${db}`);
    held.size = to;
    // Redis resizes the keyspace's table after such a change and rehashes it step by step (on
    // every command, and 1 ms per 100 ms of its cron): done before the slice starts
    await sleep(1000);
    if (Number.isNaN(sessionKeys[to])) sessionKeys[to] = await countKeys(ctx, 'session:*');
  };
  const sets = {
    small: { ids: ids.slice(0, base), versions: ids.slice(0, base).map(() => 2) },
    large: { ids, versions: ids.map(() => 2) },
  };
  const arm = (target: Target, at: 'small' | 'large'): Arm => ({
    target,
    profile: 'get',
    connections: o.connections[0],
    set: sets[at],
    before: () => resize(at),
  });
  let runs: MeasuredRun[];
  try {
    runs = await interleavedRuns(
      ctx,
      [arm('baseline', 'small'), arm('service', 'small'), arm('baseline', 'large'), arm('service', 'large')],
      o.duration,
      o.slices,
    );
    await resize('large');
  } finally {
    if (held.size === 'small') await resize('large').catch((err) => ctx.log(`scale: bringing the keys back failed: ${String(err)}`));
    await spare.release();
  }
  const [smallBase, smallRun, largeBase, largeRun] = runs;
  const small: ScaleRun = { openAttempts: base, sessionKeys: sessionKeys.small, run: smallRun, baseline: smallBase };
  const large: ScaleRun = { openAttempts: ids.length, sessionKeys: sessionKeys.large, run: largeRun, baseline: largeBase };

  const hotCount = o.scaleBaseAttempts;
  const [hot, all] = await interleavedRuns(
    ctx,
    [
      { target: 'service', profile: 'get', connections: o.connections[0], set: sets.small },
      { target: 'service', profile: 'get', connections: o.connections[0], set: sets.large },
    ],
    o.duration,
    o.slices,
  );
  const sameRunBySlice = rpsRatioSpread(all, hot);
  ctx.log(
    `scale: GET in turns over ${hotCount} and over ${ids.length} attempts: ${hot.rps}/s p99 ${hot.latency.p99} ms vs ${all.rps}/s p99 ${all.latency.p99} ms ` +
      `(api ${hot.cost.appMicros} / ${all.cost.appMicros} µs, redis ${hot.cost.redisMicros} / ${all.cost.redisMicros} µs); ` +
      `rps ratio by slice ${formatSpread(sameRunBySlice)}`,
  );
  // round by round: (service large / small) over (baseline large / small), each from that round's slices
  const overBaselineBySlice = roundSpread(
    Math.min(...[small.run, large.run, small.baseline, large.baseline].map((r) => r.slices.length)),
    (i) => large.run.slices[i].rps / small.run.slices[i].rps / (large.baseline.slices[i].rps / small.baseline.slices[i].rps),
  );

  const sample = ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / 50)) === 0).slice(0, 50);
  const p99Ratio = round(large.run.latency.p99 / small.run.latency.p99, 3);
  return {
    seeded: ids.length,
    seedSeconds: round(seedSeconds, 1),
    bytesPerAttempt: round((memAll - memBefore) / ids.length, 0),
    hashMemoryUsageBytes: await meanMemoryUsage(
      ctx,
      sample.map((id) => sessionKey(id)),
    ),
    small,
    large,
    p99Ratio,
    p99RatioOverBaseline: round(p99Ratio / (large.baseline.latency.p99 / small.baseline.latency.p99), 3),
    rpsRatio: round(large.run.rps / small.run.rps, 3),
    rpsRatioOverBaseline: round(large.run.rps / small.run.rps / (large.baseline.rps / small.baseline.rps), 3),
    rpsRatioOverBaselineBySlice: overBaselineBySlice,
    sameRun: {
      hot,
      all,
      rpsRatio: round(all.rps / hot.rps, 3),
      rpsRatioBySlice: sameRunBySlice,
      p99Ratio: round(all.latency.p99 / hot.latency.p99, 3),
    },
  };
}
