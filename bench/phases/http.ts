import { jobIds, QUEUES } from '../../src/shared/queues/jobs';
import { encodeAttempt } from '../../src/shared/store/sessionCodec';
import { sessionKey } from '../../src/shared/store/sessionStore';
import { BASELINE_DIRTY_KEY, baselineKey } from '../baseline';
import { meanMemoryUsage, sleep, usedMemory, waitForDrain, type BenchContext } from '../context';
import { runLoad, type AttemptSet, type RunResult } from '../load';
import type { Profile } from '../options';
import { round } from '../stats';
import { applyPolicies, POLICY_QUIZ, prefillAnswers, seededAttempt, startAttempts } from '../workload';
import { JsonClient } from '../../test/support/http';
import { sampleCpu } from '../cpu';

/**
 * Sets every attempt's version to what Redis holds. A run ends with requests in flight whose
 * answers autocannon drops: a write among them applied, but the harness never saw its version,
 * and the next run's first write of that attempt would be a 409 of the harness's own making.
 */
async function syncVersions(ctx: BenchContext, set: AttemptSet): Promise<void> {
  const pipeline = ctx.stores.redis.pipeline();
  for (const id of set.ids) pipeline.hget(sessionKey(id), 'version');
  const replies = (await pipeline.exec()) ?? [];
  replies.forEach(([err, v], i) => {
    if (!err && v !== null) set.versions[i] = Number(v);
  });
}

/** One profile at one connection count: the baseline run, the service run, and their ratio. */
export interface HttpComparison {
  profile: Profile;
  connections: number;
  baseline: RunResult;
  service: RunResult;
  /** Service 2xx/s over baseline 2xx/s. */
  ratio: number;
  /**
   * CPU time of the app process per 2xx response (µs): the baseline's and the service's, and
   * baseline/service. Steadier than throughput on a shared machine, where the load generator and
   * other work take cores from both alike.
   */
  cpuMicrosPerRequest: { baseline: number; service: number; ratio: number };
}

/** Redis memory of attempts made through the API, per attempt, at each step of their setup. */
export interface ApiMemory {
  attempts: number;
  /** Started, no answers: the hash, its dirty-free state and its expiry job. */
  startedBytesPerAttempt: number;
  /** After one write of 20 answers: plus the dirty-set entry and a delayed persist job. */
  dirtyBytesPerAttempt: number;
  /** After the write-behind wrote them: hash with 20 answers + expiry job (+ retained finished jobs). */
  cleanBytesPerAttempt: number;
  /** MEMORY USAGE of one attempt's hash (20 answers) and of one delayed expire-session job hash, averaged over a sample. */
  hashBytes: number;
  expiryJobHashBytes: number;
  /** Entries in the queues' event streams (BullMQ keeps up to 10,000 each). */
  queueEventEntries: number;
}

/** The HTTP phase's results. */
export interface HttpPhaseResult {
  attempts: number;
  createSeconds: number;
  createPerSecond: number;
  memory: ApiMemory;
  runs: HttpComparison[];
}

/** Writes baseline hashes [from, count), shaped like the service's attempts with 20 answers. */
export async function seedBaseline(ctx: BenchContext, count: number, from = 0): Promise<void> {
  const now = Date.now();
  for (let start = from; start < count; start += 1000) {
    const pipeline = ctx.stores.redis.pipeline();
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      pipeline.hset(baselineKey(i), ...encodeAttempt(seededAttempt(`bench-base-${i}`, now), null));
      pipeline.expire(baselineKey(i), 3600);
    }
    await pipeline.exec();
  }
  await ctx.stores.redis.del(BASELINE_DIRTY_KEY);
}

/**
 * Creates N attempts through the API and gives each its 20 answers, then measures GET, versioned
 * writes and the 80/20 mix against the baseline at each connection count, baseline and service
 * run back to back so drift on the shared machine hits both alike.
 */
export async function httpPhase(ctx: BenchContext): Promise<HttpPhaseResult> {
  const o = ctx.options;
  await seedBaseline(ctx, o.attempts);

  const client = new JsonClient(ctx.apiUrl, 64);
  const memBefore = await usedMemory(ctx);
  if (o.policy) {
    await applyPolicies(client, o.policy, 'bench-http', o.attempts);
    ctx.log(`policies in use: ${POLICY_QUIZ} overdue_handling ${o.policy}, an accommodation per user`);
  }
  const createStarted = Date.now();
  const created = await startAttempts(client, o.attempts, 64, 'bench-http', undefined, o.policy ? POLICY_QUIZ : undefined);
  const createSeconds = (Date.now() - createStarted) / 1000;
  const memStarted = await usedMemory(ctx);
  ctx.log(`created ${o.attempts} attempts in ${createSeconds.toFixed(1)} s; writing 20 answers to each`);
  const set: AttemptSet = { ids: created.ids, versions: created.versions };
  await prefillAnswers(client, set.ids, set.versions, 64);
  const memDirty = await usedMemory(ctx);
  client.close();

  if (o.warmup > 0) {
    ctx.log(`warming up (${o.warmup} s per app and profile)`);
    for (const profile of ['get', 'write'] as Profile[]) {
      await runLoad(ctx.baselineUrl, 'baseline', profile, o.connections[0], o.warmup, set);
      await syncVersions(ctx, set);
      await runLoad(ctx.apiUrl, 'service', profile, o.connections[0], o.warmup, set);
    }
  }
  // measure on a settled service: the prefill's write-behind (N persists) lands PERSIST_DELAY later
  const drain = await waitForDrain(ctx, (o.persistDelay + 30) * 1000);
  ctx.log(`write-behind of the setup drained in ${drain.seconds.toFixed(1)} s (${drain.left} left)`);
  await sleep(500);
  const memClean = await usedMemory(ctx);
  const perAttempt = (bytes: number) => round((bytes - memBefore) / o.attempts, 0);
  const sample = set.ids.filter((_, i) => i % Math.max(1, Math.floor(set.ids.length / 50)) === 0).slice(0, 50);
  const hashBytes = await meanMemoryUsage(
    ctx,
    sample.map((id) => sessionKey(id)),
  );
  const deadlines = await Promise.all(sample.map((id) => ctx.stores.redis.hget(sessionKey(id), 'expires_at')));
  const expiryJobHashBytes = await meanMemoryUsage(
    ctx,
    sample.map((id, i) => `bull:${QUEUES.lifecycle}:${jobIds.expire(id, Number(deadlines[i]))}`),
  );
  const queueEventEntries = (await Promise.all(Object.values(QUEUES).map((q) => ctx.stores.redis.xlen(`bull:${q}:events`)))).reduce(
    (a, b) => a + b,
    0,
  );

  const runs: HttpComparison[] = [];
  for (const connections of o.connections) {
    for (const profile of o.profiles) {
      const measure = async (target: 'baseline' | 'service') => {
        if (target === 'service') await syncVersions(ctx, set);
        const cpu = sampleCpu(ctx.cpuTargets);
        const result = await runLoad(target === 'service' ? ctx.apiUrl : ctx.baselineUrl, target, profile, connections, o.duration, set);
        result.cpu = cpu();
        return result;
      };
      const baseline = await measure('baseline');
      const service = await measure('service');
      const ratio = round(service.rps / baseline.rps, 3);
      const perRequest = (r: RunResult, proc: string) => round(((r.cpu?.[proc] ?? NaN) * 1e6) / r.rps, 0);
      const cpuMicros = { baseline: perRequest(baseline, 'baseline'), service: perRequest(service, 'api') };
      runs.push({
        profile,
        connections,
        baseline,
        service,
        ratio,
        cpuMicrosPerRequest: { ...cpuMicros, ratio: round(cpuMicros.baseline / cpuMicros.service, 3) },
      });
      ctx.log(
        `${profile.padEnd(5)} c=${String(connections).padEnd(4)} baseline ${baseline.rps}/s p99 ${baseline.latency.p99} ms | ` +
          `service ${service.rps}/s p99 ${service.latency.p99} ms | ratio ${ratio}`,
      );
    }
  }
  return {
    attempts: o.attempts,
    createSeconds: round(createSeconds, 2),
    createPerSecond: round(o.attempts / createSeconds, 0),
    memory: {
      attempts: o.attempts,
      startedBytesPerAttempt: perAttempt(memStarted),
      dirtyBytesPerAttempt: perAttempt(memDirty),
      cleanBytesPerAttempt: perAttempt(memClean),
      hashBytes,
      expiryJobHashBytes,
      queueEventEntries,
    },
    runs,
  };
}
