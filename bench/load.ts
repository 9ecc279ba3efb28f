import type { IncomingHttpHeaders } from 'node:http';
import autocannon from 'autocannon';
import type { Profile } from './options';
import { LatencyRecorder, round, roundedLatency, type LatencySummary } from './stats';
import { answerFor, QUESTIONS } from './workload';
import { versionFromEtag } from '../test/support/http';

/** What is loaded: the service's API, the bare baseline app, or the baseline app's heavy routes (bench/baseline.ts). */
export type Target = 'service' | 'baseline' | 'heavy';

/** The attempts a run works on, and the version each is at (writes follow it). */
export interface AttemptSet {
  /** Service attempt ids; index i pairs with baseline hash i. */
  ids: string[];
  /** The current version of attempt i, as the last response said. */
  versions: number[];
}

/** The outcome of one measured run. */
export interface RunResult {
  target: Target;
  profile: Profile;
  connections: number;
  seconds: number;
  /** 2xx responses per second. */
  rps: number;
  requests: number;
  ok: number;
  /** Responses other than 2xx, by status. */
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  /** Latency of the 2xx responses, ms. */
  latency: LatencySummary;
  /** Share of one core each process used during the run. */
  cpu?: Record<string, number>;
}

type Request = autocannon.Request;

/** How a run's requests are dressed beyond their profile. */
export interface LoadOptions {
  /** Every write carries an Idempotency-Key of its own (the features' cost run). */
  idempotencyKeys?: boolean;
  /** Requests per second over all connections (autocannon's overallRate); as fast as they go without. */
  rate?: number;
  /** Record the 2xx latencies here (the slices of one interleaved measurement share one); else a recorder of the run's own. */
  latencies?: LatencyRecorder;
}

let keySeq = 0;

/**
 * The requests one connection sends. Connection k owns attempts k, k+C, k+2C, ... (C connections),
 * so no two connections write the same attempt and every write carries the version its own last
 * response reported (a 409 would mean the harness lost track, and is counted).
 */
function connectionRequests(
  target: Target,
  profile: Profile,
  k: number,
  connections: number,
  set: AttemptSet,
  options: LoadOptions,
): Request[] {
  const n = set.ids.length;
  const owned: number[] = [];
  for (let i = k; i < n; i += connections) owned.push(i);
  let sent = 0;
  let current = owned[0];
  const base = target === 'heavy' ? '/heavy' : '/base';
  const readPath = (i: number) => (target === 'service' ? `/api/sessions/${set.ids[i]}` : `${base}/${i}`);
  const writePath = (i: number) => (target === 'service' ? `/api/sessions/${set.ids[i]}/progress` : `${base}/${i}/progress`);
  const writeBody = (i: number, seq: number) => {
    const q = seq % QUESTIONS;
    // the heavy baseline ignores the version; it is sent anyway so all bodies have the same size
    return JSON.stringify({ version: set.versions[i], question_id: `q${q + 1}`, answer: answerFor(q, seq), current_question: q + 1 });
  };
  const setupRequest = (req: Request): Request => {
    const seq = sent++;
    if (profile === 'get') {
      // reads spread over every attempt, as a class of students polling their own pages
      current = Math.floor(Math.random() * n);
      return { ...req, method: 'GET', path: readPath(current), body: undefined, headers: {} };
    }
    const isWrite = profile === 'write' || seq % 5 === 4;
    current = profile === 'write' ? owned[seq % owned.length] : owned[Math.floor(seq / 5) % owned.length];
    if (!isWrite) return { ...req, method: 'GET', path: readPath(current), body: undefined, headers: {} };
    return {
      ...req,
      method: 'PATCH',
      path: writePath(current),
      body: writeBody(current, seq),
      headers: options.idempotencyKeys
        ? { 'content-type': 'application/json', 'idempotency-key': `bench-${process.pid}-${++keySeq}` }
        : { 'content-type': 'application/json' },
    };
  };
  const onResponse = (_status: number, _body: string, _context: object, headers: IncomingHttpHeaders | undefined) => {
    if (target === 'heavy' || !headers) return;
    const version = versionFromEtag(headers.etag ?? (headers as Record<string, string>).ETag);
    if (version !== null) set.versions[current] = version;
  };
  return [{ setupRequest, onResponse }];
}

/** Runs one profile against one target for `seconds` with `connections` keep-alive connections. */
export async function runLoad(
  baseUrl: string,
  target: Target,
  profile: Profile,
  connections: number,
  seconds: number,
  set: AttemptSet,
  options: LoadOptions = {},
): Promise<RunResult> {
  const latencies = options.latencies ?? new LatencyRecorder();
  const statuses: Record<string, number> = {};
  let ok = 0;
  let k = 0;
  const started = process.hrtime.bigint();
  const result = await autocannon({
    url: baseUrl,
    connections,
    duration: seconds,
    pipelining: 1,
    timeout: 10,
    ...(options.rate ? { overallRate: options.rate } : {}),
    setupClient: (client) => {
      client.setRequests(connectionRequests(target, profile, k++, connections, set, options));
      client.on('response', (status: number, _bytes: number, ms: number) => {
        if (status >= 200 && status < 300) {
          ok++;
          latencies.record(ms);
        } else statuses[status] = (statuses[status] ?? 0) + 1;
      });
    },
  });
  const elapsed = Math.min(Number(process.hrtime.bigint() - started) / 1e9, result.duration || seconds);
  const latency = latencies.summary();
  return {
    target,
    profile,
    connections,
    seconds: round(elapsed, 2),
    rps: round(ok / elapsed, 0),
    requests: ok + Object.values(statuses).reduce((a, b) => a + b, 0),
    ok,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: roundedLatency(latency),
  };
}
