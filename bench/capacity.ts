/**
 * `npm run bench -- --capacity [--cluster]`: what one read, one write and one persisted row cost
 * each component in CPU, the figures the capacity plan (docs/SCALING.md) is computed from. On 2
 * shared cores throughput says little about a fleet; CPU time per unit of work does.
 *
 * - `--capacity`: one Redis for the live state (the bench's DB on REDIS_URL) and a private
 *   redis-server for the queues (QUEUE_REDIS_URL), so the two costs are told apart.
 * - `--cluster`: a local 3-master Redis Cluster with a replica each (scripts/cluster.sh on ports
 *   of its own), state and queues on it, QUEUE_SHARDS=3: the same figures on the cluster, and how
 *   the work spreads over the masters.
 *
 * Each run: attempts started and filled through the API; the write-behind drained (cost per
 * row); then reads and versioned writes, each for --duration s (cost per request). Redis' own
 * accounting (INFO commandstats, reset before each step) gives µs per command next to the CPU.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import knexFactory, { type Knex } from 'knex';
import { useKeyLayout } from '../src/shared/store/keys';
import { SessionStore } from '../src/shared/store/sessionStore';
import { loadConfig } from '../src/shared/config';
import { createRequestRedis, waitForReady, type RedisClient } from '../src/shared/redis';
import { startLocalCluster } from '../test/support/localCluster';
import { startRedisServer } from '../test/support/redisServer';
import { plan, studentsPerInstance, type Plan, type UnitCosts, type Workload } from './capacityPlan';
import { machineInfo, type MachineInfo } from './machine';
import { parseCommandStats } from './measure';
import type { BenchOptions } from './options';
import { histogramBuckets, observations, scrape } from './promHistogram';
import { runLoad, type RunResult } from './load';
import { round } from './stats';
import { createBenchDatabase, createBenchStores } from './stores';
import { prefillAnswers, startAttempts } from './workload';
import { JsonClient } from '../test/support/http';
import { cpuSecondsOf } from './cpu';
import { freePort } from '../test/support/ports';
import { MAIN_JS, runScriptToCompletion, startLoggedProcess, waitForHttp, type BenchProcess } from '../test/support/processes';

/** A Redis server the service uses, for its CPU and its command statistics. */
interface RedisNode {
  /** The component it counts towards: `redis state`, `redis queues`, `redis masters`, `redis replicas`. */
  component: string;
  name: string;
  redis: Redis;
  pid: number;
}

/** Redis' own accounting of one command over a step, summed over the servers of a component. */
export interface CommandCost {
  component: string;
  command: string;
  calls: number;
  /** µs inside Redis per call, and per unit of work (request or row). */
  usecPerCall: number;
  usecPerUnit: number;
  callsPerUnit: number;
}

/** One measured step: what was done, and what it cost each component. */
export interface CapacityStep {
  unit: 'read' | 'write' | 'row';
  units: number;
  seconds: number;
  /** CPU µs per unit, per component. */
  cpuMicrosPerUnit: Record<string, number>;
  /** Per Redis server (the spread over masters). */
  redisServerMicrosPerUnit: Record<string, number>;
  commands: CommandCost[];
  load?: RunResult;
}

export interface CapacityReport {
  startedAt: string;
  command: string;
  mode: 'single' | 'cluster';
  machine: MachineInfo;
  attempts: number;
  connections: number;
  persistDelaySeconds: number;
  persistJobs: number;
  /** PostgreSQL bytes (table, indexes, TOAST) per attempt after the run: its row, and its events. */
  postgresBytesPerAttempt: { quizSessions: number; attemptEvents: number; eventsPerAttempt: number };
  steps: CapacityStep[];
  costs: UnitCosts;
  plans: Plan[];
  /** Students one instance of each component carries at the plan's headroom. */
  studentsPerInstance: Record<string, number>;
}

/** The plan's workload: the issue's national exam, each student saving and reading every 10 s. */
export const WORKLOADS: Workload[] = [100_000, 1_000_000].map((students) => ({
  students,
  writeIntervalSeconds: 10,
  readIntervalSeconds: 10,
  persistWindowSeconds: 30,
}));

/** The pids of the bench database's PostgreSQL backends (its share of PostgreSQL, not other databases'). */
async function backendPids(knex: Knex, database: string): Promise<number[]> {
  const rows = await knex.raw('select pid from pg_stat_activity where datname = ?', [database]);
  return (rows.rows as Array<{ pid: number }>).map((r) => r.pid);
}

/** Measures one step: CPU of every process and backend, and Redis' command statistics, around `work`. */
async function measure(
  unit: CapacityStep['unit'],
  nodes: RedisNode[],
  processes: BenchProcess[],
  knex: Knex,
  database: string,
  work: () => Promise<{ units: number; load?: RunResult }>,
): Promise<CapacityStep> {
  await Promise.all(nodes.map((n) => n.redis.config('RESETSTAT')));
  const cpuBefore = new Map<string, number>();
  for (const p of processes) cpuBefore.set(p.name, cpuSecondsOf(p.pid) ?? NaN);
  for (const n of nodes) cpuBefore.set(n.name, cpuSecondsOf(n.pid) ?? NaN);
  const pgBefore = new Map((await backendPids(knex, database)).map((pid) => [pid, cpuSecondsOf(pid) ?? 0]));
  const started = process.hrtime.bigint();
  const { units, load } = await work();
  if (units <= 0) throw new Error(`the ${unit} step did no work: nothing to divide by`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = (name: string, pid: number) => (cpuSecondsOf(pid) ?? NaN) - cpuBefore.get(name)!;
  const per = (cpuSeconds: number) => round((cpuSeconds * 1e6) / units, 1);

  const cpuMicrosPerUnit: Record<string, number> = {};
  for (const p of processes) cpuMicrosPerUnit[p.name] = per(used(p.name, p.pid));
  const redisServerMicrosPerUnit: Record<string, number> = {};
  const byComponent = new Map<string, number>();
  for (const n of nodes) {
    const s = used(n.name, n.pid);
    redisServerMicrosPerUnit[n.name] = per(s);
    byComponent.set(n.component, (byComponent.get(n.component) ?? 0) + s);
  }
  for (const [component, s] of byComponent) cpuMicrosPerUnit[component] = per(s);
  let pg = 0;
  for (const pid of await backendPids(knex, database)) pg += (cpuSecondsOf(pid) ?? 0) - (pgBefore.get(pid) ?? 0);
  cpuMicrosPerUnit.postgres = per(pg);

  const commands = new Map<string, { component: string; command: string; calls: number; usec: number }>();
  for (const n of nodes) {
    for (const [command, s] of parseCommandStats(await n.redis.info('commandstats'))) {
      if (/^(config|info)\b/.test(command)) continue; // the bench's own
      const key = `${n.component} ${command}`;
      const c = commands.get(key) ?? { component: n.component, command, calls: 0, usec: 0 };
      c.calls += s.calls;
      c.usec += s.usec;
      commands.set(key, c);
    }
  }
  return {
    unit,
    units,
    seconds: round(seconds, 1),
    cpuMicrosPerUnit,
    redisServerMicrosPerUnit,
    commands: [...commands.values()]
      .sort((a, b) => b.usec - a.usec)
      .map((c) => ({
        ...c,
        usecPerCall: round(c.usec / Math.max(1, c.calls), 2),
        usecPerUnit: round(c.usec / units, 2),
        callsPerUnit: round(c.calls / units, 3),
      })),
    load,
  };
}

/** The stores of a capacity run: the live state's Redis, the queues', PostgreSQL, and the servers to watch. */
interface CapacityStores {
  env: Record<string, string | number>;
  state: RedisClient;
  databaseUrl: string;
  database: string;
  nodes: RedisNode[];
  destroy(): Promise<void>;
}

async function pidOf(redis: Redis): Promise<number> {
  return Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1] ?? NaN);
}

async function singleStores(o: BenchOptions, log: (m: string) => void): Promise<CapacityStores> {
  const stores = await createBenchStores(o.redisDb, o.pgDatabase, log);
  const queues = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
  const queueRedis = new Redis(queues.url);
  return {
    env: { REDIS_URL: stores.redisUrl, QUEUE_REDIS_URL: queues.url },
    state: stores.redis,
    databaseUrl: stores.databaseUrl,
    database: o.pgDatabase,
    nodes: [
      { component: 'redis state', name: 'redis state', redis: stores.redis, pid: await pidOf(stores.redis) },
      { component: 'redis queues', name: 'redis queues', redis: queueRedis, pid: await pidOf(queueRedis) },
    ],
    async destroy() {
      queueRedis.disconnect();
      await queues.close();
      await stores.destroy(o.keep);
    },
  };
}

async function clusterStores(o: BenchOptions, log: (m: string) => void): Promise<CapacityStores> {
  log(`starting a local Redis Cluster on ports ${o.clusterPort}-${o.clusterPort + 5}`);
  const cluster = startLocalCluster(o.clusterPort);
  // the service takes the bucketed layout on a cluster; the bench counts its dirty sets the same way
  useKeyLayout('bucketed');
  const database = await createBenchDatabase(o.pgDatabase);
  const masters = new Set(await cluster.masters());
  const nodes: RedisNode[] = [];
  for (let port = o.clusterPort; port < o.clusterPort + 6; port++) {
    const redis = new Redis({ port, host: '127.0.0.1' });
    const master = masters.has(port);
    nodes.push({
      component: master ? 'redis masters' : 'redis replicas',
      name: `redis ${master ? 'master' : 'replica'} ${port}`,
      redis,
      pid: await pidOf(redis),
    });
  }
  const env = { REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_SHARDS: 3 };
  const state = createRequestRedis(loadConfig({ REDIS_CLUSTER_NODES: cluster.nodes }), 'bench-capacity');
  if (!(await waitForReady(state, 10_000))) throw new Error('the bench could not reach the local cluster');
  return {
    env,
    state,
    databaseUrl: database.url,
    database: o.pgDatabase,
    nodes,
    async destroy() {
      state.disconnect();
      for (const n of nodes) n.redis.disconnect();
      cluster.stop();
      if (!o.keep) await database.drop();
    },
  };
}

/** Waits until fewer than `n` attempts are dirty (the write-behind has written the rest), at most `timeoutMs`. */
async function untilDirtyBelow(state: RedisClient, n: number, timeoutMs: number): Promise<void> {
  const store = new SessionStore(state, 60);
  const deadline = Date.now() + timeoutMs;
  while ((await store.dirtyCount()) >= n) {
    if (Date.now() > deadline) throw new Error(`the write-behind did not get below ${n} dirty attempts within ${timeoutMs / 1000} s`);
    // once a second: on a cluster each count is 1,024 ZCARDs, which the row step would otherwise measure
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Upserts that wrote a row for the run's attempts (persist_count counts them; the start wrote the first). */
async function rowsWritten(knex: Knex): Promise<number> {
  const row = await knex('quiz_sessions')
    .where('user_id', 'like', 'cap-%')
    .sum({ rows: knex.raw('persist_count - 1') })
    .first();
  return Number(row?.rows ?? 0);
}

const persistJobs = async (url: string) =>
  observations(histogramBuckets(await scrape(url), 'job_duration_seconds', { queue: 'persist-snapshot' }));

/** Runs the capacity measurement (single Redis, or the local cluster) and writes its report. */
export async function runCapacity(o: BenchOptions, log: (m: string) => void): Promise<CapacityReport> {
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const mode = o.capacity === 'cluster' ? 'cluster' : 'single';
  const runDir = path.join(path.resolve(o.resultsDir), `capacity-${mode}-${stamp}`);
  mkdirSync(runDir, { recursive: true });
  const stores = mode === 'cluster' ? await clusterStores(o, log) : await singleStores(o, log);
  const knex = knexFactory({ client: 'pg', connection: stores.databaseUrl, pool: { min: 0, max: 2 } });
  const processes: BenchProcess[] = [];
  try {
    const env = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATABASE_URL: stores.databaseUrl,
      LOG_LEVEL: 'warn',
      PERSIST_DELAY_SECONDS: o.persistDelay,
      ...stores.env,
    };
    await runScriptToCompletion(MAIN_JS, ['migrate'], env);
    const version = await knex.raw<{ rows: Array<{ v: string }> }>(`select current_setting('server_version') as v`);
    const gcArgs = o.semiSpace > 0 ? [`--max-semi-space-size=${o.semiSpace}`] : [];
    const [apiPort, persistPort, lifecyclePort] = await Promise.all([freePort(), freePort(), freePort()]);
    const start = (role: string, port: number, extra: Record<string, string | number>) => {
      const proc = startLoggedProcess(role, MAIN_JS, [role], { ...env, ...extra }, port, path.join(runDir, `${role}.log`), gcArgs);
      processes.push(proc);
      return proc;
    };
    const api = start('api', apiPort, { PORT: apiPort, METRICS_PORT: await freePort() });
    const persist = start('persist-worker', persistPort, { METRICS_PORT: persistPort });
    const lifecycle = start('lifecycle-worker', lifecyclePort, { METRICS_PORT: lifecyclePort });
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const persistMetrics = `http://127.0.0.1:${persistPort}/metrics`;
    await Promise.all([
      waitForHttp(api, `${apiUrl}/ready`),
      waitForHttp(persist, `http://127.0.0.1:${persistPort}/health`),
      waitForHttp(lifecycle, `http://127.0.0.1:${lifecyclePort}/health`),
    ]);

    const client = new JsonClient(apiUrl, 64);
    log(`${mode}: starting ${o.attempts} attempts and filling each with every answer`);
    const set = await startAttempts(client, o.attempts, 64, 'cap');
    await prefillAnswers(client, set.ids, set.versions, 64);
    const steps: CapacityStep[] = [];
    const jobsBefore = await persistJobs(persistMetrics);
    log(`waiting for the write-behind (PERSIST_DELAY_SECONDS=${o.persistDelay}) to write them`);
    // measured from the last fill to the last row written: the delay before the first row is in
    // the window (what Redis and the workers spend idle then is small next to the writing)
    const rowsBefore = await rowsWritten(knex);
    steps.push(
      await measure('row', stores.nodes, processes, knex, stores.database, async () => {
        await untilDirtyBelow(stores.state, 1, (o.persistDelay + 120) * 1000);
        return { units: (await rowsWritten(knex)) - rowsBefore };
      }),
    );
    const jobs = (await persistJobs(persistMetrics)) - jobsBefore;
    const connections = o.connections[0];
    for (const profile of ['get', 'write'] as const) {
      if (o.warmup > 0) await runLoad(apiUrl, 'service', profile, connections, o.warmup, set);
      log(`${profile}: ${connections} connections for ${o.duration} s`);
      steps.push(
        await measure(profile === 'get' ? 'read' : 'write', stores.nodes, processes, knex, stores.database, async () => {
          const load = await runLoad(apiUrl, 'service', profile, connections, o.duration, set);
          return { units: load.ok, load };
        }),
      );
    }
    client.close();

    // the run's attempts are the only rows: their size on disk, per attempt
    const sizes = await knex.raw(
      `select pg_total_relation_size('quiz_sessions') as s, pg_total_relation_size('attempt_events') as e,
              (select count(*) from quiz_sessions) as n, (select count(*) from attempt_events) as m`,
    );
    const size = sizes.rows[0] as { s: string; e: string; n: string; m: string };
    const costOf = (unit: CapacityStep['unit']) => steps.find((s) => s.unit === unit)!.cpuMicrosPerUnit;
    const costs: UnitCosts = { read: costOf('read'), write: costOf('write'), row: costOf('row') };
    const components = Object.keys(costs.write);
    const report: CapacityReport = {
      startedAt: startedAt.toISOString(),
      command: `node ${path.relative(process.cwd(), process.argv[1])} ${process.argv.slice(2).join(' ')}`.trim(),
      mode,
      machine: machineInfo(`PostgreSQL ${version.rows[0].v}`),
      attempts: o.attempts,
      connections,
      persistDelaySeconds: o.persistDelay,
      persistJobs: jobs,
      postgresBytesPerAttempt: {
        quizSessions: Math.round(Number(size.s) / Number(size.n)),
        attemptEvents: Math.round(Number(size.e) / Number(size.n)),
        eventsPerAttempt: round(Number(size.m) / Number(size.n), 1),
      },
      steps,
      costs,
      plans: WORKLOADS.map((w) => plan(costs, w)),
      studentsPerInstance: Object.fromEntries(components.map((c) => [c, Math.round(studentsPerInstance(costs, WORKLOADS[0], c))])),
    };
    const file = path.join(path.resolve(o.resultsDir), `capacity-${mode}-${stamp}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${renderCapacity(report)}\n\nJSON: ${path.relative(process.cwd(), file)}\n`);
    return report;
  } finally {
    for (const p of processes) await p.stop();
    await knex.destroy();
    await stores.destroy();
  }
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : String(n));

/** The report as text: the cost table, the top Redis commands, the plan. */
export function renderCapacity(r: CapacityReport): string {
  const m = r.machine;
  const lines = [
    `quiz-session-service capacity (${r.mode}) — ${r.startedAt} — ${m.nproc} cores, node ${m.node}, load ${m.loadAverage.join(' ')}`,
    `${r.attempts} attempts, ${r.connections} connections, PERSIST_DELAY_SECONDS=${r.persistDelaySeconds}`,
    '',
    'CPU µs per unit of work (CPU time of the process, or of the Redis servers of the group, over the units):',
  ];
  const components = Object.keys(r.costs.write);
  lines.push(['unit', 'units', 'per s', ...components].join(' | '));
  for (const s of r.steps) {
    lines.push(
      [s.unit, fmt(s.units, 0), fmt(s.units / s.seconds, 0), ...components.map((c) => fmt(s.cpuMicrosPerUnit[c] ?? NaN))].join(' | '),
    );
  }
  for (const s of r.steps) {
    if (s.load)
      lines.push(
        `${s.unit}: ${fmt(s.load.rps, 0)} req/s, p50 ${s.load.latency.p50} ms, p99 ${s.load.latency.p99} ms, non-2xx ${JSON.stringify(s.load.statuses)}`,
      );
  }
  lines.push(`persist jobs for ${fmt(r.steps[0].units, 0)} rows: ${fmt(r.persistJobs, 0)}`);
  const pg = r.postgresBytesPerAttempt;
  lines.push(
    `PostgreSQL per attempt: quiz_sessions ${fmt(pg.quizSessions, 0)} B, attempt_events ${fmt(pg.attemptEvents, 0)} B (${pg.eventsPerAttempt} events)`,
  );
  lines.push('', 'Redis µs per unit, per server:');
  for (const s of r.steps)
    lines.push(
      `  ${s.unit}: ${Object.entries(s.redisServerMicrosPerUnit)
        .map(([n, v]) => `${n} ${fmt(v)}`)
        .join(', ')}`,
    );
  lines.push('', 'Redis commands (INFO commandstats), top 5 per unit by time:');
  for (const s of r.steps) {
    for (const c of s.commands.slice(0, 5)) {
      lines.push(
        `  ${s.unit}: ${c.component} ${c.command}: ${fmt(c.callsPerUnit, 3)} calls, ${fmt(c.usecPerCall, 2)} µs/call, ${fmt(c.usecPerUnit, 2)} µs/unit`,
      );
    }
  }
  for (const p of r.plans) {
    lines.push(
      '',
      `Plan for ${fmt(p.workload.students, 0)} students (${fmt(p.readsPerSecond, 0)} reads/s, ${fmt(p.writesPerSecond, 0)} writes/s, ${fmt(p.rowsPerSecond, 0)} rows/s), single-threaded instances at 60 % of a core:`,
    );
    for (const n of p.needs) lines.push(`  ${n.component}: ${fmt(n.cores, 2)} cores -> ${n.instances}`);
  }
  lines.push('', 'Students per instance at 60 % of a core (what breaks first is the smallest):');
  for (const [c, n] of Object.entries(r.studentsPerInstance).sort((a, b) => a[1] - b[1])) lines.push(`  ${c}: ${fmt(n, 0)}`);
  return lines.join('\n');
}
