import { QUEUES } from '../../src/shared/queues/jobs';
import { encodeAttempt } from '../../src/shared/store/sessionCodec';
import { sessionKey } from '../../src/shared/store/sessionStore';
import http from 'node:http';
import { attemptJson } from '../../src/shared/domain/attempt';
import { BASELINE_DIRTY_KEY, baselineKey, heavyBaselineKey } from '../baseline';
import { meanMemoryUsage, sleep, usedMemory, waitForDrain, type BenchContext } from '../context';
import { runLoad, type AttemptSet, type LoadOptions, type Target } from '../load';
import { commandSummary, formatSpread, interleavedRuns, rpsRatioSpread, type Arm, type MeasuredRun, type Spread } from '../measure';
import type { Profile } from '../options';
import { round } from '../stats';
import { applyPolicies, POLICY_QUIZ, prefillAnswers, seededAttempt, startAttempts } from '../workload';
import { JsonClient } from '../../test/support/http';

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

/** One profile at one connection count: the baseline run, the service run, and their ratios. */
export interface HttpComparison {
  profile: Profile;
  connections: number;
  /** The bare baseline (bench/baseline.ts: one GET, or one small merge script). */
  baseline: MeasuredRun;
  service: MeasuredRun;
  /** The heavy baseline of earlier runs (HGETALL, the service's own progress script), with --heavy-baseline. */
  heavy: MeasuredRun | null;
  /** Service 2xx/s over baseline 2xx/s. */
  ratio: number;
  /** The same ratio slice by slice (each round's service slice over its baseline slice): lowest and highest. */
  ratioBySlice: Spread;
  /** Service p99 over baseline p99. */
  p99Ratio: number;
  /**
   * CPU time of the app process per 2xx response (µs): the baseline's and the service's, and
   * baseline/service. Steadier than throughput on a shared machine, where the load generator and
   * other work take cores from both alike.
   */
  cpuMicrosPerRequest: { baseline: number; service: number; ratio: number };
}

/**
 * What the features of the exam issues cost a write: the write profile at the first connection
 * count, one feature added per run, bracketed by two runs with none of them:
 *   plain                      attempts at a quiz with no policy, no keys, nobody listening
 *   policies                   attempts at a quiz under a policy, an accommodation per user
 *   + idempotency keys         every write with an Idempotency-Key of its own
 *   + a quiz stream            the quiz's change stream open: every change encoded, published, sent
 *   plain                      again, for the machine's drift
 * Each step's ratio is its 2xx/s over the two plain runs' mean. (The event log is written by every
 * write in all of them: it is not optional.)
 */
export interface FeatureCost {
  connections: number;
  /** Writes per second of each arm (--features-rate), or null: as fast as they go. */
  rate: number | null;
  /**
   * ratio: the step's 2xx/s over the plain arm's; ratioBySlice: the same round by round (its slice
   * over the plain arm's of the same round), lowest and highest; cpuRatio: the plain arm's CPU per
   * write (API + Redis) over the step's.
   */
  steps: Array<{ name: string; run: MeasuredRun; ratio: number; ratioBySlice: Spread; cpuRatio: number }>;
  /**
   * With every feature in use (the last featured step) against plain: its throughput ratio, or at
   * a fixed rate (where the throughputs are equal by construction) its cpuRatio.
   */
  ratio: number;
  /** Bytes the open quiz stream received during its run. */
  streamBytes: number;
}

/** Redis memory of attempts made through the API, per attempt, at each step of their setup. */
export interface ApiMemory {
  attempts: number;
  /** Started, no answers: the hash, its dirty-free state and its deadline index entry. */
  startedBytesPerAttempt: number;
  /** After one write of 20 answers: plus its buffered events and the dirty-set entry (the persist job is shared). */
  dirtyBytesPerAttempt: number;
  /** After the write-behind wrote them: hash with 20 answers + its deadline index entry (+ retained finished jobs). */
  cleanBytesPerAttempt: number;
  /** MEMORY USAGE of one attempt's hash (20 answers), averaged over a sample. */
  hashBytes: number;
  /** MEMORY USAGE of the lifecycle queue's deadline index over its entries, and how many it lists. */
  deadlineIndexBytesPerEntry: number;
  deadlineIndexEntries: number;
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
  features: FeatureCost | null;
}

/**
 * Writes the baseline's attempts [from, count): each attempt's JSON text for the bare baseline
 * (the service's own rendering of an attempt with 20 answers), and with `heavy` the hash shaped
 * like the service's for the heavy one.
 */
export async function seedBaseline(ctx: BenchContext, count: number, heavy: boolean, from = 0): Promise<void> {
  const now = Date.now();
  for (let start = from; start < count; start += 1000) {
    const pipeline = ctx.stores.redis.pipeline();
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const attempt = seededAttempt(`bench-base-${i}`, now);
      pipeline.set(baselineKey(i), attemptJson(attempt, now), 'EX', 3600);
      if (heavy) {
        pipeline.hset(heavyBaselineKey(i), ...encodeAttempt(attempt, null));
        pipeline.expire(heavyBaselineKey(i), 3600);
      }
    }
    await pipeline.exec();
  }
  await ctx.stores.redis.del(BASELINE_DIRTY_KEY);
}

/** Sets the bare baseline's versions to what its JSON texts hold (the same reason as syncVersions). */
async function syncBaselineVersions(ctx: BenchContext, set: AttemptSet): Promise<void> {
  const pipeline = ctx.stores.redis.pipeline();
  for (let i = 0; i < set.versions.length; i++) pipeline.get(baselineKey(i));
  const replies = (await pipeline.exec()) ?? [];
  replies.forEach(([err, json], i) => {
    const v = !err && typeof json === 'string' ? /"version":(\d+)/.exec(json) : null;
    if (v) set.versions[i] = Number(v[1]);
  });
}

/** Opens the quiz's change stream and counts the bytes it receives, until `close()`. */
function openQuizStream(apiUrl: string, quizId: string): { bytes: () => number; close: () => void } {
  let bytes = 0;
  const req = http.get(`${apiUrl}/api/quizzes/${encodeURIComponent(quizId)}/stream`, (res) => {
    res.on('data', (chunk: Buffer) => (bytes += chunk.length));
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  return { bytes: () => bytes, close: () => req.destroy() };
}

/**
 * Creates N attempts through the API and gives each its 20 answers, then measures GET, versioned
 * writes and the 80/20 mix against the baseline at each connection count, baseline and service
 * run back to back so drift on the shared machine hits both alike.
 */
export async function httpPhase(ctx: BenchContext): Promise<HttpPhaseResult> {
  const o = ctx.options;
  await seedBaseline(ctx, o.attempts, o.heavyBaseline);

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
    const warmSet: AttemptSet = { ids: set.ids, versions: set.ids.map(() => 2) };
    for (const profile of ['get', 'write'] as Profile[]) {
      await syncBaselineVersions(ctx, warmSet);
      await runLoad(ctx.baselineUrl, 'baseline', profile, o.connections[0], o.warmup, warmSet);
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
  // the attempts' expiry: one member each in the lifecycle queue's deadline index (no job of their own)
  const deadlineIndexKey = `bull:${QUEUES.lifecycle}:deadlines`;
  const listed = await ctx.stores.redis.zcard(deadlineIndexKey);
  const deadlineIndexBytesPerEntry = listed > 0 ? round(((await ctx.stores.redis.memory('USAGE', deadlineIndexKey)) ?? 0) / listed, 0) : 0;
  const queueEventEntries = (await Promise.all(Object.values(QUEUES).map((q) => ctx.stores.redis.xlen(`bull:${q}:events`)))).reduce(
    (a, b) => a + b,
    0,
  );

  const runs: HttpComparison[] = [];
  const baseSet: AttemptSet = { ids: set.ids, versions: set.ids.map(() => 2) };
  for (const connections of o.connections) {
    for (const profile of o.profiles) {
      // the previous runs' writes are persisted PERSIST_DELAY later: waited for here, so the
      // write-behind's work lands in no measured slice (the slices take less than PERSIST_DELAY)
      await waitForDrain(ctx, (o.persistDelay + 30) * 1000);
      const arm = (target: Target): Arm => ({
        target,
        profile,
        connections,
        set: target === 'service' ? set : baseSet,
        before:
          target === 'service'
            ? () => syncVersions(ctx, set)
            : target === 'baseline'
              ? () => syncBaselineVersions(ctx, baseSet)
              : undefined,
      });
      const targets: Target[] = o.heavyBaseline ? ['baseline', 'service', 'heavy'] : ['baseline', 'service'];
      const [baseline, service, heavyRun] = await interleavedRuns(ctx, targets.map(arm), o.duration, o.slices);
      const heavy = heavyRun ?? null;
      const ratio = round(service.rps / baseline.rps, 3);
      const ratioBySlice = rpsRatioSpread(service, baseline);
      const cpuMicros = { baseline: baseline.cost.appMicros, service: service.cost.appMicros };
      runs.push({
        profile,
        connections,
        baseline,
        service,
        heavy,
        ratio,
        ratioBySlice,
        p99Ratio: round(service.latency.p99 / baseline.latency.p99, 3),
        cpuMicrosPerRequest: { ...cpuMicros, ratio: round(cpuMicros.baseline / cpuMicros.service, 3) },
      });
      ctx.log(
        `${profile.padEnd(5)} c=${String(connections).padEnd(4)} baseline ${baseline.rps}/s p99 ${baseline.latency.p99} ms ` +
          `(app ${baseline.cost.appMicros} µs, redis ${baseline.cost.redisMicros} µs: ${commandSummary(baseline.cost)}) | ` +
          `service ${service.rps}/s p99 ${service.latency.p99} ms (api ${service.cost.appMicros} µs, redis ${service.cost.redisMicros} µs: ` +
          `${commandSummary(service.cost)}) | ratio ${ratio} (by slice ${formatSpread(ratioBySlice)})` +
          (heavy ? ` | heavy baseline ${heavy.rps}/s p99 ${heavy.latency.p99} ms` : ''),
      );
    }
  }
  const features = o.features && o.profiles.includes('write') ? await featureCost(ctx, set) : null;
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
      deadlineIndexBytesPerEntry,
      deadlineIndexEntries: listed,
      queueEventEntries,
    },
    runs,
    features,
  };
}

/** FeatureCost: a second set of attempts, under the policy quiz, and the write profile on both sets. */
async function featureCost(ctx: BenchContext, plainSet: AttemptSet): Promise<FeatureCost> {
  const o = ctx.options;
  const client = new JsonClient(ctx.apiUrl, 64);
  // Each featured arm writes to attempts of its own, as many as the plain arm's, all clean when a
  // round starts (it starts once the one before has drained): every arm's writes then mark their
  // attempts dirty (the dirty-set entry, a persist job) at the same rate. Sharing one set, the
  // arms after the first in a round wrote to attempts it had made dirty, at a discount the plain
  // arm never had (runs O–Q: ZADD ×0.91 per plain write, ×0.45 per featured one).
  const featuredSet = async (prefix: string): Promise<AttemptSet> => {
    await applyPolicies(client, o.policy ?? 'autosubmit', prefix, o.attempts);
    const created = await startAttempts(client, o.attempts, 64, prefix, undefined, POLICY_QUIZ);
    const set: AttemptSet = { ids: created.ids, versions: created.versions };
    await prefillAnswers(client, set.ids, set.versions, 64);
    return set;
  };
  const featSets: AttemptSet[] = [];
  for (const prefix of ['bench-feat', 'bench-feat-idem', 'bench-feat-stream']) featSets.push(await featuredSet(prefix));
  client.close();
  const connections = o.connections[0];
  let streamBytes = 0;
  let stream: ReturnType<typeof openQuizStream> | null = null;
  await waitForDrain(ctx, (o.persistDelay + 30) * 1000);
  const rate = o.featuresRate > 0 ? o.featuresRate : undefined;
  const write = (set: AttemptSet, options: LoadOptions = {}, withStream = false): Arm => ({
    target: 'service',
    profile: 'write',
    connections,
    set,
    options: { ...options, rate },
    before: async () => {
      await syncVersions(ctx, set);
      // the quiz stream is open during its own arm's slices only
      if (withStream) {
        stream = openQuizStream(ctx.apiUrl, POLICY_QUIZ);
        await sleep(200);
      }
    },
    after: async () => {
      streamBytes += stream?.bytes() ?? 0;
      stream?.close();
      stream = null;
    },
  });
  const names = ['plain', 'policies', 'policies + idempotency keys', 'policies + idempotency keys + a quiz stream'];
  const arms = [
    write(plainSet),
    write(featSets[0]),
    write(featSets[1], { idempotencyKeys: true }),
    write(featSets[2], { idempotencyKeys: true }, true),
  ];
  // The four arms' slices take longer than PERSIST_DELAY: without a pause the write-behind of a
  // round's writes (the same for every arm: a persist per attempt per window) would land in
  // whichever arms ran 30 s later (in runs M and N the persist worker and PostgreSQL took 0.25 of
  // a core in the plain arm's slices and 0.45-0.52 in the others'). So each round (one slice of
  // every arm, shorter than PERSIST_DELAY at the defaults) starts once the write-behind of the
  // one before has drained, as the HTTP phase's profiles do.
  const roundSeconds = arms.length * (o.duration / o.slices);
  if (roundSeconds >= o.persistDelay)
    ctx.log(`features: a round of slices (${roundSeconds} s) is not shorter than PERSIST_DELAY; the write-behind lands in it`);
  const runs = await interleavedRuns(ctx, arms, o.duration, o.slices, async () => {
    await waitForDrain(ctx, (o.persistDelay + 30) * 1000);
  });
  const plainRps = runs[0].rps;
  const cpuPerWrite = (run: MeasuredRun) => run.cost.appMicros + run.cost.redisMicros;
  const steps = runs.map((run, i) => ({
    name: names[i],
    run,
    ratio: round(run.rps / plainRps, 3),
    ratioBySlice: rpsRatioSpread(run, runs[0]),
    cpuRatio: round(cpuPerWrite(runs[0]) / cpuPerWrite(run), 3),
  }));
  const ratio = rate ? steps[3].cpuRatio : steps[3].ratio;
  ctx.log(
    `features (writes, ${connections} conn${rate ? `, ${rate}/s each` : ''}): ` +
      steps
        .map(
          (x) =>
            `${x.name} ${x.run.rps}/s (${x.ratio}, by slice ${formatSpread(x.ratioBySlice)}, api ${x.run.cost.appMicros} µs, ` +
            `redis ${x.run.cost.redisMicros} µs, cpu ratio ${x.cpuRatio})`,
        )
        .join('; ') +
      `; the stream received ${streamBytes} B`,
  );
  return { connections, rate: rate ?? null, steps, ratio, streamBytes };
}
