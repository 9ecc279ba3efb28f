/**
 * `npm run soak [-- --minutes 10 --connections 100]` (not in CI): the service as real processes
 * (API, persist worker, lifecycle worker) on a private redis-server (AOF everysec, noeviction) and
 * its own PostgreSQL database, under mixed load for a while: pairs of connections share an
 * attempt (start and resume, versioned progress racing each other, reads, complete or abandon, then
 * the next quiz). Reports errors other than the contract's 409s (target zero), heap and RSS of
 * each process (every 5 s) and p99 in the first and the last window (a minute each, a quarter of
 * the run when shorter), Redis memory at the start and the end, and whether the write-behind
 * catches up afterwards. Exits 1 when an error was seen or the write-behind did not catch up.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { DIRTY_SET_KEY } from '../src/shared/store/sessionStore';
import { createIsolatedStores } from '../test/support/isolatedStores';
import { killAllProcesses, startProcess } from '../test/support/processes';
import { startRedisServer } from '../test/support/redisServer';
import { LoadHttpClient, type LoadResponse } from '../test/support/http';
import { freePort } from '../test/support/ports';

interface SoakOptions {
  minutes: number;
  connections: number;
  /** The write-behind window of the run (the service's default is 30). */
  persistDelay: number;
  /** Pause between a connection's requests. */
  thinkMs: number;
}

function parseOptions(argv: string[]): SoakOptions {
  const options: SoakOptions = { minutes: 10, connections: 100, persistDelay: 30, thinkMs: 0 };
  const names: Record<string, keyof SoakOptions> = {
    '--minutes': 'minutes',
    '--connections': 'connections',
    '--persist-delay': 'persistDelay',
    '--think-ms': 'thinkMs',
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const key = names[flag];
    const value = Number(inline ?? argv[++i]);
    if (!key || !Number.isFinite(value) || value < 0) {
      process.stderr.write(`usage: npm run soak -- [--minutes 10] [--connections 100] [--persist-delay 30] [--think-ms 0]\n`);
      process.exit(2);
    }
    options[key] = value;
  }
  if (options.connections < 2 || options.connections % 2)
    throw new Error('--connections must be an even number ≥ 2 (connections work in pairs)');
  return options;
}

const log = (message: string) => process.stderr.write(`[soak] ${message}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Latencies and outcomes, per second of the run. */
class Recorder {
  readonly latencies = new Map<number, number[]>();
  readonly outcomes = new Map<string, number>();
  readonly errors: string[] = [];
  requests = 0;

  constructor(private readonly startedAt: number) {}

  /** Records one response; `outcome` names what it was (`progress 200`, `progress 409 contract`, …). */
  record(res: LoadResponse, outcome: string, isError: boolean): void {
    this.requests++;
    const second = Math.floor((res.at - this.startedAt) / 1000);
    const list = this.latencies.get(second);
    if (list) list.push(res.ms);
    else this.latencies.set(second, [res.ms]);
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    if (isError && this.errors.length < 20) this.errors.push(`${outcome}: ${res.error ?? JSON.stringify(res.body).slice(0, 300)}`);
  }

  errorCount(): number {
    let n = 0;
    for (const [outcome, count] of this.outcomes) if (outcome.endsWith(' ERROR')) n += count;
    return n;
  }

  /** Percentile `p` (0..1) of the latencies between seconds [from, to). */
  percentile(p: number, from: number, to: number): { value: number; count: number } {
    const all: number[] = [];
    for (let s = from; s < to; s++) for (const ms of this.latencies.get(s) ?? []) all.push(ms);
    if (all.length === 0) return { value: Number.NaN, count: 0 };
    all.sort((a, b) => a - b);
    return { value: all[Math.min(all.length - 1, Math.floor(p * all.length))], count: all.length };
  }
}

/** True when a 409 is the SESSION_CONFLICT contract: retry hints and the current attempt. */
function isConflictContract(res: LoadResponse): boolean {
  const b = res.body;
  return (
    res.status === 409 &&
    b?.errorCode === 'SESSION_CONFLICT' &&
    res.headers['retry-after'] === '1' &&
    b.retryable === true &&
    b.retryAfterSeconds === 1 &&
    typeof b.session?.version === 'number'
  );
}

/** What a closed attempt answers when the partner closed it: 409 SESSION_COMPLETED or 410 SESSION_EXPIRED. */
const closedByPartner = (res: LoadResponse) =>
  (res.status === 409 && res.body?.errorCode === 'SESSION_COMPLETED') || (res.status === 410 && res.body?.errorCode === 'SESSION_EXPIRED');

/**
 * One connection of a pair: both start (or resume) the same user's attempt of the same quiz, write
 * answers with the version they last saw, read now and then, and close it (complete 70 %, abandon
 * 20 %, leave it open 10 %); then the next quiz.
 */
async function connection(
  http: LoadHttpClient,
  url: string,
  rec: Recorder,
  user: string,
  side: number,
  until: () => boolean,
  thinkMs: number,
): Promise<void> {
  const call = async (method: string, path: string, body: unknown, what: string, expected: (r: LoadResponse) => string | null) => {
    const res = await http.call(url, method, path, body);
    const outcome = expected(res);
    rec.record(res, outcome ? `${what} ${outcome}` : `${what} ${res.status} ERROR`, outcome === null);
    if (thinkMs) await sleep(thinkMs);
    return { res, ok: outcome !== null };
  };
  for (let quiz = 0; until(); quiz++) {
    // the pair agrees on what to do with this quiz from its number
    const plan = (quiz * 7 + user.length) % 10;
    const started = await call('POST', '/api/sessions/start', { user_id: user, quiz_id: quiz, time_limit_seconds: 1800 }, 'start', (r) =>
      r.status === 201 || r.status === 200 ? String(r.status) : null,
    );
    if (!started.ok) continue;
    const id: string = started.res.body.id;
    let version: number = started.res.body.version;
    const writes = 10 + ((quiz * 13) % 20);
    let closed = false;
    for (let n = 0; n < writes && until() && !closed; n++) {
      if (n % 5 === 4) {
        const read = await call('GET', `/api/sessions/${id}`, undefined, 'read', (r) =>
          r.status === 200 ? '200' : closedByPartner(r) ? 'closed by partner' : null,
        );
        if (read.res.status === 200) version = read.res.body.version;
        else if (read.ok) closed = true;
        continue;
      }
      const body = { answers: { [`q${(n * 3 + side) % 40}`]: { pick: n, side } }, current_question: n, version };
      const wrote = await call('PATCH', `/api/sessions/${id}/progress`, body, 'progress', (r) =>
        r.status === 200 ? '200' : isConflictContract(r) ? '409 contract' : closedByPartner(r) ? 'closed by partner' : null,
      );
      if (wrote.res.status === 200) version = wrote.res.body.version;
      else if (isConflictContract(wrote.res)) version = wrote.res.body.session.version;
      else if (wrote.ok) closed = true;
    }
    if (closed || plan === 9) continue; // left open: the next start of this quiz resumes it
    const action = plan < 7 ? 'complete' : 'abandon';
    await call('POST', `/api/sessions/${id}/${action}`, {}, action, (r) =>
      r.status === 200 ? '200' : closedByPartner(r) ? 'closed by partner' : null,
    );
  }
}

/** The value of a gauge (first series) in a Prometheus text page. */
function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

interface MemorySample {
  atSeconds: number;
  processes: Record<string, { heapUsedMb: number; rssMb: number }>;
  redisUsedMb: number;
  redisUsedBytes: number;
  redisKeys: number;
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function main(options: SoakOptions): Promise<number> {
  const stores = await createIsolatedStores();
  const redisServer = await startRedisServer({ appendfsync: 'everysec' });
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: 3 });
  const onSignal = () => {
    log('interrupted: stopping');
    void killAllProcesses()
      .then(() => redisServer.close())
      .then(() => stores.destroy())
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const env = {
      ...stores.env,
      REDIS_URL: redisServer.url,
      NODE_ENV: 'production',
      // the young generation the Procfile, scripts/start.sh and the Dockerfile give every role
      NODE_OPTIONS: '--max-semi-space-size=64',
      LOG_LEVEL: 'warn',
      PERSIST_DELAY_SECONDS: options.persistDelay,
    };
    const [persistPort, lifecyclePort] = [await freePort(), await freePort()];
    const [api] = await Promise.all([
      startProcess('api', env),
      startProcess('persist-worker', { ...env, LOG_LEVEL: 'info', METRICS_PORT: persistPort }),
      startProcess('lifecycle-worker', { ...env, LOG_LEVEL: 'info', METRICS_PORT: lifecyclePort }),
    ]);
    const metricsUrls: Record<string, string> = {
      api: `${api.url}/metrics`,
      'persist-worker': `http://127.0.0.1:${persistPort}/metrics`,
      'lifecycle-worker': `http://127.0.0.1:${lifecyclePort}/metrics`,
    };
    const startedAt = Date.now();
    const sample = async (): Promise<MemorySample> => {
      const processes: MemorySample['processes'] = {};
      for (const [role, url] of Object.entries(metricsUrls)) {
        const text = await (await fetch(url)).text();
        processes[role] = {
          heapUsedMb: mb(metricValue(text, 'nodejs_heap_size_used_bytes')),
          rssMb: mb(metricValue(text, 'process_resident_memory_bytes')),
        };
      }
      const info = await redis.info('memory');
      const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
      return {
        atSeconds: Math.round((Date.now() - startedAt) / 1000),
        processes,
        redisUsedMb: mb(used),
        redisUsedBytes: used,
        redisKeys: await redis.dbsize(),
      };
    };
    // Redis before any attempt: what an empty deployment (queues, scheduler) takes
    const idle = await sample();

    log(
      `${options.connections} connections for ${options.minutes} min against ${api.url} (pids api ${api.pid}); PostgreSQL ${stores.databaseUrl.replace(/\/\/[^@]*@/, '//')}, Redis ${redisServer.url}`,
    );
    const durationMs = options.minutes * 60_000;
    const endsAt = startedAt + durationMs;
    const rec = new Recorder(startedAt);
    const http = new LoadHttpClient({ maxSockets: options.connections, timeoutMs: 10_000 });
    const run = `soak-${randomUUID().slice(0, 8)}`;
    const until = () => Date.now() < endsAt;
    const loops = Array.from({ length: options.connections }, (_, n) =>
      connection(http, api.url!, rec, `${run}-u${Math.floor(n / 2)}`, n % 2, until, options.thinkMs),
    );

    // memory every 5 s (one reading of a heap is mostly where the GC happens to be: the windows'
    // floors and peaks are what show a leak); a progress line every minute
    const samples: MemorySample[] = [];
    const sampler = (async () => {
      let nextLog = startedAt + 60_000;
      while (until()) {
        await sleep(5000);
        if (!until()) break;
        const s = await sample();
        samples.push(s);
        if (Date.now() >= nextLog) {
          nextLog += 60_000;
          const second = Math.floor((Date.now() - startedAt) / 1000);
          const p99 = rec.percentile(0.99, second - 60, second);
          log(
            `${s.atSeconds}s: ${rec.requests} requests, ${rec.errorCount()} errors, p99 ${p99.value} ms (last minute), api heap ${s.processes.api.heapUsedMb} MB rss ${s.processes.api.rssMb} MB, redis ${s.redisUsedMb} MB ${s.redisKeys} keys`,
          );
        }
      }
    })();
    await Promise.all(loops);
    await sampler;
    const endSample = await sample();
    samples.push(endSample);
    const elapsedS = (Date.now() - startedAt) / 1000;
    http.close();

    // the write-behind catches up: nothing dirty within a window plus queue lag
    const settleStarted = Date.now();
    let dirty = await redis.zcard(DIRTY_SET_KEY);
    while (dirty > 0 && Date.now() - settleStarted < (options.persistDelay + 20) * 1000) {
      await sleep(500);
      dirty = await redis.zcard(DIRTY_SET_KEY);
    }
    const settledS = Math.round((Date.now() - settleStarted) / 100) / 10;
    const rows = Number((await stores.knex.raw('select count(*)::int as n from quiz_sessions')).rows[0].n);

    const windowS = Math.max(5, Math.min(60, Math.floor(durationMs / 4000)));
    const lastSecond = Math.floor(durationMs / 1000);
    const first = rec.percentile(0.99, 0, windowS);
    const last = rec.percentile(0.99, lastSecond - windowS, lastSecond);
    const overall = rec.percentile(0.99, 0, lastSecond + 1);
    const p50 = rec.percentile(0.5, 0, lastSecond + 1);
    const firstSamples = samples.filter((m) => m.atSeconds <= windowS);
    const lastSamples = samples.filter((m) => m.atSeconds >= lastSecond - windowS);
    const start = samples[0];
    const roles = Object.keys(metricsUrls);
    const memoryOf = (list: MemorySample[]) =>
      Object.fromEntries(
        roles.map((role) => {
          const heap = list.map((m) => m.processes[role].heapUsedMb);
          const rss = list.map((m) => m.processes[role].rssMb);
          return [role, { heapUsedMinMb: Math.min(...heap), heapUsedMaxMb: Math.max(...heap), rssMaxMb: Math.max(...rss) }];
        }),
      );
    const memFirst = memoryOf(firstSamples.length ? firstSamples : [start]);
    const memLast = memoryOf(lastSamples);
    const report = {
      date: new Date(startedAt).toISOString(),
      minutes: options.minutes,
      connections: options.connections,
      persistDelaySeconds: options.persistDelay,
      requests: rec.requests,
      requestsPerSecond: Math.round(rec.requests / elapsedS),
      errors: rec.errorCount(),
      errorSamples: rec.errors,
      outcomes: Object.fromEntries([...rec.outcomes].sort()),
      latencyMs: {
        p50: p50.value,
        p99: overall.value,
        p99FirstWindow: first.value,
        p99LastWindow: last.value,
        windowSeconds: windowS,
        p99DriftMs: last.value - first.value,
      },
      memory: { windowSeconds: windowS, firstWindow: memFirst, lastWindow: memLast, redisStart: start, redisEnd: endSample },
      afterLoad: { dirtyLeft: dirty, settledSeconds: settledS, rowsInPostgres: rows },
    };
    // attempts stay cached for SESSION_CACHE_TTL_SECONDS (30 min), so Redis grows with the attempts
    // started in that time; what must stay flat is the memory per key
    const perKey = (m: MemorySample) => Math.round((m.redisUsedBytes - idle.redisUsedBytes) / Math.max(1, m.redisKeys - idle.redisKeys));
    const line = (role: string) =>
      `| ${role} heap used (floor–peak) | ${memFirst[role].heapUsedMinMb}–${memFirst[role].heapUsedMaxMb} MB | ${memLast[role].heapUsedMinMb}–${memLast[role].heapUsedMaxMb} MB |\n` +
      `| ${role} RSS (peak) | ${memFirst[role].rssMaxMb} MB | ${memLast[role].rssMaxMb} MB |`;
    process.stdout.write(
      [
        `Soak: ${options.minutes} min, ${options.connections} connections, ${report.requests} requests (${report.requestsPerSecond}/s), errors other than contract 409s: ${report.errors}`,
        `outcomes: ${JSON.stringify(report.outcomes)}`,
        `latency: p50 ${p50.value} ms, p99 ${overall.value} ms; p99 first ${windowS} s ${first.value} ms, last ${windowS} s ${last.value} ms (drift ${report.latencyMs.p99DriftMs} ms)`,
        `after the load: dirty set empty: ${dirty === 0} (after ${settledS} s), ${rows} attempts in PostgreSQL`,
        '',
        `| every 5 s | first ${windowS} s | last ${windowS} s |`,
        '|---|---|---|',
        ...roles.map(line),
        `| Redis used_memory (at ${start.atSeconds} s, at the end) | ${start.redisUsedMb} MB | ${endSample.redisUsedMb} MB |`,
        `| Redis keys | ${start.redisKeys} | ${endSample.redisKeys} |`,
        `| Redis bytes per key (above the ${idle.redisUsedMb} MB of an idle deployment) | ${perKey(start)} | ${perKey(endSample)} |`,
        '',
        JSON.stringify(report),
        '',
      ].join('\n'),
    );
    for (const e of rec.errors) log(`error: ${e}`);
    return report.errors === 0 && dirty === 0 ? 0 : 1;
  } finally {
    await killAllProcesses();
    redis.disconnect();
    await redisServer.close();
    await stores.destroy();
  }
}

main(parseOptions(process.argv.slice(2))).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`[soak] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
