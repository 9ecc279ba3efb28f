import { readFileSync } from 'node:fs';
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { SessionRepository } from '../../src/shared/store/sessionRepository';
import { SessionStore } from '../../src/shared/store/sessionStore';
import { pubSubOf } from '../../src/shared/store/channels';
import { sleep, usedMemory, type BenchContext } from '../context';
import { LatencyRecorder, round, type LatencySummary } from '../stats';
import { seededAttempt } from '../workload';
import { JsonClient, mapConcurrent, type JsonResponse } from '../../test/support/http';
import { sampleCpu } from '../cpu';
import { scrapeSum } from '../promHistogram';

/** Streams opened at once while connecting. */
const CONNECT_CONCURRENCY = 200;
/** How long one stream may take from the request to its first `attempt` event. */
const OPEN_TIMEOUT_MS = 20_000;
/** How long all the opens together may take; what is left after it is not tried. */
const OPEN_DEADLINE_MS = 180_000;
/** How long a write's event may take to reach its stream before it counts as never delivered. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** How long one PATCH may take. */
const WRITE_TIMEOUT_MS = 10_000;
/** How long the API may take to count its streams down to 0 after the bench closed them. */
const CLOSE_TIMEOUT_MS = 20_000;
/** The attempts' time limit: an hour, beyond the phase. */
const TIME_LIMIT_SECONDS = 3600;

/** The streams phase's results. */
export interface StreamsResult {
  /** Streams asked for (`--streams`), one per seeded attempt. */
  streams: number;
  seedSeconds: number;
  /** Streams whose first `attempt` event arrived, and those that did not (by reason). */
  opened: number;
  openFailed: number;
  openFailures: Record<string, number>;
  connectConcurrency: number;
  /** From the first request to the last stream's first event. */
  openSeconds: number;
  openPerSecond: number;
  /** Per stream, from its request to its first `attempt` event (ms). */
  firstEvent: LatencySummary;
  /** Seconds waited after the last open before the second memory reading. */
  settleSeconds: number;
  memory: {
    /** VmRSS of the API process (/proc/<pid>/status), bytes, before and after opening. */
    apiRssBefore: number;
    apiRssAfter: number;
    /** (after − before) ÷ streams opened. */
    apiRssBytesPerStream: number;
    /** nodejs_heap_size_used_bytes of the API (its /metrics), no GC forced: a rough figure. */
    apiHeapUsedBefore: number;
    apiHeapUsedAfter: number;
    apiHeapBytesPerStream: number;
    /** Redis used_memory (one channel subscription per stream on the API's subscriber connection). */
    redisUsedBefore: number;
    redisUsedAfter: number;
    redisBytesPerStream: number;
    /** Redis's count of subscribed `session:*:changes` channels (server-wide) before and after. */
    redisChannelsBefore: number;
    redisChannelsAfter: number;
  };
  /** `sse_streams_open` of the API with every stream open. */
  gaugeOpen: number;
  /** The progress writes issued with every stream open. */
  writes: {
    /** Writes per second asked for, and for how long. */
    rate: number;
    seconds: number;
    /** Writes sent and answered 200; what else came back. */
    sent: number;
    ok: number;
    failures: Record<string, number>;
    /** Achieved: writes sent ÷ the seconds sending took. */
    sentPerSecond: number;
    /** PATCH round trip (ms), all writes answered 200. */
    latency: LatencySummary;
    /** Share of a core each process used while the writes ran (the time events included). */
    cpu: Record<string, number>;
  };
  /** From a write's send to its stream's `attempt` event with the write's version (ms). */
  delivery: LatencySummary & {
    count: number;
    /** 200 writes whose event did not arrive within timeoutMs. */
    missing: number;
    timeoutMs: number;
  };
  /** `attempt` events whose data's version differed from their id (expected 0). */
  mismatchedEvents: number;
  /** `time` events received over the phase (one per stream on connect, then one per 15 s). */
  timeEvents: number;
  /** Streams the server ended before the bench closed them. */
  endedByServer: number;
  close: {
    /** `sse_streams_open` once the count settled (0 expected) and how long that took. */
    gaugeAfter: number;
    seconds: number;
  };
}

/** VmRSS of a process in bytes (NaN when it is gone). */
function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Subscribed attempt channels on the Redis server (every client's, every DB: pub/sub is server-wide), plain or sharded as the layout publishes. */
async function attemptChannels(ctx: BenchContext): Promise<number> {
  const channels = (await ctx.stores.redis.call('PUBSUB', pubSubOf().listing, 'session:*:changes')) as unknown[];
  return channels.length;
}

/** One gauge's value (summed over its series) from the API's /metrics; NaN when unreadable. */
const apiGauge = (ctx: BenchContext, name: string): Promise<number> => scrapeSum(`${ctx.apiUrl}/metrics`, name);

const elapsedMs = (since: bigint, until: bigint = process.hrtime.bigint()) => Number(until - since) / 1e6;

/** One open event stream, its SSE parser, and the writes waiting for their event. */
class StreamClient {
  req: ClientRequest | null = null;
  res: IncomingMessage | null = null;
  private buffer = '';
  /** The first `attempt` event's version; -1 until it came. */
  firstVersion = -1;
  /** When each version's event arrived (only kept while a write may ask for it). */
  readonly arrived = new Map<number, bigint>();
  /** Writes waiting for the event of a version. */
  readonly waiting = new Map<number, (at: bigint) => void>();
  closedByBench = false;
  ended = false;
  private onFirst: ((version: number) => void) | null = null;

  constructor(
    readonly attemptId: string,
    private readonly counters: { timeEvents: number; mismatched: number; endedByServer: number },
  ) {}

  /** Requests the stream; resolves with the first event's version, rejects with a reason. */
  open(agent: Agent, url: URL): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.close();
        reject(new Error(reason));
      };
      const timer = setTimeout(() => fail('timeout'), OPEN_TIMEOUT_MS);
      this.onFirst = (version) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(version);
      };
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: 'GET',
          path: `/api/sessions/${this.attemptId}/stream`,
          headers: { accept: 'text/event-stream' },
        },
        (res) => {
          this.res = res;
          if (res.statusCode !== 200) {
            res.resume();
            fail(`status ${res.statusCode}`);
            return;
          }
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => this.feed(chunk));
          res.on('error', () => undefined);
          res.on('close', () => {
            if (!this.ended && !this.closedByBench && settled) this.counters.endedByServer++;
            this.ended = true;
            fail('closed before the first event');
          });
        },
      );
      this.req = req;
      req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
      req.end();
    });
  }

  /** Splits frames on a blank line and reads their `event:`, `id:` and `data:` lines. */
  private feed(chunk: string): void {
    const at = process.hrtime.bigint();
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const frame = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = 'message';
      let id: string | null = null;
      let data = '';
      for (const line of frame.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
      }
      if (event === 'time') this.counters.timeEvents++;
      else if (event === 'attempt') this.attempt(Number(id), data, at);
    }
  }

  private attempt(version: number, data: string, at: bigint): void {
    try {
      if ((JSON.parse(data) as { version?: unknown }).version !== version) this.counters.mismatched++;
    } catch {
      this.counters.mismatched++;
    }
    if (this.firstVersion < 0) {
      this.firstVersion = version;
      this.onFirst?.(version);
      return;
    }
    const waiter = this.waiting.get(version);
    if (waiter) {
      this.waiting.delete(version);
      waiter(at);
    } else this.arrived.set(version, at);
  }

  /** Resolves with when the event of `version` arrived (perhaps already), or null after `timeoutMs`. */
  eventOf(version: number, timeoutMs: number): Promise<bigint | null> {
    const already = this.arrived.get(version);
    if (already !== undefined) {
      this.arrived.delete(version);
      return Promise.resolve(already);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(version);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(version, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }

  close(): void {
    this.closedByBench = true;
    this.req?.destroy();
  }
}

/** A PATCH, rejected with 'timeout' when it takes longer than `ms`. */
function withTimeout(p: Promise<JsonResponse>, ms: number): Promise<JsonResponse> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

const count = (into: Record<string, number>, key: string): void => {
  into[key] = (into[key] ?? 0) + 1;
};

/**
 * Seeds `--streams` timed attempts (one user each) straight into PostgreSQL and Redis as the scale
 * phase does, opens one SSE stream per attempt from this process (200 at a time, each until its
 * first `attempt` event), reads the API's RSS and Redis used_memory before and after, then sends
 * progress writes to random attempts at `--stream-rate` per second for `--stream-seconds` and
 * times each from its send to the arrival of its version's event on the attempt's stream; finally
 * closes every stream and waits for the API's `sse_streams_open` to reach 0.
 */
export async function streamsPhase(ctx: BenchContext): Promise<StreamsResult> {
  const o = ctx.options;
  const n = o.streams;
  const store = new SessionStore(ctx.stores.redis, 1800);
  const repo = new SessionRepository(ctx.knex);
  const apiPid = ctx.cpuTargets.api;

  // seed, as the scale phase does
  const seedStarted = Date.now();
  const ids: string[] = [];
  for (let start = 0; start < n; start += 1000) {
    const now = Date.now();
    const batch = Array.from({ length: Math.min(1000, n - start) }, (_, i) =>
      seededAttempt(`bench-stream-${start + i}`, now, TIME_LIMIT_SECONDS),
    );
    for (let j = 0; j < batch.length; j += 500) await repo.upsertSnapshots(batch.slice(j, j + 500));
    await mapConcurrent(batch.length, 100, (i) => store.fill(batch[i]));
    ids.push(...batch.map((a) => a.id));
  }
  const seedSeconds = (Date.now() - seedStarted) / 1000;
  ctx.log(`streams: seeded ${n} attempts in ${seedSeconds.toFixed(1)} s; opening ${n} streams, ${CONNECT_CONCURRENCY} at a time`);

  const counters = { timeEvents: 0, mismatched: 0, endedByServer: 0 };
  const clients: StreamClient[] = ids.map((id) => new StreamClient(id, counters));
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const json = new JsonClient(ctx.apiUrl, 64);
  const url = new URL(ctx.apiUrl);
  try {
    // let the seeding's client buffers go before the first reading
    await sleep(Math.min(2000, o.streamSettle * 1000 + 500));
    const rssBefore = rssOf(apiPid);
    const heapBefore = await apiGauge(ctx, 'nodejs_heap_size_used_bytes');
    const redisBefore = await usedMemory(ctx);
    const channelsBefore = await attemptChannels(ctx);

    // open
    const openFailures: Record<string, number> = {};
    const firstEvent = new LatencyRecorder();
    const openStarted = process.hrtime.bigint();
    const openDeadline = Date.now() + OPEN_DEADLINE_MS;
    let lastProgress = Date.now();
    await mapConcurrent(n, CONNECT_CONCURRENCY, async (i): Promise<void> => {
      if (Date.now() > openDeadline) return count(openFailures, 'open deadline passed');
      const started = process.hrtime.bigint();
      try {
        await clients[i].open(agent, url);
        firstEvent.record(elapsedMs(started));
      } catch (err) {
        count(openFailures, (err as Error).message);
      }
      if (Date.now() - lastProgress > 10_000) {
        lastProgress = Date.now();
        ctx.log(`streams: ${firstEvent.count} open, ${i + 1 - firstEvent.count} failed so far`);
      }
    });
    const openSeconds = elapsedMs(openStarted) / 1000;
    const open = clients.filter((c) => c.firstVersion >= 0 && !c.ended);
    const openFailed = n - firstEvent.count;
    ctx.log(
      `streams: ${open.length} open in ${openSeconds.toFixed(1)} s` +
        (openFailed ? `, ${openFailed} failed ${JSON.stringify(openFailures)}` : '') +
        `; settling ${o.streamSettle} s`,
    );
    if (open.length === 0) throw new Error(`streams: none of ${n} streams opened (${JSON.stringify(openFailures)})`);

    await sleep(o.streamSettle * 1000);
    const rssAfter = rssOf(apiPid);
    const heapAfter = await apiGauge(ctx, 'nodejs_heap_size_used_bytes');
    const redisAfter = await usedMemory(ctx);
    const channelsAfter = await attemptChannels(ctx);
    const gaugeOpen = await apiGauge(ctx, 'sse_streams_open');
    const perStream = (after: number, before: number) => round((after - before) / open.length, 0);
    ctx.log(
      `streams: API RSS ${round(rssBefore / 2 ** 20, 1)} -> ${round(rssAfter / 2 ** 20, 1)} MiB ` +
        `(${perStream(rssAfter, rssBefore)} B per stream), Redis ${perStream(redisAfter, redisBefore)} B per stream ` +
        `(${channelsBefore} -> ${channelsAfter} attempt channels), gauge ${gaugeOpen}`,
    );

    // writes at a steady rate, each to a random open stream's attempt
    const total = Math.max(1, Math.round(o.streamRate * o.streamSeconds));
    ctx.log(`streams: ${total} progress writes at ${o.streamRate}/s with ${open.length} streams open`);
    const writeLatency = new LatencyRecorder();
    const delivery = new LatencyRecorder();
    const writeFailures: Record<string, number> = {};
    let ok = 0;
    let missing = 0;
    const oneWrite = async (k: number): Promise<void> => {
      const client = open[Math.floor(Math.random() * open.length)];
      const sentAt = process.hrtime.bigint();
      let res: JsonResponse;
      try {
        res = await withTimeout(
          json.send('PATCH', `/api/sessions/${client.attemptId}/progress`, { question_id: `q${(k % 20) + 1}`, answer: `A${k}` }),
          WRITE_TIMEOUT_MS,
        );
      } catch (err) {
        count(writeFailures, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
        return;
      }
      if (res.status !== 200) return count(writeFailures, `status ${res.status}`);
      ok++;
      writeLatency.record(res.ms);
      const version = typeof res.body?.version === 'number' ? res.body.version : res.version;
      if (version === null) return count(writeFailures, 'no version in the answer');
      const at = await client.eventOf(version, DELIVERY_TIMEOUT_MS);
      if (at === null) missing++;
      else delivery.record(elapsedMs(sentAt, at));
    };
    const cpu = sampleCpu(ctx.cpuTargets);
    const writesStarted = performance.now();
    const inFlight: Promise<void>[] = [];
    for (let k = 0; k < total; k++) {
      const wait = writesStarted + (k * 1000) / o.streamRate - performance.now();
      if (wait >= 1) await sleep(wait);
      inFlight.push(oneWrite(k));
    }
    const sendSeconds = (performance.now() - writesStarted) / 1000;
    await Promise.all(inFlight);
    const writeCpu = cpu();
    const deliveredSummary = delivery.summary();
    ctx.log(
      `streams: ${ok}/${total} writes ok, delivered ${delivery.count} (p50 ${round(deliveredSummary.p50)} ms, ` +
        `p99 ${round(deliveredSummary.p99)} ms), ${missing} missing`,
    );

    // close, and the gauge back to 0
    for (const c of clients) c.close();
    const closeStarted = Date.now();
    let gaugeAfter = await apiGauge(ctx, 'sse_streams_open');
    while (!(gaugeAfter === 0) && Date.now() - closeStarted < CLOSE_TIMEOUT_MS) {
      await sleep(250);
      gaugeAfter = await apiGauge(ctx, 'sse_streams_open');
    }
    const closeSeconds = (Date.now() - closeStarted) / 1000;
    ctx.log(`streams: closed; sse_streams_open ${gaugeAfter} after ${closeSeconds.toFixed(1)} s`);

    const r2 = (s: LatencySummary): LatencySummary => ({
      p50: round(s.p50),
      p90: round(s.p90),
      p99: round(s.p99),
      max: round(s.max),
      mean: round(s.mean),
    });
    return {
      streams: n,
      seedSeconds: round(seedSeconds, 1),
      opened: firstEvent.count,
      openFailed,
      openFailures,
      connectConcurrency: CONNECT_CONCURRENCY,
      openSeconds: round(openSeconds, 2),
      openPerSecond: round(firstEvent.count / openSeconds, 0),
      firstEvent: r2(firstEvent.summary()),
      settleSeconds: o.streamSettle,
      memory: {
        apiRssBefore: rssBefore,
        apiRssAfter: rssAfter,
        apiRssBytesPerStream: perStream(rssAfter, rssBefore),
        apiHeapUsedBefore: heapBefore,
        apiHeapUsedAfter: heapAfter,
        apiHeapBytesPerStream: perStream(heapAfter, heapBefore),
        redisUsedBefore: redisBefore,
        redisUsedAfter: redisAfter,
        redisBytesPerStream: perStream(redisAfter, redisBefore),
        redisChannelsBefore: channelsBefore,
        redisChannelsAfter: channelsAfter,
      },
      gaugeOpen,
      writes: {
        rate: o.streamRate,
        seconds: o.streamSeconds,
        sent: total,
        ok,
        failures: writeFailures,
        sentPerSecond: round(total / sendSeconds, 1),
        latency: r2(writeLatency.summary()),
        cpu: writeCpu,
      },
      delivery: { ...r2(deliveredSummary), count: delivery.count, missing, timeoutMs: DELIVERY_TIMEOUT_MS },
      mismatchedEvents: counters.mismatched,
      timeEvents: counters.timeEvents,
      endedByServer: counters.endedByServer,
      close: { gaugeAfter, seconds: round(closeSeconds, 1) },
    };
  } finally {
    // on success they are closed already; on a failure this is what leaves no socket behind
    for (const c of clients) c.close();
    agent.destroy();
    json.close();
  }
}
