import { SessionRepository } from '../../src/shared/store/sessionRepository';
import { SessionStore, sessionKey } from '../../src/shared/store/sessionStore';
import { countKeys, meanMemoryUsage, sleep, usedMemory, type BenchContext } from '../context';
import { interleavedRuns, type Arm, type MeasuredRun } from '../measure';
import type { Target } from '../load';
import { round } from '../stats';
import { seededAttempt } from '../workload';
import { seedBaseline } from './http';
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
 * start + one write, minus the jobs — then measures API GET p99 with the base count and again
 * with the full count, reads spread uniformly over the seeded attempts.
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
  const getRun = async (): Promise<ScaleRun> => {
    await seedBaseline(ctx, ids.length, false);
    const set = { ids, versions: ids.map(() => 2) };
    const arm = (target: Target): Arm => ({ target, profile: 'get', connections: o.connections[0], set });
    const [baseline, run] = await interleavedRuns(ctx, [arm('baseline'), arm('service')], o.duration, o.slices);
    return { openAttempts: ids.length, sessionKeys: await countKeys(ctx, 'session:*'), run, baseline };
  };

  const memBefore = await usedMemory(ctx);
  await seed(o.scaleBaseAttempts);
  await sleep(200);
  const memBase = await usedMemory(ctx);
  ctx.log(
    `scale: seeded ${ids.length} attempts (${round((memBase - memBefore) / ids.length, 0)} B each); GET at ${o.connections[0]} connections`,
  );
  const small = await getRun();
  await seed(o.scaleAttempts - o.scaleBaseAttempts);
  await sleep(200);
  const memAll = await usedMemory(ctx);
  ctx.log(
    `scale: seeded ${ids.length} attempts in ${seedSeconds.toFixed(1)} s (${round((memAll - memBefore) / ids.length, 0)} B each); GET again`,
  );
  const large = await getRun();

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
  };
}
