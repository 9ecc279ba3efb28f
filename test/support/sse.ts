/** One Server-Sent Event as a client sees it. */
export interface SseEvent {
  event: string;
  id?: string;
  data: string;
  /** When it arrived (ms). */
  at: number;
}

/**
 * A minimal EventSource over fetch (headers allowed, e.g. Authorization and Last-Event-ID): it
 * parses the stream as the SSE spec says (event, id, data, comments, retry) and queues the events.
 */
export class SseClient {
  private readonly events: SseEvent[] = [];
  private waiters: Array<() => void> = [];
  private buffer = '';
  /** Every comment line received. */
  readonly comments: string[] = [];
  /** The retry the server asked for, ms. */
  retryMs?: number;
  /** True once the server ended the stream (or the connection broke). */
  ended = false;

  private constructor(
    readonly response: Response,
    private readonly abort: AbortController,
  ) {}

  /** Connects; a non-200 answer is returned with its parsed body instead of a client. */
  static async open(
    url: string,
    headers: Record<string, string> = {},
  ): Promise<{ client: SseClient; status: number } | { client: null; status: number; body: unknown; headers: Headers }> {
    const abort = new AbortController();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
    if (res.status !== 200) {
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { client: null, status: res.status, body, headers: res.headers };
    }
    const client = new SseClient(res, abort);
    void client.pump();
    return { client, status: 200 };
  }

  private async pump(): Promise<void> {
    const reader = this.response.body!.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.buffer += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
          this.frame(this.buffer.slice(0, cut));
          this.buffer = this.buffer.slice(cut + 2);
        }
      }
    } catch {
      // aborted, or the connection broke
    } finally {
      this.ended = true;
      this.wake();
    }
  }

  private frame(text: string): void {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
      else if (line.startsWith('retry: ')) this.retryMs = Number(line.slice(7));
    }
    if (data.length === 0) return;
    this.events.push({ event, id, data: data.join('\n'), at: Date.now() });
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Every event received and not yet taken. */
  pending(): readonly SseEvent[] {
    return this.events;
  }

  /**
   * The next event (of type `event`, when given; others before it are skipped and dropped), or a
   * failure after `timeoutMs` or when the stream ends first.
   */
  async next(event?: string, timeoutMs = 5_000): Promise<SseEvent> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      while (this.events.length) {
        const e = this.events.shift()!;
        if (event === undefined || e.event === event) return e;
      }
      if (this.ended) throw new Error(`the stream ended before ${event ?? 'an'} event`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no ${event ?? ''} event within ${timeoutMs}ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next `attempt` event, parsed. */
  async nextAttempt(timeoutMs?: number): Promise<{ id?: string; attempt: Record<string, unknown> & { version: number; status: string } }> {
    const e = await this.next('attempt', timeoutMs);
    return { id: e.id, attempt: JSON.parse(e.data) };
  }

  /** Resolves once the server has ended the stream, or fails after `timeoutMs`. */
  async waitEnded(timeoutMs = 5_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > until) throw new Error(`the stream did not end within ${timeoutMs}ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Closes the connection from the client's side. */
  close(): void {
    this.abort.abort();
  }
}
