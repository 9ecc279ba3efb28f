import { randomUUID } from 'node:crypto';
import { isOpen, isPastDeadline, presentAt, type Attempt, type AttemptStatus } from './domain/attempt';
import {
  ForbiddenError,
  SessionCompletedError,
  SessionConflictError,
  SessionExpiredError,
  SessionNotFoundError,
  ServiceUnavailableError,
  ValidationError,
} from './errors';
import type { Logger } from './logger';
import type { SessionRepository } from './store/sessionRepository';
import type { CloseGuard, FoundResult, SessionStore, WriteResult } from './store/sessionStore';
import { writeSnapshots } from './store/snapshotWriter';

/** Limits on what one attempt may hold. */
export interface AttemptLimits {
  maxAnswers: number;
}

/** What the service tells the job queue and the metrics about; every hook is best-effort. */
export interface SessionHooks {
  /** The attempt got its first change not yet in PostgreSQL: schedule the write-behind. */
  becameDirty(id: string, dirtySince: number): Promise<void>;
  /** A timed attempt started: schedule its expiry at the deadline. */
  started(attempt: Attempt): Promise<void>;
  /** An attempt moved to a closed status. */
  transitioned(attempt: Attempt): void;
  /** Where a read was served from. */
  readFrom(source: 'redis' | 'postgres'): void;
  /** A versioned write lost the race. */
  conflicted(): void;
}

/** Hooks that do nothing, for tests and tools. */
export const noHooks: SessionHooks = {
  becameDirty: async () => undefined,
  started: async () => undefined,
  transitioned: () => undefined,
  readFrom: () => undefined,
  conflicted: () => undefined,
};

/** A request to start (or resume) an attempt. */
export interface StartInput {
  userId: string;
  quizId: string | number;
  timeLimitSeconds?: number;
}

/** A progress write: answers (question id -> answer JSON text) and/or the current question. */
export interface ProgressInput {
  expectedVersion?: number;
  currentQuestion?: number;
  answers: ReadonlyMap<string, string>;
}

/** Why a worker closes an attempt: its deadline passed, or it has been idle too long. */
export type CloseReason = { by: 'deadline' } | { by: 'idle'; idleMs: number };

/**
 * The domain rules of an attempt, in one place for the API and the workers: start or resume,
 * version-checked progress, the deadline, and every transition to a closed status. Redis holds the
 * live state; PostgreSQL the durable copy.
 */
export class SessionService {
  constructor(
    private readonly store: SessionStore,
    private readonly repo: SessionRepository,
    private readonly options: { defaultTimeLimitSeconds: number; limits: AttemptLimits },
    private readonly hooks: SessionHooks = noHooks,
    private readonly log?: Logger,
    readonly clock: () => number = Date.now,
  ) {}

  /**
   * Starts an attempt, or returns the user's open attempt for the quiz (resume from any device).
   * A new attempt is durable in PostgreSQL before this returns.
   */
  async start(input: StartInput): Promise<{ attempt: Attempt; created: boolean }> {
    for (let round = 0; round < 3; round++) {
      const now = this.clock();
      const limit = input.timeLimitSeconds ?? this.options.defaultTimeLimitSeconds;
      const candidate: Attempt = {
        id: randomUUID(),
        userId: input.userId,
        quizId: input.quizId,
        status: 'started',
        currentQuestion: 0,
        answers: new Map(),
        version: 1,
        timeLimitSeconds: limit,
        startedAt: now,
        expiresAt: limit === 0 ? null : now + limit * 1000,
        lastUpdated: now,
        completedAt: null,
        endedAt: null,
      };
      if (await this.repo.insertIfNoneOpen(candidate)) {
        await this.store.fill(candidate);
        await this.quietly('schedule expiry', this.hooks.started(candidate));
        return { attempt: candidate, created: true };
      }
      const open = await this.repo.findOpen(input.userId, input.quizId);
      if (!open) continue; // closed between the insert and the read: try again
      const live = (await this.store.get(open.id))?.attempt ?? open;
      if (live.version < open.version) await this.store.fill(open);
      const current = live.version < open.version ? open : live;
      if (isOpen(current.status) && !isPastDeadline(current, now)) {
        // the first start may have failed after its insert (Redis away): make sure expiry is
        // scheduled; the job id is deterministic, so this adds nothing when it already is
        await this.quietly('schedule expiry', this.hooks.started(current));
        return { attempt: current, created: false };
      }
      // closed in Redis but not yet in PostgreSQL (its write-behind is pending), or past its
      // deadline: make that durable, then start afresh
      if (!isOpen(current.status)) await this.writeDurably(current);
      else await this.close(open.id, { by: 'deadline' });
    }
    throw new ServiceUnavailableError('postgres');
  }

  /**
   * The attempt as it is now: from Redis, or PostgreSQL on a miss or when Redis is down. With
   * `owner`, another user's attempt is refused (403) before anything about it is shown.
   */
  async get(id: string, owner?: string): Promise<Attempt> {
    let attempt: Attempt | null = null;
    try {
      attempt = (await this.store.read(id))?.attempt ?? null;
      if (attempt) this.hooks.readFrom('redis');
    } catch (err) {
      if (!(err instanceof ServiceUnavailableError)) throw err;
      const fromDb = await this.repo.findById(id);
      if (!fromDb) throw new SessionNotFoundError(id);
      this.hooks.readFrom('postgres');
      return this.readable(fromDb, owner);
    }
    if (!attempt) {
      attempt = await this.repo.findById(id);
      if (!attempt) throw new SessionNotFoundError(id);
      this.hooks.readFrom('postgres');
      await this.store.fill(attempt).catch((err) => this.log?.warn(`cache fill failed for ${id}: ${String(err)}`));
    }
    return this.readable(attempt, owner);
  }

  private readable(attempt: Attempt, owner: string | undefined): Attempt {
    if (owner !== undefined && attempt.userId !== owner) throw new ForbiddenError();
    const shown = presentAt(attempt, this.clock());
    if (shown.status === 'expired' || shown.status === 'abandoned') throw new SessionExpiredError(shown);
    return shown;
  }

  /** Applies a progress write; with a version, only if it is the current one (else 409). */
  async progress(id: string, input: ProgressInput, owner?: string): Promise<Attempt> {
    const result = await this.write(id, (now) =>
      this.store.progress(id, now, {
        owner,
        expectedVersion: input.expectedVersion,
        currentQuestion: input.currentQuestion,
        answers: input.answers,
        maxAnswers: this.options.limits.maxAnswers,
      }),
    );
    switch (result.code) {
      case 'OK':
        return result.stored.attempt;
      case 'CONFLICT':
        this.hooks.conflicted();
        throw new SessionConflictError(result.stored.attempt, input.expectedVersion ?? -1);
      case 'COMPLETED':
        throw new SessionCompletedError(result.stored.attempt);
      case 'TOO_MANY':
        throw new ValidationError(`answers: an attempt holds at most ${this.options.limits.maxAnswers} answers`, 'answers');
      default:
        throw new SessionExpiredError(result.stored.attempt);
    }
  }

  /** Completes the attempt; durable in PostgreSQL before it returns; repeating it is harmless. */
  async complete(id: string, expectedVersion?: number, owner?: string): Promise<Attempt> {
    return this.closeByStudent(id, 'completed', expectedVersion, owner);
  }

  /** The student quits: the attempt becomes abandoned, durably. */
  async abandon(id: string, expectedVersion?: number, owner?: string): Promise<Attempt> {
    return this.closeByStudent(id, 'abandoned', expectedVersion, owner);
  }

  private async closeByStudent(id: string, target: 'completed' | 'abandoned', expectedVersion?: number, owner?: string): Promise<Attempt> {
    const result = await this.write(id, (now) => this.store.close(id, now, target, { kind: 'none' }, expectedVersion, owner));
    const attempt = result.stored.attempt;
    switch (result.code) {
      case 'OK':
      case 'ALREADY':
        // durable before the answer; also on a repeat, in case the first attempt's write failed
        return this.writeDurably(attempt);
      case 'CONFLICT':
        this.hooks.conflicted();
        throw new SessionConflictError(attempt, expectedVersion ?? -1);
      default:
        if (attempt.status === 'completed') throw new SessionCompletedError(attempt);
        throw new SessionExpiredError(attempt);
    }
  }

  /**
   * Closes an attempt for the workers: at its deadline or for idleness. Works on the Redis copy when
   * there is one (so its latest answers close with it) and on PostgreSQL alone when there is not;
   * either way the closed state is in PostgreSQL when this returns (written by `writeClosed`, which
   * the workers point at their batching persister). Returns the attempt when this
   * call closed it, null when there was nothing to do.
   */
  async close(
    id: string,
    reason: CloseReason,
    writeClosed: (attempt: Attempt) => Promise<unknown> = (attempt) => this.writeDurably(attempt),
  ): Promise<Attempt | null> {
    const target: AttemptStatus = reason.by === 'deadline' ? 'expired' : 'abandoned';
    const guard: CloseGuard = reason.by === 'deadline' ? { kind: 'deadline' } : { kind: 'idle', idleMs: reason.idleMs };
    const now = this.clock();
    const result = await this.store.close(id, now, target, guard);
    if (!('stored' in result)) {
      if (result.code === 'FORBIDDEN') return null; // no owner is passed: cannot happen
      const closed = await this.repo.close(id, target, now, {
        deadline: reason.by === 'deadline',
        idleBefore: reason.by === 'idle' ? now - reason.idleMs : undefined,
      });
      if (closed) this.hooks.transitioned(closed);
      return closed;
    }
    await this.afterWrite(result);
    if (result.code === 'NOOP') return null;
    const attempt = result.stored.attempt;
    // the closed state reaches PostgreSQL now (version-guarded, so a repeat writes nothing)
    if (!isOpen(attempt.status)) await writeClosed(attempt);
    return result.code === 'OK' || result.code === 'EXPIRED' ? attempt : null;
  }

  /** Writes the attempt to PostgreSQL now and returns what PostgreSQL holds of it (see writeSnapshots). */
  private async writeDurably(attempt: Attempt): Promise<Attempt> {
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
    if (result.code === 'EXPIRED' || (result.code === 'OK' && !isOpen(attempt.status))) this.hooks.transitioned(attempt);
    // the dirty set is the safety net when this enqueue fails: the sweep persists what it lists
    if (result.becameDirty) await this.quietly('schedule persist', this.hooks.becameDirty(attempt.id, dirtySince ?? this.clock()));
  }

  private async quietly(what: string, p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (err) {
      this.log?.warn(`${what} failed (the sweep will catch up): ${String(err)}`);
    }
  }
}
