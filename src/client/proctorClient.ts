import { Emitter } from './emitter';
import { ApiClient, ApiError, NetworkError, sendIdempotent, type ApiOptions } from './http';
import { EventStream } from './sse';
import type { Attempt, AttemptEvent, AttemptsPage, EventsPage, ExtendRequest, StreamClientEvent } from './types';

/** The events of a ProctorClient. */
export interface ProctorClientEvents {
  /** An attempt of the quiz changed, or is new (from the quiz's stream, or the first listing). */
  attempt: { attempt: Attempt };
  /** A student's page reported an event (connection lost or restored, page blurred, …). */
  'client-event': { event: StreamClientEvent };
  /** The stream is connected (again): the table is live. */
  live: Record<string, never>;
  /** The stream is down: `fatal` when it gives up (401, 403: the token). */
  down: { error: ApiError | NetworkError; fatal: boolean };
}

/** The most attempts one listing page holds (the API's limit). */
const PAGE = 200;

/**
 * A proctor's (or a service's) view of one quiz: its attempts, live from the quiz's stream, and
 * the live controls (extend, pause, resume, reopen), each sent under an Idempotency-Key and
 * retried with it.
 */
export class ProctorClient extends Emitter<ProctorClientEvents> {
  readonly api: ApiClient;
  private stream: EventStream | null = null;
  private readonly prefix: string;

  constructor(
    readonly quizId: string,
    options: ApiOptions & { prefix?: string } = {},
  ) {
    super();
    this.api = new ApiClient(options);
    this.prefix = options.prefix ?? '/api/sessions';
  }

  /**
   * Follows the quiz: opens its stream, then lists the attempts there are (every page), so an
   * attempt that changes while the listing runs is not missed (the stream has it; the newer
   * version wins where both have it). Resolves with the listing once the stream is connected.
   */
  async watch(): Promise<Attempt[]> {
    if (!this.stream) {
      const connected = new Promise<void>((resolve, reject) => {
        this.stream = new EventStream(
          this.api,
          { path: `/api/quizzes/${encodeURIComponent(this.quizId)}/stream` },
          {
            open: () => {
              resolve();
              this.emit('live', {});
            },
            message: (m) => {
              if (m.event === 'attempt') this.emit('attempt', { attempt: JSON.parse(m.data) as Attempt });
              else if (m.event === 'client_event') this.emit('client-event', { event: JSON.parse(m.data) as StreamClientEvent });
            },
            error: (error, fatal) => {
              if (fatal) reject(error);
              this.emit('down', { error, fatal });
            },
          },
        );
      });
      this.stream!.start();
      await connected;
    }
    const attempts = await this.listAttempts();
    for (const attempt of attempts) this.emit('attempt', { attempt });
    return attempts;
  }

  /** Every attempt of the quiz (GET /api/quizzes/:quiz_id/attempts, page after page). */
  async listAttempts(): Promise<Attempt[]> {
    const all: Attempt[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const { body }: { body: AttemptsPage } = await this.api.request<AttemptsPage>(
        'GET',
        `/api/quizzes/${encodeURIComponent(this.quizId)}/attempts?${query}`,
      );
      all.push(...body.attempts);
      cursor = body.next_cursor;
    } while (cursor);
    return all;
  }

  /** An attempt's event log, every page. */
  async events(attemptId: string): Promise<AttemptEvent[]> {
    const all: AttemptEvent[] = [];
    for (let after = 0; ;) {
      const { body } = await this.api.request<EventsPage>('GET', `${this.prefix}/${attemptId}/events?after=${after}&limit=1000`);
      all.push(...body.events);
      if (body.events.length < 1000) return all;
      after = body.next_after;
    }
  }

  /** Adds time (POST …/extend): `seconds` from the deadline, or from now; `reopen` brings an expired attempt back. */
  extend(attemptId: string, request: ExtendRequest): Promise<Attempt> {
    return this.control(attemptId, 'extend', request);
  }

  /** Reopens an expired attempt with `seconds` from now. */
  reopen(attemptId: string, seconds: number, reason?: string): Promise<Attempt> {
    return this.control(attemptId, 'extend', { seconds, from: 'now', reopen: true, ...(reason ? { reason } : {}) });
  }

  /** Pauses the attempt's clock. */
  pause(attemptId: string, reason?: string): Promise<Attempt> {
    return this.control(attemptId, 'pause', reason ? { reason } : {});
  }

  /** Resumes it. */
  resume(attemptId: string, reason?: string): Promise<Attempt> {
    return this.control(attemptId, 'resume', reason ? { reason } : {});
  }

  /** Extends every attempt in `attemptIds` (the fire alarm); each one's outcome, in order. */
  extendAll(attemptIds: readonly string[], request: ExtendRequest): Promise<PromiseSettledResult<Attempt>[]> {
    return Promise.allSettled(attemptIds.map((id) => this.extend(id, request)));
  }

  /** Closes the stream. */
  stop(): void {
    this.stream?.close();
    this.stream = null;
  }

  private async control(attemptId: string, action: 'extend' | 'pause' | 'resume', body: object): Promise<Attempt> {
    const { body: attempt } = await sendIdempotent<Attempt>(this.api, 'POST', `${this.prefix}/${attemptId}/${action}`, body);
    this.emit('attempt', { attempt });
    return attempt;
  }
}
