import type { Attempt } from '../../src/shared/domain/attempt';
import { answersJson } from '../../src/shared/domain/attempt';
import { extendedDeadline, grantedSeconds, resumedDeadline, type Control } from '../../src/shared/domain/control';
import { dueChange } from '../../src/shared/domain/deadline';
import { EVENT_OF_STATUS, SYSTEM_CONTEXT, type AttemptEvent, type EventContext, type EventType } from '../../src/shared/domain/events';
import { isIdle } from '../../src/shared/domain/idle';
import type { Accommodation, QuizOverride, QuizPolicy, StartRules } from '../../src/shared/domain/policy';
import { isOpen, isRunning, OVERDUE_STATUS, PAUSED_STATUS, PROGRESS_STATUS } from '../../src/shared/domain/status';
import { nextVersion, versionMatches } from '../../src/shared/domain/version';
import { ServiceUnavailableError } from '../../src/shared/errors';
import type { DurablePort, LiveStatePort, PolicyPort, SessionHooks } from '../../src/shared/sessionService';
import { scriptRecordPrefix, type IdempotencyClaim } from '../../src/shared/store/idempotencyStore';
import { META_FIELDS, SESSION_FIELDS, type SessionMeta, type StoredAttempt } from '../../src/shared/store/sessionCodec';
import type { AttemptRef } from '../../src/shared/store/sessionRepository';
import type { CloseRequest, UnownedResult, WriteCode, WriteResult } from '../../src/shared/store/sessionStore';

/*
 * In-memory fakes of SessionService's ports (sessionService.ts LiveStatePort, DurablePort,
 * PolicyPort) and a recorder of its hooks, for unit tests of the service without Redis or
 * PostgreSQL. The rules are the domain modules' (deadline, control, idle, status, version), called
 * here as the Lua scripts call their Lua twins; what is the scripts' own (which code answers which
 * state, the events they append, when an attempt becomes dirty) follows src/shared/store/lua, and
 * test/fakePorts.contract.test.ts runs the fake store and the real one (Redis, the scripts) side
 * by side over random sequences of writes and compares every answer.
 *
 * Set `down` to make every call fail as with the store unreachable (a 503).
 */

const cloneAttempt = (a: Attempt): Attempt => ({ ...a, answers: new Map(a.answers) });

interface Cached {
  attempt: Attempt;
  dirtySince: number | null;
  /** The events not yet in PostgreSQL (session:<id>:events). */
  events: AttemptEvent[];
}

/** What the scripts answer with: the attempt's meta fields in META_FIELDS order, then its answers as one JSON text. */
export function rendered(stored: StoredAttempt): string[] {
  const meta: SessionMeta = { ...stored.attempt, dirtySince: stored.dirtySince };
  const fields = SESSION_FIELDS as unknown as Record<string, { property: keyof SessionMeta; codec: { encode(v: unknown): string } }>;
  return [...META_FIELDS.map((f) => fields[f].codec.encode(meta[fields[f].property])), answersJson(stored.attempt.answers)];
}

/** One run of a write script over a cached attempt (includes/write.lua): the deadline settled, events queued, then one answer. */
class Script {
  /** The attempt as the script sees it (the deadline's change applied by settleDeadline). */
  m: Attempt;
  /** The version before the script. */
  readonly v: number;
  private moved = false;
  private readonly queued: Array<{ type: EventType; data: Record<string, unknown> }> = [];
  /** Set by a write that keeps its outcome for an idempotency key. */
  remember: ((code: string, out: string[]) => void) | null = null;

  constructor(
    private readonly entry: Cached,
    readonly now: number,
    private readonly expected: number | undefined,
    private readonly ctx: EventContext,
  ) {
    this.m = cloneAttempt(entry.attempt);
    this.v = entry.attempt.version;
  }

  addEvent(type: EventType, data: Record<string, unknown>): void {
    this.queued.push({ type, data });
  }

  /** What the deadline does at now (deadline.ts), whoever looks; true when it moved the attempt. */
  settleDeadline(): boolean {
    const change = dueChange(this.m, this.now);
    if (!change) return false;
    this.m = {
      ...this.m,
      status: change.status,
      endedAt: change.endedAt,
      lastUpdated: this.now,
      ...(change.submitted ? { completedAt: change.endedAt, submittedBy: 'timer' as const } : {}),
    };
    this.moved = true;
    this.addEvent(EVENT_OF_STATUS[change.status], {
      by: 'deadline',
      version: nextVersion(this.v),
      ...(change.submitted ? { submitted_by: 'timer' } : {}),
    });
    return true;
  }

  versionMatches(): boolean {
    return versionMatches(this.expected, this.v);
  }

  /** Writes `changes` (with the deadline's and version + 1) and the queued events. */
  apply(changes: Partial<Attempt>, code: WriteCode): WriteResult {
    return this.commit({ ...this.m, ...changes, version: nextVersion(this.v) }, code);
  }

  /** Answers without a change of its own (the deadline's change and the queued events are still written). */
  reply(code: WriteCode): WriteResult {
    if (this.moved) return this.apply({}, code);
    if (this.queued.length === 0) return this.answer(code, false);
    // only events: the attempt itself unchanged
    return this.commit(cloneAttempt(this.entry.attempt), code);
  }

  /** Records the refused write (write_rejected), then reply. */
  reject(code: WriteCode, httpStatus: number, errorCode: string): WriteResult {
    this.addEvent('write_rejected', {
      status: httpStatus,
      error_code: errorCode,
      version: this.expected ?? null,
      attempt_status: this.m.status,
    });
    return this.reply(code);
  }

  private commit(attempt: Attempt, code: WriteCode): WriteResult {
    let seq = this.entry.attempt.eventSeq;
    for (const e of this.queued) {
      seq += 1;
      this.entry.events.push({
        seq,
        type: e.type,
        at: this.now,
        actor: { ...this.ctx.actor },
        request_id: this.ctx.requestId,
        data: e.data,
      });
    }
    if (this.queued.length) attempt.eventSeq = seq;
    const first = this.entry.dirtySince === null;
    if (first) this.entry.dirtySince = this.now;
    this.entry.attempt = attempt;
    return this.answer(code, first);
  }

  private answer(code: WriteCode, becameDirty: boolean): WriteResult {
    const stored = { attempt: cloneAttempt(this.entry.attempt), dirtySince: this.entry.dirtySince };
    this.remember?.(code, rendered(stored));
    return { code, becameDirty, movedByDeadline: this.moved, stored } as WriteResult;
  }
}

/** The live state (SessionStore over Redis and its scripts), in memory. */
export class FakeSessionStore implements LiveStatePort {
  readonly cached = new Map<string, Cached>();
  /** Idempotency records the progress write kept, by record key. */
  readonly records = new Map<string, string>();
  /** Client events published (publishClientEvents), in order. */
  readonly published: Array<{ attemptId: string; types: string[]; at: number }> = [];
  /** Every call fails as with Redis unreachable while true. */
  down = false;

  private reachable(): void {
    if (this.down) throw new ServiceUnavailableError('redis');
  }

  private stored(id: string): StoredAttempt | null {
    const c = this.cached.get(id);
    return c ? { attempt: cloneAttempt(c.attempt), dirtySince: c.dirtySince } : null;
  }

  /** Runs `body` as a write script: MISS when not cached, FORBIDDEN when another user's (with `owner`). */
  private script(
    id: string,
    now: number,
    expected: number | undefined,
    owner: string | undefined,
    ctx: EventContext,
    body: (s: Script) => WriteResult,
  ): WriteResult {
    this.reachable();
    const entry = this.cached.get(id);
    if (!entry) return { code: 'MISS' };
    if (owner && entry.attempt.userId !== owner) return { code: 'FORBIDDEN' };
    return body(new Script(entry, now, expected, ctx));
  }

  async read(id: string): Promise<StoredAttempt | null> {
    this.reachable();
    return this.stored(id);
  }

  async get(id: string): Promise<StoredAttempt | null> {
    this.reachable();
    return this.stored(id);
  }

  async getMany(ids: readonly string[]): Promise<Array<(StoredAttempt & { events: AttemptEvent[] }) | null>> {
    this.reachable();
    return ids.map((id) => {
      const s = this.stored(id);
      return s && { ...s, events: [...this.cached.get(id)!.events] };
    });
  }

  /** Caches the attempt unless the cached copy is as new or newer (fill-2.lua); the event counter never goes back. */
  async fill(attempt: Attempt, dirtySince: number | null = null): Promise<boolean> {
    this.reachable();
    const cur = this.cached.get(attempt.id);
    if (cur && cur.attempt.version >= attempt.version) return false;
    const events = cur?.events ?? [];
    const kept = Math.max(cur?.attempt.eventSeq ?? 0, events.length ? events[events.length - 1].seq : 0);
    const filled = cloneAttempt(attempt);
    if (kept > filled.eventSeq) filled.eventSeq = kept;
    this.cached.set(attempt.id, { attempt: filled, dirtySince, events });
    return true;
  }

  /** progress-4.lua. */
  async progress(
    id: string,
    now: number,
    change: {
      expectedVersion?: number;
      currentQuestion?: number;
      answers: ReadonlyMap<string, string>;
      maxAnswers: number;
      owner?: string;
      idempotency?: IdempotencyClaim;
    },
    ctx: EventContext = SYSTEM_CONTEXT,
  ): Promise<WriteResult> {
    return this.script(id, now, change.expectedVersion, change.owner, ctx, (s) => {
      const claim = change.idempotency;
      if (claim) {
        const held = this.records.get(claim.recordKey);
        if (held !== undefined) return { code: 'REPLAY', record: held };
        const prefix = scriptRecordPrefix(claim, ctx.requestId, now);
        s.remember = (code, out) => this.records.set(claim.recordKey, `${prefix},"code":"${code}","r":${JSON.stringify(out)}}`);
      }
      s.settleDeadline();
      if (s.m.status === 'completed') return s.reject('COMPLETED', 409, 'SESSION_COMPLETED');
      if (s.m.status === PAUSED_STATUS) return s.reject('PAUSED', 423, 'SESSION_PAUSED');
      if (!isRunning(s.m.status)) return s.reject('CLOSED', 410, 'SESSION_EXPIRED');
      if (!s.versionMatches()) return s.reject('CONFLICT', 409, 'SESSION_CONFLICT');
      if (change.answers.size > 0) {
        const count = s.m.answers.size + [...change.answers.keys()].filter((q) => !s.m.answers.has(q)).length;
        if (count > change.maxAnswers) return s.reject('TOO_MANY', 400, 'VALIDATION_ERROR');
      }
      const answers = new Map(s.m.answers);
      const saved: Record<string, unknown> = {};
      for (const [questionId, text] of change.answers) {
        answers.set(questionId, text);
        saved[questionId] = JSON.parse(text);
      }
      s.addEvent('answer_saved', {
        answers: saved,
        ...(change.currentQuestion === undefined ? {} : { current_question: change.currentQuestion }),
        version: nextVersion(s.v),
      });
      return s.apply(
        {
          lastUpdated: now,
          status: PROGRESS_STATUS,
          answers,
          ...(change.currentQuestion === undefined ? {} : { currentQuestion: change.currentQuestion }),
        },
        'OK',
      );
    });
  }

  /** close-3.lua. */
  close(id: string, now: number, request: CloseRequest): Promise<UnownedResult>;
  close(
    id: string,
    now: number,
    request: CloseRequest,
    expectedVersion: number | undefined,
    owner: string | undefined,
    ctx?: EventContext,
  ): Promise<WriteResult>;
  async close(
    id: string,
    now: number,
    request: CloseRequest,
    expectedVersion?: number,
    owner?: string,
    ctx: EventContext = SYSTEM_CONTEXT,
  ): Promise<WriteResult> {
    const { guard } = request;
    const target = 'target' in request ? request.target : guard.kind === 'idle' ? 'abandoned' : null;
    return this.script(id, now, expectedVersion, owner, ctx, (s) => {
      const moved = s.settleDeadline();
      if (guard.kind === 'deadline') {
        if (moved) return s.reply('OK');
        return s.reply(isRunning(s.m.status) || s.m.status === PAUSED_STATUS ? 'NOOP' : 'CLOSED');
      }
      if (s.m.status === target) return s.reply('ALREADY');
      const refuse = (code: WriteCode, httpStatus: number, errorCode: string) =>
        guard.kind === 'none' ? s.reject(code, httpStatus, errorCode) : s.reply(code);
      if (!isOpen(s.m.status)) {
        const [httpStatus, errorCode] = s.m.status === 'completed' ? [409, 'SESSION_COMPLETED'] : [410, 'SESSION_EXPIRED'];
        return refuse(moved ? 'EXPIRED' : 'CLOSED', httpStatus, errorCode);
      }
      if (s.m.status === PAUSED_STATUS) return guard.kind === 'none' ? s.reject('PAUSED', 423, 'SESSION_PAUSED') : s.reply('NOOP');
      if (guard.kind === 'idle' && !isIdle(s.m, now, guard.idleMs)) return s.reply('NOOP');
      if (!s.versionMatches()) return refuse('CONFLICT', 409, 'SESSION_CONFLICT');
      const completed = target === 'completed';
      s.addEvent(target!, {
        by: guard.kind === 'idle' ? 'idle' : 'student',
        version: nextVersion(s.v),
        ...(completed ? { submitted_by: 'student' } : {}),
      });
      return s.apply(
        { status: target!, endedAt: now, lastUpdated: now, ...(completed ? { completedAt: now, submittedBy: 'student' as const } : {}) },
        'OK',
      );
    });
  }

  /** control-3.lua. */
  async control(id: string, now: number, control: Control, ctx: EventContext = SYSTEM_CONTEXT, reason?: string): Promise<UnownedResult> {
    const why = reason ?? null;
    return this.script(id, now, undefined, undefined, ctx, (s) => {
      s.settleDeadline();
      if (s.m.status === 'completed') return s.reject('COMPLETED', 409, 'SESSION_COMPLETED');
      if (control.action === 'pause') {
        if (s.m.status === PAUSED_STATUS) return s.reply('UNCHANGED');
        if (s.m.status === OVERDUE_STATUS) return s.reject('OVERDUE', 410, 'SESSION_EXPIRED');
        if (!isRunning(s.m.status)) return s.reject('CLOSED', 410, 'SESSION_EXPIRED');
        s.addEvent('paused', { reason: why, version: nextVersion(s.v) });
        return s.apply({ status: PAUSED_STATUS, pausedAt: now, pausedFrom: s.m.status }, 'OK');
      }
      if (control.action === 'resume') {
        if (s.m.status !== PAUSED_STATUS) return isOpen(s.m.status) ? s.reply('UNCHANGED') : s.reject('CLOSED', 410, 'SESSION_EXPIRED');
        const expiresAt = s.m.expiresAt === null ? null : resumedDeadline(s.m.expiresAt, s.m.pausedAt!, now);
        s.addEvent('resumed_by_proctor', { reason: why, version: nextVersion(s.v) });
        return s.apply({ status: s.m.pausedFrom ?? PROGRESS_STATUS, pausedAt: null, pausedFrom: null, lastUpdated: now, expiresAt }, 'OK');
      }
      if (s.m.expiresAt === null) return s.reject('UNTIMED', 400, 'VALIDATION_ERROR');
      if (s.m.status === 'abandoned' || (s.m.status === 'expired' && !control.reopen)) return s.reject('CLOSED', 410, 'SESSION_EXPIRED');
      const before = s.m.expiresAt;
      const deadline = extendedDeadline(before, control.seconds, control.from, now, s.m.pausedAt);
      const granted = grantedSeconds(before, deadline);
      const changes: Partial<Attempt> = { expiresAt: deadline, extraTimeSeconds: s.m.extraTimeSeconds + granted };
      let event: EventType = 'extended';
      if (!isRunning(s.m.status) && s.m.status !== PAUSED_STATUS) {
        // expired (reopened) or overdue: back in progress, when the new deadline is ahead
        if (deadline <= now) return s.reject('PAST', 400, 'VALIDATION_ERROR');
        if (s.m.status === 'expired') event = 'reopened';
        Object.assign(changes, { status: PROGRESS_STATUS, endedAt: null, lastUpdated: now });
      }
      s.addEvent(event, {
        seconds: control.seconds,
        from: control.from,
        expires_at: deadline,
        granted_seconds: granted,
        reason: why,
        version: nextVersion(s.v),
      });
      return s.apply(changes, 'OK');
    }) as UnownedResult;
  }

  /** note-3.lua: events that change nothing else (no deadline settled). */
  async note(
    id: string,
    now: number,
    events: ReadonlyArray<{ type: string; data: Record<string, unknown> }>,
    ctx: EventContext,
    owner?: string,
  ): Promise<WriteResult> {
    return this.script(id, now, undefined, owner, ctx, (s) => {
      for (const e of events) s.addEvent(e.type as EventType, e.data);
      return s.reply('OK');
    });
  }

  async publishClientEvents(attempt: Attempt, events: ReadonlyArray<{ type: string }>, at: number): Promise<void> {
    this.published.push({ attemptId: attempt.id, types: events.map((e) => e.type), at });
  }

  async pendingEvents(id: string): Promise<AttemptEvent[]> {
    this.reachable();
    return [...(this.cached.get(id)?.events ?? [])];
  }

  /** rebase-2.lua. */
  async rebase(id: string, from: number, to: number, now: number): Promise<StoredAttempt | null> {
    this.reachable();
    const c = this.cached.get(id);
    if (!c || c.attempt.version !== from) return null;
    c.attempt = { ...c.attempt, version: to };
    if (c.dirtySince === null) c.dirtySince = now;
    return this.stored(id);
  }

  /**
   * What markPersisted-3.lua does after a write of the attempt to PostgreSQL at `version`: the
   * events through `eventsThrough` leave the pending list; clean when nothing newer is left. (The
   * service leaves this to the persister; tests use it to act as one.)
   */
  markPersisted(id: string, version: number, eventsThrough: number): void {
    const c = this.cached.get(id);
    if (!c) return;
    c.events = c.events.filter((e) => e.seq > eventsThrough);
    if (c.attempt.version <= version && c.events.length === 0) c.dirtySince = null;
  }

  /** Drops the attempt's key and events (an eviction, a TTL that ran out). */
  evict(id: string): void {
    this.cached.delete(id);
  }
}

/** Columns an upsert of a snapshot never changes (sessionRepository.ts FIXED_COLUMNS). */
const FIXED: ReadonlyArray<keyof Attempt> = [
  'id',
  'userId',
  'quizId',
  'timeLimitSeconds',
  'startedAt',
  'attemptNumber',
  'overdueHandling',
  'gracePeriodSeconds',
];

/** The durable copy (SessionRepository over PostgreSQL), in memory: rows and the event log. */
export class FakeSessionRepository implements DurablePort {
  readonly rows = new Map<string, Attempt>();
  readonly events = new Map<string, AttemptEvent[]>();
  /** Every call fails as with PostgreSQL unreachable while true. */
  down = false;

  private reachable(): void {
    if (this.down) throw new ServiceUnavailableError('postgres');
  }

  /** The row as read back: its event_seq is the latest event PostgreSQL holds. */
  private read(row: Attempt): Attempt {
    const events = this.events.get(row.id) ?? [];
    return { ...cloneAttempt(row), eventSeq: events.reduce((max, e) => Math.max(max, e.seq), 0) };
  }

  private of(userId: string, quizId: string | number): Attempt[] {
    return [...this.rows.values()].filter((r) => r.userId === userId && String(r.quizId) === String(quizId));
  }

  /** Inserts unless the user has an open attempt at the quiz (the unique index) or has made `maxAttempts`; its number is the count + 1. */
  async insertIfNoneOpen(a: Omit<Attempt, 'attemptNumber'>, maxAttempts: number | null, started?: AttemptEvent): Promise<number | null> {
    this.reachable();
    const mine = this.of(a.userId, a.quizId);
    if (mine.some((r) => isOpen(r.status))) return null;
    if (maxAttempts !== null && mine.length >= maxAttempts) return null;
    const attemptNumber = mine.length + 1;
    this.rows.set(a.id, { ...a, answers: new Map(a.answers), attemptNumber });
    if (started) this.events.set(a.id, [started]);
    return attemptNumber;
  }

  async listAttempts(filter: {
    quizId?: string;
    userId?: string;
    statuses?: readonly string[];
    after?: { startedAt: number; id: string };
    limit: number;
  }): Promise<Attempt[]> {
    this.reachable();
    const after = filter.after;
    return [...this.rows.values()]
      .filter((r) => filter.quizId === undefined || String(r.quizId) === filter.quizId)
      .filter((r) => filter.userId === undefined || r.userId === filter.userId)
      .filter((r) => filter.statuses === undefined || filter.statuses.includes(r.status))
      .filter((r) => !after || r.startedAt > after.startedAt || (r.startedAt === after.startedAt && r.id > after.id))
      .sort((x, y) => x.startedAt - y.startedAt || (x.id < y.id ? -1 : 1))
      .slice(0, filter.limit)
      .map((r) => this.read(r));
  }

  async countAttempts(userId: string, quizId: string | number): Promise<number> {
    this.reachable();
    return this.of(userId, quizId).length;
  }

  async findOpen(userId: string, quizId: string | number): Promise<Attempt | null> {
    this.reachable();
    const open = this.of(userId, quizId).find((r) => isOpen(r.status));
    return open ? this.read(open) : null;
  }

  async findById(id: string): Promise<Attempt | null> {
    this.reachable();
    const row = this.rows.get(id);
    return row ? this.read(row) : null;
  }

  /** Each event once (a replayed batch writes nothing twice). */
  async insertEvents(events: ReadonlyArray<{ attempt: AttemptRef; event: AttemptEvent }>): Promise<void> {
    this.reachable();
    for (const { attempt, event } of events) {
      const log = this.events.get(attempt.id) ?? [];
      if (!log.some((e) => e.seq === event.seq)) log.push(event);
      this.events.set(attempt.id, log);
    }
  }

  async eventsAfter(attempt: AttemptRef, after: number, limit: number): Promise<AttemptEvent[]> {
    this.reachable();
    return [...(this.events.get(attempt.id) ?? [])]
      .filter((e) => e.seq > after)
      .sort((x, y) => x.seq - y.seq)
      .slice(0, limit);
  }

  /** A snapshot replaces a row only when newer (version.ts); a new id is inserted. Returns the ids written. */
  async upsertSnapshots(attempts: readonly Attempt[]): Promise<string[]> {
    this.reachable();
    const written: string[] = [];
    for (const a of attempts) {
      const row = this.rows.get(a.id);
      if (row && !(row.version < a.version)) continue;
      const next = cloneAttempt(a);
      if (row) for (const column of FIXED) (next as unknown as Record<string, unknown>)[column] = row[column];
      this.rows.set(a.id, next);
      written.push(a.id);
    }
    return written;
  }

  async versionsOf(attempts: readonly AttemptRef[]): Promise<Map<string, { version: number; lastUpdated: number }>> {
    this.reachable();
    const out = new Map<string, { version: number; lastUpdated: number }>();
    for (const a of attempts) {
      const row = this.rows.get(a.id);
      if (row) out.set(a.id, { version: row.version, lastUpdated: row.lastUpdated });
    }
    return out;
  }
}

/** Quiz policies, overrides and accommodations (PolicyStore.rulesFor), in memory. */
export class FakePolicies implements PolicyPort {
  readonly policies = new Map<string, QuizPolicy>();
  readonly overrides = new Map<string, QuizOverride>();
  readonly accommodations = new Map<string, Accommodation>();

  setPolicy(policy: Omit<QuizPolicy, 'updatedAt'>): void {
    this.policies.set(policy.quizId, { ...policy, updatedAt: 0 });
  }

  setOverride(override: QuizOverride): void {
    this.overrides.set(`${override.quizId}\0${override.userId}`, override);
  }

  async rulesFor(quizId: string, userId: string): Promise<StartRules> {
    return {
      policy: this.policies.get(quizId) ?? null,
      override: this.overrides.get(`${quizId}\0${userId}`) ?? null,
      accommodation: this.accommodations.get(userId) ?? null,
    };
  }
}

/** Hooks whose calls are jest mocks (each does what noHooks does, unless a test says otherwise). */
export function recordingHooks(): { [K in keyof SessionHooks]: jest.Mock } & SessionHooks {
  return {
    becameDirty: jest.fn(async () => undefined),
    deadlineSet: jest.fn(async () => undefined),
    transitioned: jest.fn(() => undefined),
    readFrom: jest.fn(() => undefined),
    conflicted: jest.fn(() => undefined),
    eventsDurable: jest.fn(async () => undefined),
  };
}
