import type { BenchContext } from './context';
import { runLoad, type AttemptSet, type LoadOptions, type RunResult, type Target } from './load';
import type { Profile } from './options';
import { sampleCpu } from './cpu';
import { round } from './stats';

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
   * calls as well, and `evalsha`'s time includes theirs: `evalsha` is every script (the service's,
   * BullMQ's job adds and moves, the baseline's merge), `hmget` inside them included.
   */
  commands: Record<string, CommandCost>;
}

/** A run with its cost. */
export interface MeasuredRun extends RunResult {
  cost: RunCost;
}

/** Commands of the bench's own, not the run's. */
const HARNESS_COMMANDS = new Set(['info', 'ping', 'client', 'select']);

/** INFO commandstats as command -> {calls, usec}. */
export function parseCommandStats(info: string): Map<string, { calls: number; usec: number }> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/** Runs one profile against one app and records its CPU and Redis command costs beside the load figures. */
export async function measuredRun(
  ctx: BenchContext,
  target: Target,
  profile: Profile,
  connections: number,
  seconds: number,
  set: AttemptSet,
  options: LoadOptions = {},
): Promise<MeasuredRun> {
  const redis = ctx.stores.redis;
  const before = parseCommandStats(await redis.info('commandstats'));
  const cpu = sampleCpu(ctx.cpuTargets);
  const result = await runLoad(target === 'service' ? ctx.apiUrl : ctx.baselineUrl, target, profile, connections, seconds, set, options);
  result.cpu = cpu();
  const after = parseCommandStats(await redis.info('commandstats'));
  const app = target === 'service' ? 'api' : 'baseline';
  const perRequest = (share: number | undefined) => round(((share ?? NaN) * 1e6) / result.rps, 1);
  const commands: Record<string, CommandCost> = {};
  for (const [name, s] of after) {
    if (HARNESS_COMMANDS.has(name)) continue;
    const b = before.get(name) ?? { calls: 0, usec: 0 };
    const calls = s.calls - b.calls;
    // stray commands (the workers' polling, the sweep) are not the requests'
    if (calls < result.ok / 100) continue;
    commands[name] = {
      calls,
      usecPerCall: round((s.usec - b.usec) / calls, 2),
      perRequest: round(calls / Math.max(1, result.ok), 3),
    };
  }
  return { ...result, cost: { appMicros: perRequest(result.cpu[app]), redisMicros: perRequest(result.cpu.redis), commands } };
}

/** `evalsha 21.5 µs ×1.00, get 0.3 µs ×1.00`: a run's six costliest commands, for the report. */
export function commandSummary(cost: RunCost): string {
  return Object.entries(cost.commands)
    .sort((a, b) => b[1].calls * b[1].usecPerCall - a[1].calls * a[1].usecPerCall)
    .slice(0, 6)
    .map(([name, c]) => `${name} ${c.usecPerCall} µs ×${c.perRequest}`)
    .join(', ');
}
