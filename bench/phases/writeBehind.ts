import { sleep, waitForDrain, type BenchContext } from '../context';
import {
  addBuckets,
  diffBuckets,
  histogramBuckets,
  histogramQuantile,
  observations,
  quantileBound,
  scrape,
  type Buckets,
} from '../promHistogram';
import { LatencyRecorder, percentile, round } from '../stats';
import { answerFor, QUESTIONS, startAttempts } from '../workload';
import { JsonClient } from '../../test/support/http';
import { sampleCpu } from '../cpu';

/** A quantile read from a histogram: interpolated, and the bucket bound it is known to be under. */
export interface HistogramFigure {
  value: number;
  bucketBound: number;
}

/** The write-behind phase's results. */
export interface WriteBehindResult {
  attempts: number;
  seconds: number;
  intervalSeconds: number;
  persistDelaySeconds: number;
  acceptedWrites: number;
  /** Writes answered other than 200, by status. */
  rejected: Record<string, number>;
  writeLatencyP50Ms: number;
  writeLatencyP99Ms: number;
  /** Write latency per 5 s window of the phase: when the slow writes happened. */
  writeLatencyTimeline: Array<{ fromSecond: number; writes: number; p99Ms: number; maxMs: number }>;
  /** Upserts that wrote a row (sum of persist_count - 1 over the phase's attempts). */
  rowsWritten: number;
  rowsPerWrite: number;
  /** Seconds from the phase's end until the dirty set was empty, and how many were left. */
  drainSeconds: number;
  dirtyLeft: number;
  persistLagObservations: number;
  persistLagP50Seconds: HistogramFigure;
  persistLagP99Seconds: HistogramFigure;
  queueLagP99Seconds: { persist: HistogramFigure; lifecycle: HistogramFigure };
  cpu: Record<string, number>;
  expiry: ExpiryResult;
}

/** Expiry lateness of timed attempts: when PostgreSQL got the expired state, after the deadline. */
export interface ExpiryResult {
  attempts: number;
  expired: number;
  latenessP50Ms: number;
  latenessP99Ms: number;
  latenessMaxMs: number;
}

const figure = (b: Buckets, q: number): HistogramFigure => ({ value: round(histogramQuantile(b, q), 3), bucketBound: quantileBound(b, q) });

async function scrapeWorkers(ctx: BenchContext): Promise<string[]> {
  return Promise.all(ctx.workerMetricsUrls.map((url) => scrape(url)));
}

/**
 * Students writing once every `wbInterval` s for `wbDuration` s (each at its own phase offset,
 * every write versioned), and, a third of the way in, timed attempts with short limits that the
 * lifecycle worker must expire. Then waits for the write-behind to drain and reads the figures
 * from PostgreSQL and from the workers' own histograms (scraped before and after).
 */
export async function writeBehindPhase(ctx: BenchContext): Promise<WriteBehindResult> {
  const o = ctx.options;
  const client = new JsonClient(ctx.apiUrl, 128);
  // start from a settled service: the HTTP phase's last writes persist PERSIST_DELAY after them
  const settled = await waitForDrain(ctx, (o.persistDelay + 30) * 1000);
  if (settled.left > 0) ctx.log(`${settled.left} attempts still dirty before the write-behind phase`);
  const { ids, versions } = await startAttempts(client, o.wbAttempts, 64, 'bench-wb');
  const before = await scrapeWorkers(ctx);
  ctx.log(`write-behind: ${o.wbAttempts} students writing every ${o.wbInterval} s for ${o.wbDuration} s`);

  const latencies = new LatencyRecorder();
  const rejected: Record<string, number> = {};
  let accepted = 0;
  const timeline: number[][] = [];
  const cpu = sampleCpu(ctx.cpuTargets);
  const started = Date.now();
  const end = started + o.wbDuration * 1000;
  const student = async (i: number) => {
    // each student starts at its own offset, then writes at a fixed rate (not after each reply)
    let due = started + Math.random() * o.wbInterval * 1000;
    for (let seq = 0; due < end; seq++, due += o.wbInterval * 1000) {
      await sleep(Math.max(0, due - Date.now()));
      const q = seq % QUESTIONS;
      const res = await client
        .send('PATCH', `/api/sessions/${ids[i]}/progress`, {
          version: versions[i],
          question_id: `q${q + 1}`,
          answer: answerFor(q, seq),
          current_question: q + 1,
        })
        .catch(() => null);
      if (!res) rejected.network = (rejected.network ?? 0) + 1;
      else if (res.status === 200) {
        accepted++;
        latencies.record(res.ms);
        const window = Math.floor((Date.now() - started) / 5000);
        (timeline[window] ??= []).push(res.ms);
      } else rejected[res.status] = (rejected[res.status] ?? 0) + 1;
      if (res?.version) versions[i] = res.version;
    }
  };
  const expiry = (async () => {
    await sleep(Math.min(o.wbDuration / 3, 20) * 1000);
    const [min, max] = o.expiryLimit;
    const limitOf = (i: number) => min + Math.round(((max - min) * i) / Math.max(1, o.expiryAttempts - 1));
    await startAttempts(client, o.expiryAttempts, 32, 'bench-exp', limitOf);
  })();
  await Promise.all([...ids.map((_, i) => student(i)), expiry]);
  const cpuUse = cpu();

  const drain = await waitForDrain(ctx, (o.persistDelay + 30) * 1000);
  // expiry attempts past their deadline by now; give the lifecycle worker a moment for the last ones
  const expiryResult = await waitForExpiry(ctx, o.expiryAttempts, 15_000);
  const after = await scrapeWorkers(ctx);
  const persistLag = diffBuckets(
    addBuckets(...after.map((t) => histogramBuckets(t, 'persist_lag_seconds'))),
    addBuckets(...before.map((t) => histogramBuckets(t, 'persist_lag_seconds'))),
  );
  const queueLag = (queue: string) =>
    diffBuckets(
      addBuckets(...after.map((t) => histogramBuckets(t, 'queue_lag_seconds', { queue }))),
      addBuckets(...before.map((t) => histogramBuckets(t, 'queue_lag_seconds', { queue }))),
    );

  const row = await ctx
    .knex('quiz_sessions')
    .where('user_id', 'like', 'bench-wb-%')
    .sum({ rows: ctx.knex.raw('persist_count - 1') })
    .first();
  const rowsWritten = Number(row?.rows ?? 0);
  const summary = latencies.summary();
  client.close();
  return {
    attempts: o.wbAttempts,
    seconds: o.wbDuration,
    intervalSeconds: o.wbInterval,
    persistDelaySeconds: o.persistDelay,
    acceptedWrites: accepted,
    rejected,
    writeLatencyP50Ms: round(summary.p50, 2),
    writeLatencyP99Ms: round(summary.p99, 2),
    writeLatencyTimeline: [...timeline.entries()].map(([w, ms = []]) => {
      const sorted = [...ms].sort((a, b) => a - b);
      return {
        fromSecond: w * 5,
        writes: sorted.length,
        p99Ms: round(percentile(sorted, 0.99), 1),
        maxMs: round(sorted[sorted.length - 1] ?? NaN, 1),
      };
    }),
    rowsWritten,
    rowsPerWrite: round(rowsWritten / accepted, 4),
    drainSeconds: round(drain.seconds, 1),
    dirtyLeft: drain.left,
    persistLagObservations: observations(persistLag),
    persistLagP50Seconds: figure(persistLag, 0.5),
    persistLagP99Seconds: figure(persistLag, 0.99),
    queueLagP99Seconds: { persist: figure(queueLag('persist-snapshot'), 0.99), lifecycle: figure(queueLag('session-lifecycle'), 0.99) },
    cpu: cpuUse,
    expiry: expiryResult,
  };
}

/**
 * Lateness of each expiry attempt: from its deadline (expires_at) to when PostgreSQL got the
 * expired row (persisted_at, set by the database). ended_at is the deadline itself by design,
 * and a GET past the deadline already answers 410, so the worker's lag is what can be late.
 */
async function waitForExpiry(ctx: BenchContext, count: number, timeoutMs: number): Promise<ExpiryResult> {
  const started = Date.now();
  type Row = { status: string; expires_at: Date; persisted_at: Date };
  let rows: Row[] = [];
  for (;;) {
    rows = await ctx.knex('quiz_sessions').select('status', 'expires_at', 'persisted_at').where('user_id', 'like', 'bench-exp-%');
    const open = rows.filter((r) => r.status !== 'expired');
    const lastDeadline = Math.max(0, ...rows.map((r) => r.expires_at.getTime()));
    if ((open.length === 0 && rows.length === count) || Date.now() - started > timeoutMs + Math.max(0, lastDeadline - started)) break;
    await sleep(250);
  }
  const lateness = rows
    .filter((r) => r.status === 'expired')
    .map((r) => r.persisted_at.getTime() - r.expires_at.getTime())
    .sort((a, b) => a - b);
  return {
    attempts: count,
    expired: lateness.length,
    latenessP50Ms: percentile(lateness, 0.5),
    latenessP99Ms: percentile(lateness, 0.99),
    latenessMaxMs: lateness.length ? lateness[lateness.length - 1] : NaN,
  };
}
