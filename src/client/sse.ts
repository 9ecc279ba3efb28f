import { ApiError, NetworkError, type ApiClient } from './http';
import type { ApiErrorBody } from './types';

/** One Server-Sent Event. */
export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/** Splits an event-stream's text into messages, as the SSE specification reads it. */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;
  /** The `retry:` the server asked for, ms. */
  retryMs: number | undefined;
  /** The last `id:` seen (what a reconnect sends as Last-Event-ID). */
  lastEventId: string | undefined;

  /** Feeds a chunk of text; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    let cut: number;
    while ((cut = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + (this.buffer.startsWith('\r\n', cut) ? 2 : 1));
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') {
      // a blank line dispatches the event gathered so far
      const message = this.data.length > 0 ? { event: this.event || 'message', data: this.data.join('\n'), id: this.id } : undefined;
      this.event = '';
      this.data = [];
      this.id = undefined;
      return message;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\u0000')) this.id = this.lastEventId = value;
    else if (field === 'retry' && /^[0-9]+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }
}

/** What a stream reports. */
export interface EventStreamHandlers {
  message(message: SseMessage): void;
  /** Connected (status 200). */
  open?(): void;
  /** A connection failed or ended; `fatal` when the stream gives up (the error says why: 401, 403, 404, 410). */
  error?(error: ApiError | NetworkError, fatal: boolean): void;
}

/** How a stream is opened. */
export interface EventStreamOptions {
  /** The API path. */
  path: string;
  /** Waits between reconnects, ms, unless the server said `retry:` (grows to maxRetryMs while the server is unreachable). */
  retryMs?: number;
  maxRetryMs?: number;
  /** The Last-Event-ID of the first connect. */
  lastEventId?: string;
  /** Timers (fakes in unit tests). */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

/** Statuses after which reconnecting cannot help. */
const FATAL = new Set([400, 401, 403, 404, 410]);

/**
 * An EventSource over fetch, so that it can send `Authorization` (a browser's EventSource cannot)
 * and runs in Node too: reconnects with Last-Event-ID after the connection ends, after `retry:`
 * ms, and at once on reconnectNow() (a page coming back online).
 */
export class EventStream {
  private abort: AbortController | null = null;
  private timer: unknown = null;
  private closed = false;
  private failures = 0;
  private readonly parser = new SseParser();
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(
    private readonly api: ApiClient,
    private readonly options: EventStreamOptions,
    private readonly handlers: EventStreamHandlers,
  ) {
    this.parser.lastEventId = options.lastEventId;
    this.setTimer = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  /** The last event id received. */
  get lastEventId(): string | undefined {
    return this.parser.lastEventId;
  }

  /** Connects (once; later connects are the stream's own). */
  start(): void {
    if (!this.closed && !this.abort && this.timer === null) void this.connect();
  }

  /** Drops the current connection, if any, and connects again now. */
  reconnectNow(): void {
    if (this.closed) return;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.abort = null;
    this.failures = 0;
    void this.connect();
  }

  /** Stops for good. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.abort = null;
  }

  private async connect(): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.parser.lastEventId !== undefined) headers['last-event-id'] = this.parser.lastEventId;
    let failure: ApiError | NetworkError;
    try {
      const res = await this.api.fetch(this.options.path, { headers, signal: abort.signal });
      if (res.status !== 200 || !res.body) {
        failure = new ApiError(res.status, await errorBody(res));
      } else {
        this.failures = 0;
        this.handlers.open?.();
        await this.read(res.body, abort);
        failure = new NetworkError('the stream ended');
      }
    } catch (err) {
      failure = err instanceof ApiError || err instanceof NetworkError ? err : new NetworkError(err);
    }
    if (abort.signal.aborted || this.closed) return; // closed, or replaced by reconnectNow()
    this.abort = null;
    const fatal = failure instanceof ApiError && FATAL.has(failure.status);
    this.handlers.error?.(failure, fatal);
    if (fatal) {
      this.closed = true;
      return;
    }
    this.failures++;
    const base = failure instanceof ApiError ? (failure.retryAfterMs ?? this.retryMs()) : this.retryMs();
    const wait = Math.min(base * Math.max(1, this.failures), this.options.maxRetryMs ?? 10_000);
    this.timer = this.setTimer(() => {
      this.timer = null;
      void this.connect();
    }, wait);
  }

  private retryMs(): number {
    return this.parser.retryMs ?? this.options.retryMs ?? 2_000;
  }

  private async read(body: ReadableStream<Uint8Array>, abort: AbortController): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || abort.signal.aborted) return;
        for (const message of this.parser.push(decoder.decode(value, { stream: true }))) {
          if (abort.signal.aborted) return;
          this.handlers.message(message);
        }
      }
    } catch {
      // the connection broke (or was aborted): the caller reconnects
    }
  }
}

async function errorBody(res: Response): Promise<ApiErrorBody | undefined> {
  try {
    const body = (await res.json()) as ApiErrorBody;
    return typeof body?.errorCode === 'string' ? body : undefined;
  } catch {
    return undefined;
  }
}
