import { LoadHttpClient, type LoadResponse } from './http';

/*
 * A steady load of versioned progress writes for the fault tests, and the checks that nothing it
 * got acknowledged was lost. Every client owns a few answer keys of one attempt and writes unique
 * values ({c: client, s: seq}) with the version it last saw; a 409 gives it the current version.
 * A write whose outcome it could not see (503, 5xx, timeout, connection error) is sent again,
 * unchanged, until an answer settles it: a 200, or a session in a 409/410 body that shows whether
 * the earlier try applied. So every write ends acked, seen (applied, seen in a later body),
 * rejected, or unknown (the load stopped first).
 */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** An attempt the load writes to. */
export interface LoadAttempt {
  id: string;
  /** Its version now (1 for a fresh start). */
  version: number;
  /** How many clients write to it at once, each with its own keys (default 1). */
  clients?: number;
  /** Epoch ms from which each of its clients completes the attempt (instead of writing on). */
  completeAt?: number;
  /** Epoch ms from which its clients stop writing, so the attempt idles into its deadline. */
  stopWritingAt?: number;
}

/** What happened to one write. */
export type WriteState = 'acked' | 'seen' | 'rejected' | 'unknown';

/** One progress write of a client. */
export interface WriteRecord {
  attemptId: string;
  client: number;
  seq: number;
  key: string;
  value: { c: number; s: number };
  state: WriteState;
  /** The version the 200 acknowledged (acked), or the version the write applied at when a later body showed it (seen). */
  version: number | null;
  /** Epoch ms of the acknowledgement (acked). */
  ackedAt: number | null;
  /** True when some try of it got no definite answer (503, 5xx, timeout, connection error). */
  ambiguous: boolean;
}

/** A close a client did (complete) or ran into (409 SESSION_COMPLETED, 410 SESSION_EXPIRED). */
export interface CloseRecord {
  attemptId: string;
  client: number;
  how: 'complete' | 'found-closed';
  status: string;
  version: number;
  at: number;
}

/** One response (or failure) the load saw. */
export interface ResponseEvent {
  at: number;
  ms: number;
  status: number;
  error?: string;
  errorCode?: string;
}

/** Settings of a load. */
export interface ProgressLoadOptions {
  /** API base URLs; client n uses urls[n % urls.length]. */
  urls: readonly string[];
  attempts: readonly LoadAttempt[];
  /** Pause between a client's writes (default 20 ms, with ±50 % jitter). */
  thinkMs?: number;
  /** Bound of each request; past it the request counts as a timeout (default 3000). */
  timeoutMs?: number;
  /** Answer keys each client rotates over (default 10). */
  keysPerClient?: number;
  /** Pause before sending again after a 503 or a failure (default 100 ms). */
  retryPauseMs?: number;
  /** Route prefix (default /api/sessions). */
  prefix?: string;
  /**
   * Each client's first write comes at a random moment within this many ms (default one think
   * time), which spreads the attempts' write-behind windows apart.
   */
  startSpreadMs?: number;
}

/** Totals of a load, for the figures line. */
export interface LoadTotals {
  requests: number;
  acked: number;
  seen: number;
  unknown: number;
  conflicts: number;
  s503: number;
  /** 5xx other than 503. */
  s5xx: number;
  timeouts: number;
  networkErrors: number;
  /** Any other status that is not a 200, 409 or 410. */
  unexpected: number;
  maxMs: number;
}

const sameValue = (found: unknown, value: { c: number; s: number }): boolean =>
  typeof found === 'object' && found !== null && (found as { c?: unknown }).c === value.c && (found as { s?: unknown }).s === value.s;

/** Runs client loops against the API until `stop()`; records every write and response. */
export class ProgressLoad {
  readonly writes: WriteRecord[] = [];
  readonly closes: CloseRecord[] = [];
  readonly events: ResponseEvent[] = [];
  /** Responses that broke the contract (a 500, an unexpected status or body), with what was sent. */
  readonly anomalies: string[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly http: LoadHttpClient;
  private readonly opts: Required<ProgressLoadOptions>;

  constructor(options: ProgressLoadOptions) {
    this.opts = {
      thinkMs: 20,
      timeoutMs: 3000,
      keysPerClient: 10,
      retryPauseMs: 100,
      prefix: '/api/sessions',
      startSpreadMs: options.thinkMs ?? 20,
      ...options,
    };
    const clients = options.attempts.reduce((n, a) => n + (a.clients ?? 1), 0);
    this.http = new LoadHttpClient({ maxSockets: clients + 4, timeoutMs: this.opts.timeoutMs });
  }

  /** Starts every client loop. */
  start(): this {
    this.running = true;
    let n = 0;
    for (const attempt of this.opts.attempts) {
      for (let c = 0; c < (attempt.clients ?? 1); c++) {
        const url = this.opts.urls[n % this.opts.urls.length];
        this.loops.push(this.clientLoop(attempt, c, url));
        n++;
      }
    }
    return this;
  }

  /** Stops the clients after their request in flight and waits for them. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.http.close();
  }

  /**
   * Totals over the responses between `from` and `to` (epoch ms; everything by default): acked
   * counts the acknowledgements in that time, seen and unknown are over the whole run.
   */
  totals(from = 0, to = Number.POSITIVE_INFINITY): LoadTotals {
    const events = this.events.filter((e) => e.at >= from && e.at <= to);
    const writes = this.writes.filter((w) => w.ackedAt === null || (w.ackedAt >= from && w.ackedAt <= to));
    return {
      requests: events.length,
      acked: writes.filter((w) => w.state === 'acked').length,
      seen: writes.filter((w) => w.state === 'seen').length,
      unknown: writes.filter((w) => w.state === 'unknown').length,
      conflicts: events.filter((e) => e.status === 409 && e.errorCode === 'SESSION_CONFLICT').length,
      s503: events.filter((e) => e.status === 503).length,
      s5xx: events.filter((e) => e.status >= 500 && e.status !== 503).length,
      timeouts: events.filter((e) => e.error === 'timeout').length,
      networkErrors: events.filter((e) => e.status === 0 && e.error !== 'timeout').length,
      unexpected: events.filter(
        (e) => e.status !== 0 && e.status !== 200 && e.status !== 409 && e.status !== 410 && e.status !== 503 && e.status < 500,
      ).length,
      maxMs: events.reduce((m, e) => Math.max(m, e.ms), 0),
    };
  }

  /** The first 200 at or after `from` (epoch ms), or null. */
  firstAckAfter(from: number): number | null {
    let first: number | null = null;
    for (const w of this.writes) if (w.ackedAt !== null && w.ackedAt >= from && (first === null || w.ackedAt < first)) first = w.ackedAt;
    return first;
  }

  private record(res: LoadResponse): void {
    const errorCode = typeof res.body === 'object' && res.body !== null ? (res.body as { errorCode?: string }).errorCode : undefined;
    this.events.push({ at: res.at, ms: res.ms, status: res.status, error: res.error, errorCode });
  }

  private async clientLoop(attempt: LoadAttempt, client: number, url: string): Promise<void> {
    const { prefix, keysPerClient, thinkMs, retryPauseMs, startSpreadMs } = this.opts;
    let version = attempt.version;
    await sleep(Math.random() * startSpreadMs);
    for (let seq = 0; this.running; seq++) {
      if (attempt.stopWritingAt !== undefined && Date.now() >= attempt.stopWritingAt) return;
      if (attempt.completeAt !== undefined && Date.now() >= attempt.completeAt) {
        await this.complete(attempt.id, client, url);
        return;
      }
      const write: WriteRecord = {
        attemptId: attempt.id,
        client,
        seq,
        key: `c${client}k${seq % keysPerClient}`,
        value: { c: client, s: seq },
        state: 'unknown',
        version: null,
        ackedAt: null,
        ambiguous: false,
      };
      this.writes.push(write);
      for (;;) {
        if (!this.running) return; // the write stays unknown when it was ambiguous, else it was never sent
        const body = { answers: { [write.key]: write.value }, current_question: seq % 100, version };
        const res = await this.http.call(url, 'PATCH', `${prefix}/${attempt.id}/progress`, body);
        this.record(res);
        const session = res.body?.session;
        if (res.status === 200) {
          write.state = 'acked';
          write.version = res.body.version;
          write.ackedAt = res.at;
          version = res.body.version;
          break;
        }
        if ((res.status === 409 || res.status === 410) && session) {
          // an earlier try that applied shows in the session: the key holds this write's value
          // (every try since the last 409 that did not show it carried `version`, and a write sent
          // with a version applies only at that version + 1; the session's own version may be past
          // it: later writes of other clients, or the close itself)
          if (write.ambiguous && sameValue(session.answers?.[write.key], write.value)) {
            write.state = 'seen';
            write.version = version + 1;
          }
          version = session.version;
          if (res.body.errorCode === 'SESSION_CONFLICT') {
            if (write.state === 'seen') break;
            continue; // not applied: send it again with the current version
          }
          if (write.state !== 'seen') write.state = 'rejected';
          this.closes.push({
            attemptId: attempt.id,
            client,
            how: 'found-closed',
            status: session.status,
            version: session.version,
            at: res.at,
          });
          return;
        }
        if (res.status === 503 || res.status >= 500 || res.status === 0) {
          if (res.status >= 500 && res.status !== 503)
            this.anomalies.push(`${res.status} on progress of ${attempt.id}: ${JSON.stringify(res.body)}`);
          write.ambiguous = true;
          await sleep(retryPauseMs);
          continue;
        }
        this.anomalies.push(`${res.status} on progress of ${attempt.id} (sent ${JSON.stringify(body)}): ${JSON.stringify(res.body)}`);
        write.state = 'rejected';
        break;
      }
      await sleep(thinkMs * (0.5 + Math.random()));
    }
  }

  /** Completes the attempt, sending again until a definite answer. */
  private async complete(id: string, client: number, url: string): Promise<void> {
    while (this.running) {
      const res = await this.http.call(url, 'POST', `${this.opts.prefix}/${id}/complete`, {});
      this.record(res);
      if (res.status === 200) {
        this.closes.push({ attemptId: id, client, how: 'complete', status: res.body.status, version: res.body.version, at: res.at });
        return;
      }
      if (res.status === 409 || res.status === 410) {
        const session = res.body?.session;
        if (session)
          this.closes.push({ attemptId: id, client, how: 'found-closed', status: session.status, version: session.version, at: res.at });
        return;
      }
      if (res.status !== 503 && res.status !== 0) this.anomalies.push(`${res.status} on complete of ${id}: ${JSON.stringify(res.body)}`);
      await sleep(this.opts.retryPauseMs);
    }
  }
}

/** An attempt's final state as a store holds it. */
export interface FinalAttempt {
  version: number;
  status: string;
  answers: Record<string, unknown>;
}

/** What the check of acknowledged writes against one store found. */
export interface DurabilityCheck {
  /** Acknowledged writes (200). */
  acked: number;
  /** Acknowledged writes whose value is there, or was overwritten by a later write of the same client. */
  found: number;
  /** The acknowledged writes that are not. */
  lost: WriteRecord[];
  /** Attempts whose final version is below the highest version acknowledged for them. */
  behind: Array<{ id: string; acked: number; final: number | null }>;
}

/**
 * Checks every acknowledged write against `finals`: the key must hold its value, or the value of a
 * later write of the same client to the same key that applied or may have applied (acked, seen,
 * unknown); and the attempt's version must be at least the highest acknowledged one.
 */
export function checkDurability(writes: readonly WriteRecord[], finals: ReadonlyMap<string, FinalAttempt>): DurabilityCheck {
  const byKey = new Map<string, WriteRecord[]>();
  for (const w of writes) {
    if (w.state === 'rejected') continue;
    const k = `${w.attemptId}/${w.key}`;
    const list = byKey.get(k);
    if (list) list.push(w);
    else byKey.set(k, [w]);
  }
  const lost: WriteRecord[] = [];
  let acked = 0;
  for (const list of byKey.values()) {
    list.sort((a, b) => a.seq - b.seq);
    const held = finals.get(list[0].attemptId)?.answers[list[0].key];
    // index of the latest write whose value the store holds
    let holds = -1;
    list.forEach((w, i) => {
      if (sameValue(held, w.value)) holds = i;
    });
    list.forEach((w, i) => {
      if (w.state !== 'acked') return;
      acked++;
      if (holds < i) lost.push(w);
    });
  }
  const maxAcked = new Map<string, number>();
  for (const w of writes) if (w.state === 'acked') maxAcked.set(w.attemptId, Math.max(maxAcked.get(w.attemptId) ?? 0, w.version!));
  const behind = [...maxAcked]
    .filter(([id, v]) => (finals.get(id)?.version ?? 0) < v)
    .map(([id, v]) => ({ id, acked: v, final: finals.get(id)?.version ?? null }));
  return { acked, found: acked - lost.length, lost, behind };
}

/** The acknowledged versions of each attempt, sorted. */
export function ackedVersions(writes: readonly WriteRecord[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const w of writes) {
    if (w.state !== 'acked') continue;
    const list = out.get(w.attemptId);
    if (list) list.push(w.version!);
    else out.set(w.attemptId, [w.version!]);
  }
  for (const list of out.values()) list.sort((a, b) => a - b);
  return out;
}

/** The highest version of an applied progress write (acked, or seen) of the attempt, or its start version. */
export function lastAppliedVersion(writes: readonly WriteRecord[], attempt: LoadAttempt): number {
  let v = attempt.version;
  for (const w of writes)
    if (w.attemptId === attempt.id && (w.state === 'acked' || w.state === 'seen') && w.version !== null) v = Math.max(v, w.version);
  return v;
}
