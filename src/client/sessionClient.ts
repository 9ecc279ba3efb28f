import { ServerClock } from './clock';
import { Emitter } from './emitter';
import { ApiClient, ApiError, NetworkError, newKey, sendIdempotent, type ApiOptions } from './http';
import { EventStream } from './sse';
import { MemoryStateStore, type QueuedNote, type SavedState, type SealedWrite, type StateStore } from './store';
import { isClosed, isRunning, type Attempt, type ClientEventType, type TimeEvent } from './types';

/** What the page shows about its answers: all saved, a write in flight, no connection, or changes not sent yet. */
export type SaveState = 'saved' | 'saving' | 'offline' | 'unsaved';

/** The events of a SessionClient and what each carries. */
export interface SessionClientEvents {
  /** A write was acknowledged: every answer given before it is on the server. */
  saved: { attempt: Attempt };
  /** The connection is gone (a request failed on the way, or the browser says so): answers are kept and resent. */
  offline: { error: NetworkError };
  /** The connection is back (a request or the stream got through). */
  online: { attempt: Attempt | null };
  /**
   * A write met a newer version (another tab or device wrote first): this client's unsaved answers
   * were merged into the attempt the 409 returned and sent again. `remote`: the questions the other
   * writer changed (shown now), `resent`: the questions sent again.
   */
  'conflict-merged': { attempt: Attempt; remote: string[]; resent: string[] };
  /** A proctor paused the attempt: writes wait until it is resumed. */
  paused: { attempt: Attempt };
  /** The proctor resumed it. */
  resumed: { attempt: Attempt };
  /** Time was added (by a proctor; a reopen too): `seconds` more in all. */
  extended: { attempt: Attempt; seconds: number };
  /** Completed, expired or abandoned: nothing more is saved; `unsaved` lists answers that could not be. */
  closed: { attempt: Attempt; unsaved: string[] };
  /** Any new state of the attempt (a write, another device, a control, the deadline). */
  change: { attempt: Attempt };
  /** The save state changed. */
  state: { state: SaveState };
  /** A `time` event of the stream arrived (the clock was corrected). */
  time: { remaining: number | null };
  /** A request failed in a way retrying cannot fix (a token refused, an answer the server will not take). */
  error: { error: Error; dropped?: string[] };
}

/** How a SessionClient is set up (ApiOptions: where the API is, the token, fetch). */
export interface SessionClientOptions extends ApiOptions {
  /** Where unsaved answers survive a closed tab: WebStateStore(localStorage) in a browser; memory by default. */
  store?: StateStore;
  /** Autosave waits this long after the last change before it sends, ms (250). */
  debounceMs?: number;
  /** The first retry's wait after a failure, doubling up to maxRetryMs, ms (1000, 10000). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Follow the attempt's stream (changes from elsewhere, the clock): true by default. */
  follow?: boolean;
  /** Tells the client when the platform goes on- or offline (browserOnlineSignal(window)); it then resends at once. */
  onlineSignal?: (notify: (online: boolean) => void) => () => void;
  /** The session routes' prefix ('/api/sessions'). */
  prefix?: string;
  /** The local clock (tests). */
  now?: () => number;
}

/** The questions whose answers differ between two answer maps. */
function changedQuestions(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  return Object.keys(after).filter((q) => JSON.stringify(before[q]) !== JSON.stringify(after[q]));
}

/** A JWT's subject, read (not verified: only to name what this browser keeps) from its payload. */
function subjectOf(token: string | undefined): string | undefined {
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
    return typeof json.sub === 'string' ? json.sub : undefined;
  } catch {
    return undefined;
  }
}

/** Window-like objects that say when the network comes and goes. */
interface OnlineTarget {
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
}

/** An onlineSignal from a browser window's `online` / `offline` events. */
export function browserOnlineSignal(target: OnlineTarget): SessionClientOptions['onlineSignal'] {
  return (notify) => {
    const online = () => notify(true);
    const offline = () => notify(false);
    target.addEventListener('online', online);
    target.addEventListener('offline', offline);
    return () => {
      target.removeEventListener('online', online);
      target.removeEventListener('offline', offline);
    };
  };
}

/**
 * One student's attempt, as a browser or a Node program holds it: start or resume, autosave that
 * never loses an answer, and the attempt's live state.
 *
 * - `save(answers)` queues answers and sends them (debounced) as one version-checked write. A 409
 *   (another device wrote first) merges only this client's unsaved answers into the attempt the
 *   409 carries and sends them again with its version; another device's answers to other
 *   questions are never overwritten, since a write carries only the questions this client changed.
 * - Every write carries an Idempotency-Key; a retry of the same write (after a failed connection
 *   or a 5xx) carries the same key, so it applies once even when the first try did land.
 * - Unsent answers (and the write in flight, with its key) are kept in `store`, so a closed tab or
 *   a lost connection loses nothing: they are sent when the connection returns (retries, the
 *   platform's online signal, the stream reconnecting) or when the page is opened again.
 * - The attempt's stream brings changes made elsewhere (another device, a proctor, the deadline)
 *   and `time` events, which correct the client's clock (`timeRemaining()`).
 */
export class SessionClient extends Emitter<SessionClientEvents> {
  readonly api: ApiClient;
  /** The server's clock, corrected by the stream's `time` events. */
  readonly clock: ServerClock;
  private readonly store: StateStore;
  private readonly prefix: string;
  private readonly debounceMs: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private current: Attempt | null = null;
  private stateKey: string | null = null;
  private startBody: { quiz_id: string | number; user_id?: string } | null = null;
  private startKey = newKey();
  /** The server acknowledged the attempt in this run (a start that failed offline is retried first). */
  private confirmed = false;
  private sending: SealedWrite | null = null;
  private sendingTicket = 0;
  private pending: Record<string, unknown> = {};
  private pendingTicket = 0;
  private tickets = 0;
  private notes: QueuedNote[] = [];
  private waiters: Array<{ ticket: number; resolve: (a: Attempt | null) => void }> = [];
  private saveState: SaveState = 'saved';
  private offline = false;
  private conflicts = 0;
  private retries = 0;
  private debounceTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pumping: Promise<void> | null = null;
  /** A write request is on its way. */
  private inFlight = false;
  /** The send loop was asked for while it ran. */
  private again = false;
  private stream: EventStream | null = null;
  private stopSignal: (() => void) | null = null;
  private stopped = false;

  constructor(private readonly options: SessionClientOptions = {}) {
    super();
    this.api = new ApiClient(options);
    this.clock = new ServerClock(options.now);
    this.store = options.store ?? new MemoryStateStore();
    this.prefix = options.prefix ?? '/api/sessions';
    this.debounceMs = options.debounceMs ?? 250;
    this.retryMs = options.retryMs ?? 1_000;
    this.maxRetryMs = options.maxRetryMs ?? 10_000;
    this.stopSignal =
      options.onlineSignal?.((online) => (online ? this.reconnect() : this.goOffline(new NetworkError('the platform is offline')))) ?? null;
  }

  /** The attempt as last seen from the server (answers not yet saved are not in it: see answers()). */
  get attempt(): Attempt | null {
    return this.current;
  }

  /** saved, saving, offline or unsaved. */
  get state(): SaveState {
    return this.saveState;
  }

  /** True while the client believes the connection is gone. */
  get isOffline(): boolean {
    return this.offline;
  }

  /** Every answer as this client sees it: the server's, with this client's unsaved ones on top. */
  answers(): Record<string, unknown> {
    return { ...(this.current?.answers ?? {}), ...(this.sending?.answers ?? {}), ...this.pending };
  }

  /** Question ids whose answers this client has not had acknowledged yet. */
  unsavedQuestions(): string[] {
    return [...new Set([...Object.keys(this.sending?.answers ?? {}), ...Object.keys(this.pending)])];
  }

  /**
   * Starts the user's attempt at the quiz, or resumes the open one (another tab's, another
   * device's): POST …/start. What this client kept of it (unsaved answers of a closed tab) is
   * restored and sent. Offline, with something kept, it resolves with the kept attempt and keeps
   * trying; offline with nothing kept, it throws NetworkError. `userId` only without a token (open
   * mode, or a service): a student's token names its user.
   */
  async start(input: { quizId: string | number; userId?: string }): Promise<Attempt> {
    this.startBody = input.userId === undefined ? { quiz_id: input.quizId } : { quiz_id: input.quizId, user_id: input.userId };
    this.stateKey = `${String(input.quizId)}|${input.userId ?? subjectOf(this.api.token()) ?? 'token'}`;
    const kept = this.store.load(this.stateKey);
    try {
      const attempt = await this.requestStart();
      this.restore(kept, attempt.id);
      this.confirm(attempt);
    } catch (err) {
      if (!(err instanceof NetworkError) || !kept) throw err;
      this.restore(kept, kept.attemptId);
      this.current = kept.attempt;
      this.goOffline(err);
      this.scheduleRetry();
    }
    return this.current!;
  }

  /** Follows an attempt whose id is known (GET …/:id), e.g. a second device given the id. */
  async resume(attemptId: string): Promise<Attempt> {
    const { body } = await this.api.request<Attempt>('GET', `${this.prefix}/${encodeURIComponent(attemptId)}`);
    this.stateKey = `id|${body.id}`;
    this.restore(this.store.load(this.stateKey), body.id);
    this.confirm(body);
    return this.current!;
  }

  /**
   * Saves answers (question id -> any JSON): merged into what is unsaved, sent after `debounceMs`.
   * Resolves with the attempt once they are acknowledged, or null when the attempt closed first.
   */
  save(answers: Record<string, unknown>): Promise<Attempt | null> {
    if (!this.current || isClosed(this.current.status)) return Promise.resolve(null);
    Object.assign(this.pending, answers);
    const ticket = ++this.tickets;
    this.pendingTicket = ticket;
    this.persist();
    this.refreshState();
    this.schedule(this.debounceMs);
    return new Promise((resolve) => this.waiters.push({ ticket, resolve }));
  }

  /** Sends what is unsaved now and resolves when that is done or cannot be done yet (offline, paused). */
  async flush(): Promise<void> {
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = null;
    while (this.pumping) await this.pumping;
    await this.kick();
  }

  /**
   * Completes the attempt (POST …/complete) once every answer is saved. Throws (keeping the
   * answers) when they cannot be saved now: offline, or paused.
   */
  async complete(): Promise<Attempt> {
    if (!this.current) throw new Error('start() first: there is no attempt to complete');
    await this.flush();
    const unsaved = this.unsavedQuestions();
    if (unsaved.length > 0) {
      throw this.offline
        ? new NetworkError(`offline: ${unsaved.length} answers are not saved yet`)
        : new Error('answers are not saved yet');
    }
    try {
      const { body } = await sendIdempotent<Attempt>(this.api, 'POST', `${this.prefix}/${this.current!.id}/complete`, {});
      this.markOnline();
      this.adopt(body);
    } catch (err) {
      if (err instanceof ApiError && err.session) this.adopt(err.session);
      throw err;
    }
    return this.current!;
  }

  /** Reports a client event (page_blurred, question_viewed, …): queued and sent when the connection allows. */
  note(type: ClientEventType, data?: Record<string, unknown>): void {
    this.notes.push({ type, client_time: new Date(this.options.now?.() ?? Date.now()).toISOString(), ...(data ? { data } : {}) });
    if (this.notes.length > 50) this.notes.splice(0, this.notes.length - 50);
    this.persist();
    this.schedule(0);
  }

  /** Sends the queued client events now with `keepalive` (a page being closed), plus `last`. */
  farewell(last?: { type: ClientEventType; data?: Record<string, unknown> }): void {
    if (last) this.notes.push({ type: last.type, client_time: new Date().toISOString(), ...(last.data ? { data: last.data } : {}) });
    if (!this.current || this.notes.length === 0 || isClosed(this.current.status)) return;
    const events = this.notes.splice(0, 50);
    this.persist();
    void this.api.request('POST', `${this.prefix}/${this.current.id}/events`, { body: { events }, keepalive: true }).catch(() => undefined);
  }

  /**
   * Seconds left by the server's clock: from the deadline while the clock runs, the frozen
   * remainder while paused, 0 once overdue or closed; null when untimed.
   */
  timeRemaining(): number | null {
    const a = this.current;
    if (!a || a.time_remaining === null) return null;
    if (a.status === 'paused') return a.time_remaining;
    if (!isRunning(a.status) || a.expires_at === null) return isClosed(a.status) || a.status === 'overdue' ? 0 : a.time_remaining;
    return Math.max(0, (Date.parse(a.expires_at) - this.clock.now()) / 1000);
  }

  /** Tries again now: the connection is back (what the platform's online signal does). */
  reconnect(): void {
    this.retries = 0;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stream?.reconnectNow();
    this.schedule(0);
  }

  /** Stops the stream, the timers and the online signal (what is unsaved stays in the store). */
  stop(): void {
    this.stopped = true;
    this.stream?.close();
    this.stream = null;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopSignal?.();
    this.stopSignal = null;
  }

  // ---- internals ----

  private requestStart(): Promise<Attempt> {
    // one key for this start and its retries: a start that landed unseen is answered again, not repeated
    return this.api
      .request<Attempt>('POST', `${this.prefix}/start`, { body: this.startBody, idempotencyKey: this.startKey })
      .then((r) => r.body);
  }

  /** Takes back what a store kept for `attemptId` (nothing when it was another, older attempt). */
  private restore(kept: SavedState | null, attemptId: string): void {
    if (!kept || kept.attemptId !== attemptId) return;
    this.sending = kept.sending;
    this.pending = { ...kept.pending, ...this.pending };
    this.notes = [...kept.notes, ...this.notes];
    this.sendingTicket = this.pendingTicket = this.tickets;
  }

  /** The server has answered for the attempt: follow it and send what is unsaved. */
  private confirm(attempt: Attempt): void {
    this.confirmed = true;
    this.markOnline();
    this.adopt(attempt);
    this.persist();
    this.follow();
    this.schedule(0);
  }

  private follow(): void {
    if (this.options.follow === false || this.stream || this.stopped || !this.current || isClosed(this.current.status)) return;
    this.stream = new EventStream(
      this.api,
      { path: `${this.prefix}/${this.current.id}/stream`, lastEventId: String(this.current.version) },
      {
        open: () => {
          // the connection is back: send what waited for it
          if (this.offline) this.markOnline();
          this.schedule(0);
        },
        message: (m) => {
          if (m.event === 'attempt') this.adopt(JSON.parse(m.data) as Attempt);
          else if (m.event === 'time') {
            const t = JSON.parse(m.data) as TimeEvent;
            this.clock.observe(t.server_time);
            this.emit('time', { remaining: this.timeRemaining() });
          }
        },
        error: (err, fatal) => {
          if (fatal && err instanceof ApiError && err.session) this.adopt(err.session);
        },
      },
    );
    this.stream.start();
  }

  /** Takes a state of the attempt from the server when it is newer, and says what changed. */
  private adopt(next: Attempt): void {
    const prev = this.current;
    if (prev && prev.id === next.id && next.version <= prev.version) return;
    this.current = next;
    // listeners see a save state that matches what they are told
    this.refreshState();
    if (prev && prev.id === next.id) {
      if (prev.status !== 'paused' && next.status === 'paused') this.emit('paused', { attempt: next });
      if (prev.status === 'paused' && isRunning(next.status)) {
        this.emit('resumed', { attempt: next });
        this.schedule(0);
      }
      if (next.extra_time_seconds > prev.extra_time_seconds) {
        this.emit('extended', { attempt: next, seconds: next.extra_time_seconds - prev.extra_time_seconds });
      }
    } else if (next.status === 'paused') this.emit('paused', { attempt: next });
    this.emit('change', { attempt: next });
    if (isClosed(next.status) && !(prev && prev.id === next.id && isClosed(prev.status))) this.closed(next);
    else this.persist();
  }

  private closed(attempt: Attempt): void {
    const unsaved = this.unsavedQuestions();
    this.sending = null;
    this.pending = {};
    this.notes = [];
    for (const w of this.waiters.splice(0)) w.resolve(null);
    if (this.stateKey) this.store.remove(this.stateKey);
    this.stream?.close();
    this.stream = null;
    this.refreshState();
    this.emit('closed', { attempt, unsaved });
  }

  private persist(): void {
    if (!this.stateKey || !this.current || isClosed(this.current.status)) return;
    this.store.save(this.stateKey, {
      attemptId: this.current.id,
      attempt: this.current,
      sending: this.sending,
      pending: this.pending,
      notes: this.notes,
    });
  }

  private setState(state: SaveState): void {
    if (state === this.saveState) return;
    this.saveState = state;
    this.emit('state', { state });
  }

  private refreshState(): void {
    const unsaved = this.sending !== null || Object.keys(this.pending).length > 0;
    if (this.offline) this.setState('offline');
    else if (!unsaved) this.setState('saved');
    else this.setState(this.inFlight ? 'saving' : 'unsaved');
  }

  private goOffline(error: NetworkError): void {
    if (this.stopped) return;
    if (!this.offline) {
      this.offline = true;
      if (this.current && !isClosed(this.current.status)) this.note('connection_lost');
      this.emit('offline', { error });
    }
    this.refreshState();
  }

  private markOnline(): void {
    if (!this.offline) return;
    this.offline = false;
    this.retries = 0;
    if (this.current && !isClosed(this.current.status)) this.note('connection_restored');
    this.emit('online', { attempt: this.current });
    this.refreshState();
  }

  /** Runs the send loop after `ms` (0: at once), unless it is already due sooner. */
  private schedule(ms: number): void {
    if (this.stopped) return;
    if (ms === 0) {
      if (this.debounceTimer) clearTimeout(this.debounceTimer);
      this.debounceTimer = null;
      queueMicrotask(() => void this.kick());
      return;
    }
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.kick();
    }, ms);
  }

  private scheduleRetry(afterMs?: number): void {
    if (this.retryTimer || this.stopped) return;
    const wait = afterMs ?? Math.min(this.retryMs * 2 ** this.retries, this.maxRetryMs);
    this.retries++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.kick();
    }, wait);
  }

  /** Starts the send loop unless it runs; resolves when this run of it ends. */
  private kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.pumping) {
      // asked while it runs (a save while the client events go out): run once more after it
      this.again = true;
      return this.pumping;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      this.refreshState();
      if (this.again) {
        this.again = false;
        this.schedule(0);
      }
    });
    this.refreshState();
    return this.pumping;
  }

  /** The send loop: a confirmed start, then writes until nothing is unsaved, then the client events. */
  private async pump(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      if (!this.confirmed) {
        if (!this.startBody) return;
        try {
          const attempt = await this.requestStart();
          if (attempt.id !== this.current?.id) {
            // the kept attempt was closed meanwhile: its unsaved answers belong to no open attempt
            if (this.current) this.closed({ ...this.current, status: isClosed(this.current.status) ? this.current.status : 'expired' });
            this.current = null;
          }
          this.confirm(attempt);
        } catch (err) {
          this.failed(err);
          return;
        }
      }
      const attempt = this.current;
      if (!attempt || isClosed(attempt.status)) return;
      if (!this.sending && Object.keys(this.pending).length === 0) return this.sendNotes();
      // paused: the writes wait for the proctor's resume (the stream says so)
      if (attempt.status === 'paused') return this.unseal();
      if (!this.sending) this.seal(attempt.version);
      const write = this.sending!;
      this.inFlight = true;
      this.refreshState();
      try {
        const { body } = await this.api
          .request<Attempt>('PATCH', `${this.prefix}/${attempt.id}/progress`, {
            body: { answers: write.answers, version: write.version },
            idempotencyKey: write.key,
          })
          .finally(() => (this.inFlight = false));
        this.sending = null;
        this.conflicts = 0;
        this.markOnline();
        this.adopt(body);
        this.refreshState();
        const done = this.sendingTicket;
        this.waiters = this.waiters.filter((w) => (w.ticket <= done ? (w.resolve(this.current), false) : true));
        this.persist();
        this.emit('saved', { attempt: this.current! });
      } catch (err) {
        if (!this.writeFailed(err, write)) return;
      }
    }
  }

  /** Moves what is unsaved into one write, with a new key and the version it expects. */
  private seal(version: number): void {
    this.sending = { key: newKey(), version, answers: this.pending };
    this.sendingTicket = this.pendingTicket;
    this.pending = {};
    this.persist();
  }

  /** Puts the write back among the unsaved answers (newer ones win): its key was answered and cannot be sent again. */
  private unseal(): void {
    if (this.sending) {
      this.pending = { ...this.sending.answers, ...this.pending };
      this.pendingTicket = Math.max(this.pendingTicket, this.sendingTicket);
      this.sending = null;
      this.persist();
    }
  }

  /** What a failed write does; true to go on with the loop at once. */
  private writeFailed(err: unknown, write: SealedWrite): boolean {
    if (!(err instanceof ApiError)) {
      this.failed(err);
      return false;
    }
    const session = err.session;
    switch (err.code) {
      case 'SESSION_CONFLICT': {
        if (!session) break;
        const before = this.current?.answers ?? {};
        this.adopt(session);
        const merged = { ...write.answers, ...this.pending };
        const remote = changedQuestions(before, session.answers).filter((q) => !(q in merged));
        this.pending = merged;
        this.pendingTicket = Math.max(this.pendingTicket, this.sendingTicket);
        this.sending = null;
        this.seal(Math.max(session.version, this.current!.version));
        this.emit('conflict-merged', { attempt: this.current!, remote, resent: Object.keys(merged) });
        // a writer that keeps winning: wait a moment rather than race it
        if (++this.conflicts > 3) {
          this.scheduleRetry(err.retryAfterMs);
          return false;
        }
        return true;
      }
      case 'IDEMPOTENCY_KEY_IN_USE':
        this.scheduleRetry(err.retryAfterMs);
        return false;
      case 'IDEMPOTENCY_KEY_REUSED':
        this.unseal();
        return true;
      case 'SESSION_PAUSED':
        this.unseal();
        if (session) this.adopt(session);
        return false;
      case 'SESSION_EXPIRED':
      case 'SESSION_COMPLETED':
        if (session) this.adopt(session);
        return false;
    }
    if (err.status >= 500 || err.retryable) {
      this.scheduleRetry(err.retryAfterMs);
      return false;
    }
    if (err.status === 400 || err.status === 413) {
      // the server will never take these answers as they are: say so rather than retry forever
      this.sending = null;
      this.persist();
      const done = this.sendingTicket;
      this.waiters = this.waiters.filter((w) => (w.ticket <= done ? (w.resolve(null), false) : true));
      this.emit('error', { error: err, dropped: Object.keys(write.answers) });
      return true;
    }
    // 401, 403, 404: a token or an attempt this client cannot fix; kept for a later retry()
    this.unseal();
    this.emit('error', { error: err });
    return false;
  }

  /** A start or a write failed without an answer from the API (NetworkError), or oddly. */
  private failed(err: unknown): void {
    if (err instanceof NetworkError) {
      this.goOffline(err);
      this.scheduleRetry();
    } else if (err instanceof ApiError && (err.status >= 500 || err.retryable)) {
      this.scheduleRetry(err.retryAfterMs);
    } else {
      this.emit('error', { error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  /** Sends the queued client events (no idempotency: a repeat only repeats a report). */
  private async sendNotes(): Promise<void> {
    const attempt = this.current;
    // offline too: this request is the probe that finds the connection back
    if (!attempt || this.notes.length === 0) return;
    const events = this.notes.slice(0, 50);
    try {
      await this.api.request('POST', `${this.prefix}/${attempt.id}/events`, { body: { events } });
      this.markOnline();
      this.notes.splice(0, events.length);
      this.persist();
      if (this.notes.length > 0) this.schedule(0);
    } catch (err) {
      if (err instanceof NetworkError) this.failed(err);
      else if (err instanceof ApiError && err.status >= 500) this.scheduleRetry();
      else {
        // refused (closed, invalid): dropped, reports only
        this.notes.splice(0, events.length);
        this.persist();
      }
    }
  }
}
