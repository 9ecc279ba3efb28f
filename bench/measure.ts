import type { BenchContext } from './context';
import { runLoad, type AttemptSet, type LoadOptions, type RunResult, type Target } from './load';
import type { Profile } from './options';
import { sampleCpu } from './cpu';
import { LatencyRecorder, round, roundedLatency } from './stats';
import { metricSum, scrape } from './promHistogram';

/** Calls and time of one Redis command over a run (INFO commandstats, before and after). */
export interface CommandCost {
  calls: number;
  /** Redis's own time in the command, µs per call. */
  usecPerCall: number;
  /** Calls per 2xx response. */
  perRequest: number;
}

/**
 * Where one run's time went, per 2xx response: CPU of the app process (the API or the baseline
 * app) and of Redis, in µs, and the commands Redis ran (µs per call, calls per request), so that
 * a regression points at its place: the app's code, or a script.
 */
export interface RunCost {
  appMicros: number;
  redisMicros: number;
  /**
   * The commands Redis ran during the run, by name. INFO commandstats counts the commands a script
   * calls as well, and a script call's time includes theirs: `fcall` is the service's session
   * scripts (Redis Functions), `evalsha` the other scripts (BullMQ's job adds and moves, the
   * baseline's merge, the session scripts where Functions are refused), `hmget` inside them
   * included.
   */
  commands: Record<string, CommandCost>;
  /**
   * Reads Redis processed per 2xx response (INFO stats, `total_reads_processed`): how the app's
   * commands reach Redis. 1 when every command comes in a read of its own (the bare app writes
   * each alone); below 1 when a turn's commands of several requests come in one write (the
   * service's), so that a rise here means less coalescing and more syscalls on both sides.
   */
  readsPerRequest: number;
  /**
   * The API's garbage collection per 2xx response, µs (prom-client's nodejs_gc_duration_seconds,
   * read from its /metrics before and after each slice), by kind (minor, major, incremental,
   * weakcb), and its heap in use after the last slice, MB: whether a rise of the API's CPU per
   * request is its collector's (a larger heap late in a run) or its own code's. Absent for the
   * baseline app, which has no /metrics.
   */
  gc?: { micros: Record<string, number>; heapUsedMB: number };
}

/** GC seconds by kind (nodejs_gc_duration_seconds_sum) and the heap in use, from one read of an API's /metrics (NaN when unreadable). */
async function gcState(apiUrl: string): Promise<{ seconds: Record<string, number>; heapUsedBytes: number }> {
  const page = await scrape(`${apiUrl}/metrics`).catch(() => '');
  const seconds: Record<string, number> = {};
  // a kind with no collection yet has no series: 0 (NaN only when the page could not be read)
  for (const kind of GC_KINDS) seconds[kind] = page === '' ? NaN : metricSum(page, 'nodejs_gc_duration_seconds_sum', `kind="${kind}"`) || 0;
  return { seconds, heapUsedBytes: metricSum(page, 'nodejs_heap_size_used_bytes') };
}
const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'] as const;

/** One slice of an arm (interleavedRuns): its 2xx/s and its app's CPU µs per 2xx response. */
export interface SliceFigure {
  rps: number;
  appMicros: number;
}

/** A ratio's lowest and highest over the rounds of one measurement (roundSpread). */
export interface Spread {
  min: number;
  max: number;
}

/** A run with its cost, and its slices one by one (in the order measured). */
export interface MeasuredRun extends RunResult {
  cost: RunCost;
  slices: SliceFigure[];
}

/**
 * A ratio's spread over the rounds of one measurement: `of(round)` for each round (slice index)
 * the arms share, its lowest and highest. A merged ratio says how the arms compare; its spread
 * says how much one slice of this shared machine can move it.
 */
export function roundSpread(rounds: number, of: (round: number) => number): Spread {
  const values = Array.from({ length: rounds }, (_, i) => of(i)).filter(Number.isFinite);
  return values.length === 0 ? { min: NaN, max: NaN } : { min: round(Math.min(...values), 3), max: round(Math.max(...values), 3) };
}

/** `a`'s 2xx/s over `b`'s, round by round: the spread of their ratio. */
export const rpsRatioSpread = (a: MeasuredRun, b: MeasuredRun): Spread =>
  roundSpread(Math.min(a.slices.length, b.slices.length), (i) => a.slices[i].rps / b.slices[i].rps);

/** A spread as `min–max`. */
export const formatSpread = (spread: Spread): string => `${spread.min}–${spread.max}`;

/** Commands of the bench's own, not the run's. */
const HARNESS_COMMANDS = new Set(['info', 'ping', 'client', 'select']);

/** INFO commandstats as command -> {calls, usec}. */
export function parseCommandStats(info: string): Map<string, { calls: number; usec: number }> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/** INFO stats' total_reads_processed. */
function readsProcessed(info: string): number {
  return Number(/^total_reads_processed:(\d+)/m.exec(info)?.[1] ?? NaN);
}

/** The pause before each slice (see interleavedRuns). */
const SETTLE_MS = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One side of an interleaved measurement: what is loaded, how, and on which attempts. */
export interface Arm {
  target: Target;
  profile: Profile;
  connections: number;
  set: AttemptSet;
  options?: LoadOptions;
  /**
   * Work before each of the arm's slices, outside its measured time: the harness learns the
   * versions again (a write in flight when the previous slice stopped was applied, but its answer
   * never read), a stream is opened for this arm alone.
   */
  before?: () => Promise<void>;
  /** Work after each of the arm's slices, outside its measured time. */
  after?: () => Promise<void>;
}

/** What one arm's slices add up to while they run. */
interface ArmTotals {
  latencies: LatencyRecorder;
  ok: number;
  requests: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  seconds: number;
  cpuSeconds: Record<string, number>;
  commands: Map<string, { calls: number; usec: number }>;
  reads: number;
  gcSeconds: Record<string, number>;
  heapUsedBytes: number;
  slices: SliceFigure[];
}

/**
 * Measures `arms` in turns: `slices` slices of `seconds / slices` each, the order reversed every
 * other slice (A B, B A, A B, …), so every arm's time is spread over the whole measurement and a
 * drift of the machine (a neighbour's load, on this shared 2-core VM, moved a 10-second figure by
 * up to 25 % between two runs a minute apart) falls on every arm alike instead of on whichever ran
 * second. Each arm's slices are merged into one run: its 2xx count over its own seconds, its
 * latency percentiles over all its responses, its CPU and Redis command costs over its slices.
 *
 * `betweenRounds` runs after each round (one slice of every arm) but the last, outside every
 * arm's measured time: the features' measurement waits there for the write-behind, so that its
 * work (due PERSIST_DELAY after a round's first writes) lands in no arm's slices.
 */
export async function interleavedRuns(
  ctx: BenchContext,
  arms: Arm[],
  seconds: number,
  slices: number,
  betweenRounds?: () => Promise<void>,
): Promise<MeasuredRun[]> {
  const redis = ctx.stores.redis;
  const totals: ArmTotals[] = arms.map(() => ({
    latencies: new LatencyRecorder(),
    ok: 0,
    requests: 0,
    statuses: {},
    errors: 0,
    timeouts: 0,
    seconds: 0,
    cpuSeconds: {},
    commands: new Map(),
    reads: 0,
    gcSeconds: {},
    heapUsedBytes: NaN,
    slices: [],
  }));
  const slice = seconds / slices;
  for (let s = 0; s < slices; s++) {
    if (s > 0) await betweenRounds?.();
    const order = arms.map((_, i) => i);
    if (s % 2 === 1) order.reverse();
    for (const i of order) {
      const arm = arms[i];
      const t = totals[i];
      // the previous slice's requests in flight when its load stopped are still being answered:
      // let them land before this arm's versions are read, and outside its measured time
      await sleep(SETTLE_MS);
      await arm.before?.();
      const gcBefore = arm.target === 'service' ? await gcState(ctx.apiUrl) : null;
      const readsBefore = readsProcessed(await redis.info('stats'));
      const before = parseCommandStats(await redis.info('commandstats'));
      const cpu = sampleCpu(ctx.cpuTargets);
      const url = arm.target === 'service' ? ctx.apiUrl : ctx.baselineUrl;
      const result = await runLoad(url, arm.target, arm.profile, arm.connections, slice, arm.set, {
        ...arm.options,
        latencies: t.latencies,
      });
      const shares = cpu();
      const after = parseCommandStats(await redis.info('commandstats'));
      // less the harness's own reads since the first INFO stats: the two INFO commandstats and
      // this INFO stats (a read is counted before its command runs, so each INFO stats counts itself)
      t.reads += readsProcessed(await redis.info('stats')) - readsBefore - 3;
      if (gcBefore) {
        const gcAfter = await gcState(ctx.apiUrl);
        for (const kind of GC_KINDS) t.gcSeconds[kind] = (t.gcSeconds[kind] ?? 0) + (gcAfter.seconds[kind] - gcBefore.seconds[kind]);
        t.heapUsedBytes = gcAfter.heapUsedBytes;
      }
      await arm.after?.();
      t.ok += result.ok;
      t.requests += result.requests;
      t.errors += result.errors;
      t.timeouts += result.timeouts;
      t.seconds += result.seconds;
      for (const [status, n] of Object.entries(result.statuses)) t.statuses[status] = (t.statuses[status] ?? 0) + n;
      for (const [name, share] of Object.entries(shares)) t.cpuSeconds[name] = (t.cpuSeconds[name] ?? 0) + share * result.seconds;
      const sliceRps = result.ok / result.seconds;
      t.slices.push({ rps: round(sliceRps, 0), appMicros: microsPerRequest(shares[appProcess(arm.target)], sliceRps) });
      for (const [name, stat] of after) {
        if (HARNESS_COMMANDS.has(name)) continue;
        const b = before.get(name) ?? { calls: 0, usec: 0 };
        const sum = t.commands.get(name) ?? { calls: 0, usec: 0 };
        t.commands.set(name, { calls: sum.calls + stat.calls - b.calls, usec: sum.usec + stat.usec - b.usec });
      }
    }
  }
  return arms.map((arm, i) => {
    const t = totals[i];
    const rps = t.ok / t.seconds;
    const cpu: Record<string, number> = {};
    for (const [name, cpuSeconds] of Object.entries(t.cpuSeconds)) cpu[name] = round(cpuSeconds / t.seconds, 2);
    const commands: Record<string, CommandCost> = {};
    for (const [name, c] of t.commands) {
      // stray commands (the workers' polling, the sweep) are not the requests'
      if (c.calls < t.ok / 100) continue;
      commands[name] = { calls: c.calls, usecPerCall: round(c.usec / c.calls, 2), perRequest: round(c.calls / Math.max(1, t.ok), 3) };
    }
    const latency = t.latencies.summary();
    const app = appProcess(arm.target);
    return {
      target: arm.target,
      profile: arm.profile,
      connections: arm.connections,
      seconds: round(t.seconds, 2),
      rps: round(rps, 0),
      requests: t.requests,
      ok: t.ok,
      statuses: t.statuses,
      errors: t.errors,
      timeouts: t.timeouts,
      latency: roundedLatency(latency),
      cpu,
      cost: {
        appMicros: microsPerRequest(cpu[app], rps),
        redisMicros: microsPerRequest(cpu.redis, rps),
        commands,
        readsPerRequest: round(t.reads / Math.max(1, t.ok), 3),
        ...(Object.keys(t.gcSeconds).length > 0
          ? {
              gc: {
                micros: Object.fromEntries(
                  Object.entries(t.gcSeconds).map(([kind, sec]) => [kind, round((sec * 1e6) / Math.max(1, t.ok), 1)]),
                ),
                heapUsedMB: round(t.heapUsedBytes / 2 ** 20, 1),
              },
            }
          : {}),
      },
      slices: t.slices,
    };
  });
}

/** CPU µs per 2xx response from a process's share of a core at `rps` 2xx/s (NaN when it was not sampled). */
const microsPerRequest = (share: number | undefined, rps: number): number => round(((share ?? NaN) * 1e6) / rps, 1);

/** The process whose CPU is an arm's app: the API for the service, the bare app otherwise. */
const appProcess = (target: Target): string => (target === 'service' ? 'api' : 'baseline');

/** `evalsha 21.5 µs ×1.00, get 0.3 µs ×1.00, 0.41 reads`: a run's six costliest commands and Redis's reads, per 2xx response, for the report. */
export function commandSummary(cost: RunCost): string {
  return Object.entries(cost.commands)
    .sort((a, b) => b[1].calls * b[1].usecPerCall - a[1].calls * a[1].usecPerCall)
    .slice(0, 6)
    .map(([name, c]) => `${name} ${c.usecPerCall} µs ×${c.perRequest}`)
    .concat(`${cost.readsPerRequest} reads`)
    .concat(
      cost.gc
        ? [
            `API GC ${Object.entries(cost.gc.micros)
              .map(([kind, us]) => `${kind} ${us}`)
              .join(' ')} µs, heap ${cost.gc.heapUsedMB} MB`,
          ]
        : [],
    )
    .join(', ');
}
