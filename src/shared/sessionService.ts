import { attemptIdFor } from './domain/shard';
import { UNCONTROLLED, type Attempt } from './domain/attempt';
import type { Control } from './domain/control';
import { SYSTEM_CONTEXT, type AttemptEvent, type EventContext } from './domain/events';
import { deadlineOf, isPastDeadline, presentAt } from './domain/deadline';
import { INITIAL_STATUS, isOpen, OPEN_STATUSES, type AttemptStatus } from './domain/status';
import { cappedDeadline, effectiveRules, windowAt, type EffectiveRules } from './domain/policy';
import { FIRST_VERSION } from './domain/version';
import {
  AnotherAttemptOpenError,
  AttemptLimitReachedError,
  ForbiddenError,
  QuizNotOpenError,
  SessionCompletedError,
  SessionConflictError,
  SessionExpiredError,
  SessionNotFoundError,
  SessionPausedError,
  ServiceUnavailableError,
  ValidationError,
} from './errors';
import type { Logger } from './logger';
import type { PolicyStore } from './store/policyStore';
import type { SessionRepository } from './store/sessionRepository';
import type { IdempotencyClaim } from './store/idempotencyStore';
import type { CloseRequest, FoundResult, SessionStore, UnownedResult, WriteResult } from './store/sessionStore';
import { writeSnapshots } from './store/snapshotWriter';
import type { StoredAttempt } from './store/sessionCodec';

/**
 * The service's ports: what it uses of the live state (SessionStore, Redis), of the durable copy
 * (SessionRepository, PostgreSQL) and of the quiz policies (PolicyStore). The real classes are
 * these; the unit tests' in-memory fakes (test/support/fakePorts.ts) are too, so a rule of the
 * service is tested without servers.
 */
export type LiveStatePort = Pick<
  SessionStore,
  'read' | 'get' | 'getMany' | 'fill' | 'progress' | 'close' | 'control' | 'note' | 'publishClientEvents' | 'pendingEvents' | 'rebase'
>;
/** What the service uses of PostgreSQL (see LiveStatePort). */
export type DurablePort = Pick<
  SessionRepository,
  | 'insertIfNoneOpen'
  | 'findOpen'
  | 'countAttempts'
  | 'findById'
  | 'insertEvents'
  | 'eventsAfter'
  | 'listAttempts'
  | 'upsertSnapshots'
  | 'versionsOf'
>;
/** What the service uses of the quiz policies (see LiveStatePort). */
export type PolicyPort = Pick<PolicyStore, 'rulesFor'>;

/** Limits on what one attempt may hold. */
export interface AttemptLimits {
  maxAnswers: number;
}

/** What the service tells the job queue and the metrics about; every hook is best-effort. */
export interface SessionHooks {
  /** The attempt got its first change not yet in PostgreSQL: schedule the write-behind. */
  becameDirty(id: string, dirtySince: number): Promise<void>;
  /** The attempt's deadline is set or moved (start, extension, resume, grace): schedule the job that applies it (deadline.ts dueAt). */
  deadlineSet(attempt: Attempt): Promise<void>;
  /** An attempt moved to a closed status. */
  transitioned(attempt: Attempt): void;
  /** Where a read was served from. */
  readFrom(source: 'redis' | 'postgres'): void;
  /** A versioned write lost the race. */
  conflicted(): void;
  /**
   * These events of the attempt are durable in PostgreSQL, `attempt` being the snapshot written
   * with them: enqueue what they announce (webhooks). Not best-effort: a failure fails the write,
   * which is retried, so it must be idempotent.
   */
  eventsDurable(attempt: Attempt, events: readonly AttemptEvent[]): Promise<void>;
}

/** Hooks that do nothing, for tests and tools. */
export const noHooks: SessionHooks = {
  becameDirty: async () => undefined,
  deadlineSet: async () => undefined,
  transitioned: () => undefined,
  readFrom: () => undefined,
  conflicted: () => undefined,
  eventsDurable: async () => undefined,
};

/** A request to start (or resume) an attempt. */
export interface StartInput {
  userId: string;
  quizId: string | number;
  /** Asked for by a service, or in open mode (a student may not: the route refuses it). */
  timeLimitSeconds?: number;
  /** True for a service: its time limit is ignored for a quiz with a policy; open mode's is refused. */
  fromService?: boolean;
  /** Who starts it, for the event log. */
  ctx?: EventContext;
}

/**
 * Thrown by a progress write whose idempotency key has a record already: nothing was applied; the
 * caller answers from the record (idempotencyStore.ts).
 */
export class IdempotentReplay {
  constructor(readonly record: string) {}
}

/** A progress write: answers (question id -> answer JSON text) and/or the current question. */
export interface ProgressInput {
  /** The request's idempotency key, checked and kept by the write script itself. */
  idempotency?: IdempotencyClaim;
  /** Who writes, for the event log. */
  ctx?: EventContext;
  expectedVersion?: number;
  currentQuestion?: number;
  answers: ReadonlyMap<string, string>;
}

/** Why a worker closes an attempt: its deadline passed, or it has been idle too long. */
export type CloseReason = { by: 'deadline' } | { by: 'idle'; idleMs: number };

/**
 * What a worker's close did: moved it now (closed it, or made it overdue), found it moved already
 * (perhaps only in Redis so far), or left it as it was (the guard does not hold, or there is no
 * such attempt). `durable`: PostgreSQL has it.
 */
export type CloseResult =
  | { outcome: 'closed'; attempt: Attempt; durable: boolean }
  | { outcome: 'was-closed'; attempt: Attempt; durable: false }
  | { outcome: 'unchanged' };

/** A live control on behalf of a proctor (scoped to its quizzes) or a service. */
export interface ControlInput {
  control: Control;
  /** The quizzes the caller may act on; undefined for every quiz. */
  quizScope?: readonly string[];
  /** Why, as the proctor said it (kept in the event). */
  reason?: string;
  ctx?: EventContext;
}

/** How many times start tries to insert or resume before giving up (each try is a race lost). */
const START_ROUNDS = 3;

/**
 * The domain rules of an attempt, in one place for the API and the workers: start or resume,
 * version-checked progress, the deadline, and every transition to a closed status. Redis holds the
 * live state; PostgreSQL the durable copy.
 */
export class SessionService {
  constructor(
    private readonly store: LiveStatePort,
    private readonly repo: DurablePort,
    private readonly policies: PolicyPort,
    private readonly options: { defaultTimeLimitSeconds: number; limits: AttemptLimits },
    private readonly hooks: SessionHooks = noHooks,
    private readonly log?: Logger,
    readonly clock: () => number = Date.now,
  ) {}

  /**
   * Starts an attempt, or returns the user's open attempt for the quiz (resume from any device).
   * A new attempt is durable in PostgreSQL before this returns. The one-open-attempt rule is the
   * database's (a partial unique index), so two devices starting at once get the same attempt.
   */
  async start(input: StartInput): Promise<{ attempt: Attempt; created: boolean }> {
    const found = await this.policies.rulesFor(String(input.quizId), input.userId);
    if (input.timeLimitSeconds !== undefined && found.policy && !input.fromService) {
      throw new ForbiddenError(`Quiz ${input.quizId} has a policy: its time limit is the policy's`);
    }
    const rules = effectiveRules(found, input.timeLimitSeconds, this.options.defaultTimeLimitSeconds);
    // an open attempt that turns out closed (or is closed meanwhile) lets the next round insert
    for (let round = 0; round < START_ROUNDS; round++) {
      const window = windowAt(rules, this.clock());
      if (window === 'open') {
        const created = await this.insertNew(input, rules);
        if (created) return { attempt: created, created: true };
      }
      // resuming an open attempt is never refused: not by the window, not by the attempt limit
      const resumed = await this.resumeOpen(input);
      if (resumed) return { attempt: resumed, created: false };
      if (window !== 'open') throw new QuizNotOpenError(String(input.quizId), rules.opensAt, rules.closesAt, window);
      if (rules.maxAttempts !== null) {
        const used = await this.repo.countAttempts(input.userId, input.quizId);
        if (used >= rules.maxAttempts) throw new AttemptLimitReachedError(used, rules.maxAttempts);
      }
    }
    throw new ServiceUnavailableError('postgres');
  }

  /**
   * Inserts a new attempt unless the user has one open for the quiz or has used every attempt the
   * rules allow; cached and its expiry scheduled.
   */
  private async insertNew(input: StartInput, rules: EffectiveRules): Promise<Attempt | null> {
    const now = this.clock();
    const { timeLimitSeconds } = rules;
    const candidate: Omit<Attempt, 'attemptNumber'> = {
      id: attemptIdFor(input.userId),
      userId: input.userId,
      quizId: input.quizId,
      status: INITIAL_STATUS,
      currentQuestion: 0,
      answers: new Map(),
      version: FIRST_VERSION,
      timeLimitSeconds,
      startedAt: now,
      expiresAt: cappedDeadline(deadlineOf(now, timeLimitSeconds), rules),
      lastUpdated: now,
      completedAt: null,
      endedAt: null,
      submittedBy: null,
      ...UNCONTROLLED,
      overdueHandling: rules.overdueHandling,
      gracePeriodSeconds: rules.gracePeriodSeconds,
    };
    // the started event is written with the row (no Redis write of its own, nothing to persist later)
    const ctx = input.ctx ?? SYSTEM_CONTEXT;
    const started: AttemptEvent = {
      seq: 1,
      type: 'started',
      at: now,
      actor: ctx.actor,
      request_id: ctx.requestId,
      data: { version: candidate.version, time_limit_seconds: timeLimitSeconds, expires_at: candidate.expiresAt },
    };
    const attemptNumber = await this.repo.insertIfNoneOpen({ ...candidate, eventSeq: started.seq }, rules.maxAttempts, started);
    if (attemptNumber === null) return null;
    const attempt: Attempt = { ...candidate, eventSeq: started.seq, attemptNumber };
    await this.store.fill(attempt, null, true);
    await this.quietly('schedule expiry', this.hooks.deadlineSet(attempt));
    return attempt;
  }

  /**
   * The user's open attempt for the quiz, at its latest (Redis, or PostgreSQL when newer), or null
   * when there is none to resume. One that is closed in Redis but not yet in PostgreSQL (its
   * write-behind is pending), or past its deadline, is moved on durably first, so a new one can
   * start (or, in its grace period, the overdue attempt is resumed).
   */
  private async resumeOpen(input: StartInput): Promise<Attempt | null> {
    const open = await this.repo.findOpen(input.userId, input.quizId);
    if (!open) return null; // closed between the insert and the read
    const cached = (await this.store.get(open.id))?.attempt;
    const stale = cached !== undefined && cached.version < open.version;
    if (stale) await this.store.fill(open);
    const current = cached && !stale ? cached : open;
    if (!isOpen(current.status)) {
      await this.writeDurably(current);
      return null;
    }
    if (isPastDeadline(current, this.clock())) {
      const moved = await this.closeDurably(open.id, { by: 'deadline' });
      return moved.outcome !== 'unchanged' && isOpen(moved.attempt.status) ? moved.attempt : null;
    }
    // the first start may have failed after its insert (Redis away): make sure expiry is
    // scheduled; the job id is deterministic, so this adds nothing when it already is
    await this.quietly('schedule expiry', this.hooks.deadlineSet(current));
    return (await this.note(current.id, [{ type: 'resumed', data: { version: current.version } }], input.ctx)) ?? current;
  }

  /**
   * The attempt as it is now: from Redis, or from PostgreSQL on a miss or when Redis is down (and
   * then cached again, when Redis is up). With `owner`, another user's attempt is refused (403)
   * before anything about it is shown; with `quizScope`, an attempt of another quiz.
   */
  async get(id: string, owner?: string, quizScope?: readonly string[]): Promise<Attempt> {
    const cached = await this.store.read(id).then(
      (stored) => ({ attempt: stored?.attempt ?? null, redisUp: true }),
      (err) => {
        if (!(err instanceof ServiceUnavailableError)) throw err;
        return { attempt: null, redisUp: false };
      },
    );
    if (cached.attempt) {
      this.hooks.readFrom('redis');
      return this.readable(cached.attempt, owner, quizScope);
    }
    const stored = await this.repo.findById(id);
    if (!stored) throw new SessionNotFoundError(id);
    this.hooks.readFrom('postgres');
    if (cached.redisUp) await this.store.fill(stored).catch((err) => this.log?.warn(`cache fill failed for ${id}: ${String(err)}`));
    return this.readable(stored, owner, quizScope);
  }

  /**
   * The attempt as it is now, closed or not, for an error that carries it (409
   * IDEMPOTENCY_KEY_IN_USE on an attempt's routes): from Redis, else PostgreSQL (on a miss or when
   * Redis is down; not cached again: a rare error path). 404 when there is none; 403 as for a read.
   */
  async current(id: string, owner?: string, quizScope?: readonly string[]): Promise<Attempt> {
    const cached = await this.store.read(id).then(
      (stored) => stored?.attempt ?? null,
      (err) => {
        if (!(err instanceof ServiceUnavailableError)) throw err;
        return null;
      },
    );
    const attempt = cached ?? (await this.repo.findById(id));
    if (!attempt) throw new SessionNotFoundError(id);
    this.checkAccess(attempt, owner, quizScope);
    return presentAt(attempt, this.clock());
  }

  /** Refuses (403) another user's attempt (with `owner`) or one of a quiz outside `quizScope`, before anything about it is shown. */
  private checkAccess(attempt: Attempt, owner: string | undefined, quizScope: readonly string[] | undefined): void {
    if (owner !== undefined && attempt.userId !== owner) throw new ForbiddenError();
    if (quizScope !== undefined && !quizScope.includes(String(attempt.quizId)))
      throw new ForbiddenError('This attempt is of a quiz outside the token’s quiz_ids');
  }

  /** The attempt as stored (Redis, else PostgreSQL), for a check that needs only its owner, quiz and status; 404 when there is none. */
  private async stored(id: string): Promise<Attempt> {
    const attempt = (await this.store.read(id))?.attempt ?? (await this.repo.findById(id));
    if (!attempt) throw new SessionNotFoundError(id);
    return attempt;
  }

  private readable(attempt: Attempt, owner: string | undefined, quizScope: readonly string[] | undefined): Attempt {
    this.checkAccess(attempt, owner, quizScope);
    const shown = presentAt(attempt, this.clock());
    if (shown.status === 'expired' || shown.status === 'abandoned') throw new SessionExpiredError(shown);
    return shown;
  }

  /** Applies a progress write; with a version, only if it is the current one (else 409). */
  async progress(id: string, input: ProgressInput, owner?: string): Promise<Attempt> {
    const result = await this.write(id, (now) =>
      this.store.progress(
        id,
        now,
        {
          owner,
          expectedVersion: input.expectedVersion,
          currentQuestion: input.currentQuestion,
          answers: input.answers,
          maxAnswers: this.options.limits.maxAnswers,
          idempotency: input.idempotency,
        },
        input.ctx,
      ),
    );
    return this.progressOutcome(result.code, result.stored, input.expectedVersion);
  }

  /**
   * What a progress write's outcome means for its caller: the attempt, or the error. Also how a
   * replayed outcome (an idempotency record) is answered again (`replayed`: nothing is counted).
   */
  progressOutcome(code: string, stored: StoredAttempt, expectedVersion: number | undefined, replayed = false): Attempt {
    switch (code) {
      case 'OK':
        return stored.attempt;
      case 'CONFLICT':
        if (!replayed) this.hooks.conflicted();
        throw new SessionConflictError(stored.attempt, expectedVersion ?? -1);
      case 'COMPLETED':
        throw new SessionCompletedError(stored.attempt);
      case 'PAUSED':
        throw new SessionPausedError(stored.attempt);
      case 'TOO_MANY':
        throw new ValidationError(`answers: an attempt holds at most ${this.options.limits.maxAnswers} answers`, 'answers');
      default:
        throw new SessionExpiredError(stored.attempt);
    }
  }

  /** Completes the attempt; durable in PostgreSQL before it returns; repeating it is harmless. */
  async complete(id: string, expectedVersion?: number, owner?: string, ctx?: EventContext): Promise<Attempt> {
    return this.closeByStudent(id, 'completed', expectedVersion, owner, ctx);
  }

  /** The student quits: the attempt becomes abandoned, durably. */
  async abandon(id: string, expectedVersion?: number, owner?: string, ctx?: EventContext): Promise<Attempt> {
    return this.closeByStudent(id, 'abandoned', expectedVersion, owner, ctx);
  }

  private async closeByStudent(
    id: string,
    target: 'completed' | 'abandoned',
    expectedVersion?: number,
    owner?: string,
    ctx?: EventContext,
  ): Promise<Attempt> {
    const request: CloseRequest = { guard: { kind: 'none' }, target };
    const result = await this.write(id, (now) => this.store.close(id, now, request, expectedVersion, owner, ctx));
    const attempt = result.stored.attempt;
    switch (result.code) {
      case 'OK':
      case 'ALREADY':
        // durable before the answer; also on a repeat, in case the first attempt's write failed
        return this.writeDurably(attempt);
      case 'CONFLICT':
        this.hooks.conflicted();
        throw new SessionConflictError(attempt, expectedVersion ?? -1);
      case 'PAUSED':
        throw new SessionPausedError(attempt);
      default:
        if (attempt.status === 'completed') throw new SessionCompletedError(attempt);
        throw new SessionExpiredError(attempt);
    }
  }

  /**
   * Closes an attempt for the workers: applies its deadline (deadline.ts: expired, completed by the
   * timer, abandoned, or overdue), or abandons it for idleness. Works on the Redis copy, filled from
   * PostgreSQL when Redis has none, so its latest answers close with it. The result says whether
   * this call moved it; the caller writes it to PostgreSQL (`durable: false`: the workers through
   * their batching persister, closeDurably at once).
   */
  async close(id: string, reason: CloseReason): Promise<CloseResult> {
    const request: CloseRequest =
      reason.by === 'deadline' ? { guard: { kind: 'deadline' } } : { guard: { kind: 'idle', idleMs: reason.idleMs } };
    let result = await this.store.close(id, this.clock(), request);
    if (result.code === 'MISS') {
      const stored = await this.repo.findById(id);
      if (!stored) return { outcome: 'unchanged' };
      this.hooks.readFrom('postgres');
      await this.store.fill(stored);
      result = await this.store.close(id, this.clock(), request);
      if (result.code === 'MISS') throw new ServiceUnavailableError('redis');
    }
    await this.afterWrite(result);
    const attempt = result.stored.attempt;
    if (result.code === 'OK' || result.code === 'EXPIRED') return { outcome: 'closed', attempt, durable: false };
    // moved before (perhaps only in Redis so far): the caller makes sure PostgreSQL has it
    if (result.code === 'CLOSED' || result.code === 'ALREADY') return { outcome: 'was-closed', attempt, durable: false };
    return { outcome: 'unchanged' };
  }

  /**
   * A live control (control.ts): extend, pause or resume, by a proctor or a service. Durable in
   * PostgreSQL before it returns, and the expiry job follows the new deadline (the old job finds
   * nothing due and does nothing). Reopening an expired attempt is refused while the user has
   * another open attempt at the quiz.
   */
  async control(id: string, input: ControlInput): Promise<{ attempt: Attempt; changed: boolean }> {
    const { control, quizScope } = input;
    if (quizScope !== undefined || (control.action === 'extend' && control.reopen)) await this.checkControllable(id, control, quizScope);
    const result = (await this.write(id, (now) => this.store.control(id, now, control, input.ctx, input.reason))) as Exclude<
      UnownedResult,
      { code: 'MISS' }
    >;
    // what the deadline did on the way is durable before the answer, whatever the control's outcome
    const attempt = result.movedByDeadline && result.code !== 'OK' ? await this.writeDurably(result.stored.attempt) : result.stored.attempt;
    switch (result.code) {
      case 'OK': {
        const held = await this.writeDurably(attempt);
        await this.quietly('schedule expiry', this.hooks.deadlineSet(held));
        return { attempt: held, changed: true };
      }
      case 'UNCHANGED':
        return { attempt, changed: false };
      case 'UNTIMED':
        throw new ValidationError('seconds: this attempt is untimed; there is no deadline to extend', 'seconds');
      case 'PAST':
        throw new ValidationError('seconds: the extended deadline would still be in the past; extend from now', 'seconds');
      case 'COMPLETED':
        throw new SessionCompletedError(attempt);
      case 'OVERDUE':
        throw new SessionExpiredError(attempt, 'is overdue: its time is up, and only the grace period is left');
      default:
        throw new SessionExpiredError(attempt);
    }
  }

  /** The attempt is of a quiz in scope, and (to reopen) its user has no other open attempt at the quiz. */
  private async checkControllable(id: string, control: Control, quizScope: readonly string[] | undefined): Promise<void> {
    const attempt = await this.stored(id);
    this.checkAccess(attempt, undefined, quizScope);
    if (control.action !== 'extend' || !control.reopen || isOpen(attempt.status)) return;
    const open = await this.repo.findOpen(attempt.userId, attempt.quizId);
    if (open && open.id !== id) throw new AnotherAttemptOpenError(attempt, open.id);
  }

  /** close, with the closed state written to PostgreSQL before it returns. */
  async closeDurably(id: string, reason: CloseReason): Promise<CloseResult> {
    const result = await this.close(id, reason);
    if (result.outcome !== 'unchanged' && !result.durable) await this.writeDurably(result.attempt);
    return result;
  }

  /**
   * Appends events that change nothing else (started, resumed): best-effort, since the attempt
   * itself is already durable; returns the attempt after it, or null when Redis did not take it.
   */
  private async note(
    id: string,
    events: Array<{ type: string; data: Record<string, unknown> }>,
    ctx = SYSTEM_CONTEXT,
  ): Promise<Attempt | null> {
    try {
      const result = await this.store.note(id, this.clock(), events, ctx);
      if (!('stored' in result)) return null;
      await this.afterWrite(result);
      return result.stored.attempt;
    } catch (err) {
      this.log?.warn(`recording ${events.map((e) => e.type).join(', ')} of ${id} failed: ${String(err)}`);
      return null;
    }
  }

  /**
   * The attempt's events after `after` (seq), at most `limit`: PostgreSQL's, then those still only
   * in Redis. With `owner` / `quizScope`, as for a read.
   */
  async events(
    id: string,
    after: number,
    limit: number,
    owner?: string,
    quizScope?: readonly string[],
  ): Promise<{ events: AttemptEvent[]; nextAfter: number }> {
    const attempt = await this.stored(id);
    this.checkAccess(attempt, owner, quizScope);
    const [durable, pending] = await Promise.all([this.repo.eventsAfter(attempt, after, limit), this.store.pendingEvents(id)]);
    const bySeq = new Map<number, AttemptEvent>();
    for (const e of [...durable, ...pending]) if (e.seq > after && !bySeq.has(e.seq)) bySeq.set(e.seq, e);
    const events = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(0, limit);
    return { events, nextAfter: events.length ? events[events.length - 1].seq : after };
  }

  /**
   * A page of attempts for staff: of a quiz and/or a user, in a stable order (started_at, id), after
   * `after`. Open attempts show their live state from Redis (PostgreSQL's copy may be a window old);
   * with `status`, the live status decides, so a page may hold fewer than `limit` attempts while
   * more follow (`next` is then still set).
   */
  async list(filter: {
    quizId?: string;
    userId?: string;
    status?: AttemptStatus;
    after?: { startedAt: number; id: string };
    limit: number;
  }): Promise<{ attempts: Attempt[]; next: { startedAt: number; id: string } | null }> {
    // a row's status can only be older than the live one: an open row may be anything now
    const statuses = filter.status === undefined ? undefined : isOpen(filter.status) ? OPEN_STATUSES : [filter.status, ...OPEN_STATUSES];
    const rows = await this.repo.listAttempts({ ...filter, statuses, limit: filter.limit + 1 });
    const page = rows.slice(0, filter.limit);
    const open = page.filter((a) => isOpen(a.status));
    const live = new Map<string, Attempt>();
    const cached = await this.store.getMany(open.map((a) => a.id)).catch((err) => {
      if (!(err instanceof ServiceUnavailableError)) throw err;
      return open.map(() => null); // Redis away: PostgreSQL's copy is the best there is
    });
    cached.forEach((c, i) => {
      if (c && c.attempt.version >= open[i].version) live.set(open[i].id, c.attempt);
    });
    const now = this.clock();
    const attempts = page
      .map((a) => presentAt(live.get(a.id) ?? a, now))
      .filter((a) => filter.status === undefined || a.status === filter.status);
    const last = page[page.length - 1];
    return { attempts, next: rows.length > filter.limit ? { startedAt: last.startedAt, id: last.id } : null };
  }

  /** A client's events (page_blurred, …), recorded with the server's time; with `owner`, only on that user's attempt. */
  async clientEvents(
    id: string,
    events: ReadonlyArray<{ type: string; data: Record<string, unknown> }>,
    owner?: string,
    ctx = SYSTEM_CONTEXT,
  ): Promise<number> {
    let at = 0;
    const result = await this.write(id, (now) => this.store.note(id, (at = now), events, ctx, owner));
    await this.store.publishClientEvents(result.stored.attempt, events, at);
    return result.stored.attempt.eventSeq;
  }

  /** Writes the attempt to PostgreSQL now and returns what PostgreSQL holds of it (see writeSnapshots). */
  private async writeDurably(attempt: Attempt): Promise<Attempt> {
    // its events first (the close's own among them): as durable as the close they record
    const events = await this.store.pendingEvents(attempt.id);
    await this.repo.insertEvents(events.map((event) => ({ attempt, event })));
    // outbox: what they announce is enqueued once they are durable (a failure fails this write)
    await this.hooks.eventsDurable(attempt, events);
    const held = (await writeSnapshots(this.store, this.repo, [attempt], this.clock)).get(attempt.id);
    // changed again while it was being written: the caller may retry and will get the newer state
    if (!held) throw new ServiceUnavailableError('redis');
    return held.attempt;
  }

  /** Runs a write script; on a cache miss fills Redis from PostgreSQL and runs it once more. */
  private async write(id: string, run: (now: number) => Promise<WriteResult>): Promise<FoundResult> {
    let result = await run(this.clock());
    if (result.code === 'MISS') {
      const stored = await this.repo.findById(id);
      if (!stored) throw new SessionNotFoundError(id);
      this.hooks.readFrom('postgres');
      await this.store.fill(stored);
      result = await run(this.clock());
    }
    if (result.code === 'REPLAY') throw new IdempotentReplay(result.record);
    if (!('stored' in result)) {
      if (result.code === 'FORBIDDEN') throw new ForbiddenError();
      // evicted again at once: Redis is out of memory or flushing
      throw new ServiceUnavailableError('redis');
    }
    await this.afterWrite(result);
    return result;
  }

  private async afterWrite(result: FoundResult): Promise<void> {
    const { attempt, dirtySince } = result.stored;
    if ((result.movedByDeadline || result.code === 'OK') && !isOpen(attempt.status)) this.hooks.transitioned(attempt);
    // overdue now: the job that ends the grace
    if (result.movedByDeadline && isOpen(attempt.status)) await this.quietly('schedule expiry', this.hooks.deadlineSet(attempt));
    // not awaited: the answer is already durable in Redis and listed in the dirty set, which is
    // the safety net when this enqueue fails or the process dies first (the sweep persists what
    // it lists), so the response does not wait for a second round trip; drainBackground() at
    // shutdown lets the enqueues under way land
    if (result.becameDirty)
      this.inBackground(this.quietly('schedule persist', this.hooks.becameDirty(attempt.id, dirtySince ?? this.clock())));
  }

  private readonly background = new Set<Promise<void>>();

  private inBackground(p: Promise<void>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  /** Waits for the enqueues a write started and did not wait for (shutdown, before the queues close). */
  async drainBackground(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private async quietly(what: string, p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (err) {
      this.log?.warn(`${what} failed (the sweep will catch up): ${String(err)}`);
    }
  }
}
