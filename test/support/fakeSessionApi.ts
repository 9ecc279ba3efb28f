import { randomUUID } from 'node:crypto';
import type { Attempt } from '../../src/client';

/*
 * An in-memory fake of the session API's HTTP surface as the client library uses it (start,
 * progress with the version check and idempotency keys, complete, client events, the attempt's
 * stream), served through a fake `fetch`. For the client's unit tests only: the real rules are
 * tested against the real service (test/client.integration.test.ts and the API tests).
 */

type Json = Record<string, unknown>;

/** One request the fake received. */
export interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Json | undefined;
}

/** A stream a client opened: push frames into it, or end it. */
export interface FakeStream {
  lastEventId: string | undefined;
  send(event: string, data: unknown, id?: string): void;
  end(): void;
}

const ISO = (ms: number) => new Date(ms).toISOString();

export class FakeSessionApi {
  readonly received: Received[] = [];
  readonly streams: FakeStream[] = [];
  attempt: Attempt | null = null;
  /** Every fetch fails as with no network while true. */
  offline = false;
  /** While set, client events are answered only once it settles. */
  holdEvents: Promise<void> | null = null;
  /** The next progress write applies but its response is lost (the connection drops on the way back). */
  loseNextResponse = false;
  /** Kept responses by Idempotency-Key. */
  private readonly kept = new Map<string, { status: number; body: unknown; fingerprint: string }>();
  private readonly now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? (() => Date.now());
  }

  /** The attempt the fake starts with (a fresh one for `user` at `quiz`). */
  newAttempt(quiz: string | number, user: string, overrides: Partial<Attempt> = {}): Attempt {
    const now = this.now();
    return {
      id: randomUUID(),
      user_id: user,
      quiz_id: quiz,
      status: 'started',
      current_question: 0,
      version: 1,
      time_limit_seconds: 1800,
      time_remaining: 1800,
      started_at: ISO(now),
      expires_at: ISO(now + 1_800_000),
      last_updated: ISO(now),
      completed_at: null,
      attempt_number: 1,
      submitted_by: null,
      paused_at: null,
      extra_time_seconds: 0,
      answers: {},
      ...overrides,
    };
  }

  /** Another device (or the proctor) changes the attempt: version + 1, and every open stream hears it. */
  change(patch: Partial<Attempt>): Attempt {
    const a = this.attempt!;
    this.attempt = { ...a, ...patch, answers: { ...a.answers, ...(patch.answers ?? {}) }, version: a.version + 1 };
    for (const s of this.streams) s.send('attempt', this.attempt, String(this.attempt.version));
    return this.attempt;
  }

  /** Requests to `pathEnd` (e.g. '/progress'), in order. */
  requests(pathEnd: string, method?: string): Received[] {
    return this.received.filter((r) => r.path.endsWith(pathEnd) && (method === undefined || r.method === method));
  }

  /** The fake `fetch`. */
  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input), 'http://fake.test');
    const headers = Object.fromEntries(
      Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]),
    );
    const body = typeof init.body === 'string' ? (JSON.parse(init.body) as Json) : undefined;
    this.received.push({ method: init.method ?? 'GET', path: url.pathname, headers, body });
    if (this.offline) throw new TypeError('fetch failed');
    if (url.pathname.endsWith('/events') && this.holdEvents) await this.holdEvents;
    return this.route(init.method ?? 'GET', url, headers, body, init.signal ?? undefined);
  };

  private json(status: number, body: unknown): Response {
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }

  private error(status: number, errorCode: string, extra: Json = {}): Response {
    return this.json(status, {
      error: 'Error',
      errorCode,
      message: errorCode,
      statusCode: status,
      requestId: 'fake',
      retryable: status === 409 || status === 423 || status >= 500,
      ...extra,
    });
  }

  private route(method: string, url: URL, headers: Record<string, string>, body: Json | undefined, signal?: AbortSignal): Response {
    const path = url.pathname;
    if (method === 'POST' && path === '/api/sessions/start') {
      this.attempt ??= this.newAttempt(body!.quiz_id as string, (body!.user_id as string) ?? 'token-user');
      return this.json(200, this.attempt);
    }
    const a = this.attempt;
    if (!a || !path.startsWith(`/api/sessions/${a.id}`)) return this.error(404, 'SESSION_NOT_FOUND');
    const rest = path.slice(`/api/sessions/${a.id}`.length);
    if (method === 'GET' && rest === '') return this.json(200, a);
    if (method === 'GET' && rest === '/stream') return this.stream(headers['last-event-id'], signal);
    if (method === 'POST' && rest === '/events') return this.json(202, { accepted: (body!.events as unknown[]).length, last_seq: 1 });
    const key = headers['idempotency-key'];
    const fingerprint = `${method} ${rest} ${JSON.stringify(body ?? {})}`;
    if (key !== undefined) {
      const kept = this.kept.get(key);
      if (kept && kept.fingerprint !== fingerprint) return this.error(422, 'IDEMPOTENCY_KEY_REUSED');
      if (kept) return this.json(kept.status, kept.body);
    }
    const res = this.apply(method, rest, body ?? {});
    if (key !== undefined && res.status < 500) this.kept.set(key, { ...res, fingerprint });
    if (rest === '/progress' && this.loseNextResponse) {
      this.loseNextResponse = false;
      throw new TypeError('fetch failed: the connection dropped before the response');
    }
    return this.json(res.status, res.body);
  }

  private apply(method: string, rest: string, body: Json): { status: number; body: unknown } {
    const a = this.attempt!;
    const problem = (status: number, errorCode: string) => ({
      status,
      body: { error: 'Error', errorCode, message: errorCode, statusCode: status, requestId: 'fake', retryable: status !== 410, session: a },
    });
    if (rest === '/progress' && (method === 'PATCH' || method === 'PUT')) {
      if (a.status === 'completed') return problem(409, 'SESSION_COMPLETED');
      if (a.status === 'paused') return problem(423, 'SESSION_PAUSED');
      if (body.version !== undefined && body.version !== a.version) return problem(409, 'SESSION_CONFLICT');
      this.attempt = { ...a, status: 'in_progress', answers: { ...a.answers, ...(body.answers as Json) }, version: a.version + 1 };
      return { status: 200, body: this.attempt };
    }
    if (rest === '/complete' && method === 'POST') {
      if (a.status === 'paused') return problem(423, 'SESSION_PAUSED');
      if (a.status !== 'completed') this.attempt = { ...a, status: 'completed', submitted_by: 'student', version: a.version + 1 };
      return { status: 200, body: this.attempt };
    }
    return problem(404, 'ROUTE_NOT_FOUND');
  }

  private stream(lastEventId: string | undefined, signal?: AbortSignal): Response {
    const encoder = new TextEncoder();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let open = true;
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      cancel: () => {
        open = false;
      },
    });
    const stream: FakeStream = {
      lastEventId,
      send: (event, data, id) => {
        if (open) controller.enqueue(encoder.encode(`event: ${event}\n${id ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`));
      },
      end: () => {
        if (!open) return;
        open = false;
        controller.close();
        this.streams.splice(this.streams.indexOf(stream), 1);
      },
    };
    signal?.addEventListener('abort', () => {
      if (!open) return;
      open = false;
      controller.error(new Error('aborted'));
      this.streams.splice(this.streams.indexOf(stream), 1);
    });
    this.streams.push(stream);
    controller.enqueue(encoder.encode('retry: 20\n\n'));
    const a = this.attempt!;
    if (String(a.version) !== lastEventId) stream.send('attempt', a, String(a.version));
    stream.send('time', { time_remaining: a.time_remaining, server_time: ISO(this.now()) });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  }
}
