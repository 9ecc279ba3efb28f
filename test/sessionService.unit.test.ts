import type { Attempt } from '../src/shared/domain/attempt';
import type { AttemptEvent } from '../src/shared/domain/events';
import {
  AnotherAttemptOpenError,
  AttemptLimitReachedError,
  ForbiddenError,
  QuizNotOpenError,
  ServiceUnavailableError,
  SessionCompletedError,
  SessionConflictError,
  SessionExpiredError,
  SessionNotFoundError,
  SessionPausedError,
  ValidationError,
} from '../src/shared/errors';
import { createLogger, type LogSink } from '../src/shared/logger';
import { IdempotentReplay, SessionService } from '../src/shared/sessionService';
import { FakePolicies, FakeSessionRepository, FakeSessionStore, recordingHooks } from './support/fakePorts';

/*
 * SessionService's rules over in-memory fakes of its ports (test/support/fakePorts.ts; the fake
 * live state is checked against the real scripts by test/fakePorts.contract.test.ts): no Redis,
 * no PostgreSQL, a clock the test moves. What the service does around the stores: the start's
 * rounds, policies' limits and windows, the fallback to PostgreSQL, the errors each outcome is
 * answered with, the durable close (events, then the snapshot), the hooks.
 */

const BASE = Date.UTC(2026, 11, 1, 9, 0, 0);
const DEFAULT_LIMIT_SECONDS = 600;
const MAX_ANSWERS = 5;
const STUDENT = { actor: { id: 'u1', role: 'student' as const }, requestId: 'req-1' };

let store: FakeSessionStore;
let repo: FakeSessionRepository;
let policies: FakePolicies;
let hooks: ReturnType<typeof recordingHooks>;
let now: number;
let warnings: string[];
let service: SessionService;

beforeEach(() => {
  store = new FakeSessionStore();
  repo = new FakeSessionRepository();
  policies = new FakePolicies();
  hooks = recordingHooks();
  now = BASE;
  warnings = [];
  const sink: LogSink = { write: (_stream, line) => void warnings.push(line), flush: async () => undefined, flushSync: () => undefined };
  service = new SessionService(
    store,
    repo,
    policies,
    { defaultTimeLimitSeconds: DEFAULT_LIMIT_SECONDS, limits: { maxAnswers: MAX_ANSWERS } },
    hooks,
    createLogger('warn', '', sink),
    () => now,
  );
});

const start = (userId = 'u1', quizId: string | number = 'quiz-1', extra: Partial<Parameters<SessionService['start']>[0]> = {}) =>
  service.start({ userId, quizId, ctx: STUDENT, ...extra });
const answers = (entries: Record<string, unknown>) => new Map(Object.entries(entries).map(([q, v]) => [q, JSON.stringify(v)]));
const types = (events: readonly AttemptEvent[]) => events.map((e) => e.type);
/** Acts as the write-behind: the attempt as Redis holds it written to PostgreSQL with its events, and Redis marked clean. */
async function persist(id: string): Promise<void> {
  const cached = (await store.get(id))!.attempt;
  const events = await store.pendingEvents(id);
  await repo.insertEvents(events.map((event) => ({ attempt: cached, event })));
  await repo.upsertSnapshots([cached]);
  store.markPersisted(id, cached.version, cached.eventSeq);
}

describe('start', () => {
  test('a new attempt is durable and cached before it returns, numbered 1, with its deadline scheduled', async () => {
    const { attempt, created } = await start();
    expect(created).toBe(true);
    expect(attempt).toMatchObject({ userId: 'u1', quizId: 'quiz-1', status: 'started', version: 1, attemptNumber: 1, eventSeq: 1 });
    expect(attempt.expiresAt).toBe(BASE + DEFAULT_LIMIT_SECONDS * 1000);
    expect(repo.rows.get(attempt.id)).toMatchObject({ status: 'started', version: 1 });
    expect(types(repo.events.get(attempt.id)!)).toEqual(['started']);
    expect(repo.events.get(attempt.id)![0]).toMatchObject({ seq: 1, actor: STUDENT.actor, request_id: 'req-1' });
    expect((await store.get(attempt.id))!.attempt).toMatchObject({ id: attempt.id, version: 1, eventSeq: 1 });
    // cached as PostgreSQL has it: not dirty
    expect((await store.get(attempt.id))!.dirtySince).toBeNull();
    expect(hooks.deadlineSet).toHaveBeenCalledWith(attempt);
  });

  test('a second start resumes the open attempt (any device) and records that it did', async () => {
    const first = await start();
    now += 5000;
    const again = await start();
    expect(again.created).toBe(false);
    expect(again.attempt.id).toBe(first.attempt.id);
    expect(repo.rows.size).toBe(1);
    expect(types(await store.pendingEvents(first.attempt.id))).toEqual(['resumed']);
    expect(again.attempt.eventSeq).toBe(2);
    // a note changes no version; the attempt became dirty for its event
    expect(again.attempt.version).toBe(1);
    expect(hooks.becameDirty).toHaveBeenCalledWith(first.attempt.id, now);
    expect(hooks.deadlineSet).toHaveBeenCalledTimes(2);
  });

  test('the time limit: a policy’s, a student may not ask for one, a service’s is ignored; an accommodation stretches it', async () => {
    expect((await start('u1', 'open-quiz', { timeLimitSeconds: 120 })).attempt.timeLimitSeconds).toBe(120);
    policies.setPolicy({
      quizId: 'quiz-1',
      timeLimitSeconds: 300,
      maxAttempts: null,
      overdueHandling: 'expire',
      gracePeriodSeconds: null,
      opensAt: null,
      closesAt: null,
    });
    await expect(start('u1', 'quiz-1', { timeLimitSeconds: 60 })).rejects.toThrow(ForbiddenError);
    expect(repo.rows.size).toBe(1);
    const byService = await start('u1', 'quiz-1', { timeLimitSeconds: 60, fromService: true });
    expect(byService.attempt).toMatchObject({ timeLimitSeconds: 300, expiresAt: BASE + 300_000 });
    policies.accommodations.set('u2', { userId: 'u2', timeMultiplier: 1.5, extraTimeSeconds: 30 });
    expect((await start('u2', 'quiz-1')).attempt.timeLimitSeconds).toBe(300 * 1.5 + 30);
  });

  test('the attempt limit: refused once used up (the open attempt is still resumed); an override adds attempts', async () => {
    policies.setPolicy({
      quizId: 'quiz-1',
      timeLimitSeconds: 300,
      maxAttempts: 1,
      overdueHandling: 'expire',
      gracePeriodSeconds: null,
      opensAt: null,
      closesAt: null,
    });
    const first = await start();
    expect((await start()).attempt.id).toBe(first.attempt.id);
    await service.complete(first.attempt.id, undefined, 'u1', STUDENT);
    const refused = await start().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AttemptLimitReachedError);
    expect(refused).toMatchObject({ status: 409 });
    policies.setOverride({ quizId: 'quiz-1', userId: 'u1', timeLimitSeconds: null, extraAttempts: 1, closesAt: null });
    const second = await start();
    expect(second).toMatchObject({ created: true, attempt: { attemptNumber: 2 } });
  });

  test('the window: no new attempt before it opens or after it closes, but the open one is resumed after; a deadline never outlives it', async () => {
    const opensAt = BASE + 60_000;
    const closesAt = BASE + 120_000;
    policies.setPolicy({
      quizId: 'quiz-1',
      timeLimitSeconds: 600,
      maxAttempts: null,
      overdueHandling: 'expire',
      gracePeriodSeconds: null,
      opensAt,
      closesAt,
    });
    await expect(start()).rejects.toThrow(QuizNotOpenError);
    now = opensAt;
    const { attempt } = await start();
    expect(attempt.expiresAt).toBe(closesAt);
    now = closesAt - 1;
    await expect(start('u2')).resolves.toMatchObject({ created: true });
    now = closesAt;
    // the window closed and so did the attempt's deadline: it is moved on, and no new one may start
    await expect(start('u3')).rejects.toThrow(QuizNotOpenError);
    await expect(start()).rejects.toThrow(QuizNotOpenError);
    expect(repo.rows.get(attempt.id)!.status).toBe('expired');
  });

  test('a race lost between the insert and the resume (the open attempt closed meanwhile) is another round', async () => {
    const insert = jest.spyOn(repo, 'insertIfNoneOpen').mockResolvedValueOnce(null);
    const findOpen = jest.spyOn(repo, 'findOpen').mockResolvedValueOnce(null);
    const { attempt, created } = await start();
    expect(created).toBe(true);
    expect(insert).toHaveBeenCalledTimes(2);
    expect(findOpen).toHaveBeenCalledTimes(1);
    expect(repo.rows.get(attempt.id)).toBeDefined();
  });

  test('three races lost in a row: 503, nothing written', async () => {
    jest.spyOn(repo, 'insertIfNoneOpen').mockResolvedValue(null);
    jest.spyOn(repo, 'findOpen').mockResolvedValue(null);
    const err = await start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    expect(err).toMatchObject({ status: 503 });
    expect(repo.insertIfNoneOpen).toHaveBeenCalledTimes(3);
    expect(repo.rows.size).toBe(0);
  });

  test('an attempt closed in Redis whose close PostgreSQL lacks yet: written durably first, then a new one starts', async () => {
    const first = await start();
    // closed in Redis only (as a close whose durable write failed would leave it)
    await store.close(first.attempt.id, now, { guard: { kind: 'none' }, target: 'abandoned' }, undefined, 'u1', STUDENT);
    expect(repo.rows.get(first.attempt.id)!.status).toBe('started');
    const second = await start();
    expect(second).toMatchObject({ created: true, attempt: { attemptNumber: 2 } });
    expect(repo.rows.get(first.attempt.id)).toMatchObject({ status: 'abandoned', version: 2 });
    expect(types(repo.events.get(first.attempt.id)!)).toEqual(['started', 'abandoned']);
  });

  test('an open attempt past its deadline is closed durably (expired), and a new one starts', async () => {
    const first = await start();
    now += DEFAULT_LIMIT_SECONDS * 1000;
    const second = await start();
    expect(second.created).toBe(true);
    expect(repo.rows.get(first.attempt.id)).toMatchObject({ status: 'expired', endedAt: first.attempt.expiresAt });
    expect(types(repo.events.get(first.attempt.id)!)).toEqual(['started', 'expired']);
    expect(hooks.transitioned).toHaveBeenCalledWith(expect.objectContaining({ id: first.attempt.id, status: 'expired' }));
  });

  test('in its grace period the overdue attempt is resumed, not replaced', async () => {
    policies.setPolicy({
      quizId: 'quiz-1',
      timeLimitSeconds: 60,
      maxAttempts: null,
      overdueHandling: 'graceperiod',
      gracePeriodSeconds: 30,
      opensAt: null,
      closesAt: null,
    });
    const first = await start();
    now += 70_000;
    const again = await start();
    expect(again).toMatchObject({ created: false, attempt: { id: first.attempt.id, status: 'overdue' } });
    expect(repo.rows.get(first.attempt.id)!.status).toBe('overdue');
  });

  test('a Redis copy older than PostgreSQL’s is replaced by PostgreSQL’s on resume', async () => {
    const first = await start();
    // PostgreSQL moved on (another process wrote a newer version) while Redis kept an old copy
    await repo.upsertSnapshots([{ ...first.attempt, version: 5, currentQuestion: 3, lastUpdated: now }]);
    const again = await start();
    expect(again.attempt).toMatchObject({ id: first.attempt.id, version: 5, currentQuestion: 3 });
    expect((await store.get(first.attempt.id))!.attempt.version).toBe(5);
  });

  test('scheduling the expiry is best-effort: its failure is logged, the start answers', async () => {
    hooks.deadlineSet.mockRejectedValue(new Error('queue away'));
    await expect(start()).resolves.toMatchObject({ created: true });
    expect(warnings.join('')).toMatch(/schedule expiry failed \(the sweep will catch up\): Error: queue away/);
  });
});

describe('get', () => {
  test('from Redis when cached; on a miss from PostgreSQL, cached again; 404 when neither has it', async () => {
    const { attempt } = await start();
    await expect(service.get(attempt.id)).resolves.toMatchObject({ id: attempt.id });
    expect(hooks.readFrom).toHaveBeenLastCalledWith('redis');
    store.evict(attempt.id);
    await expect(service.get(attempt.id)).resolves.toMatchObject({ id: attempt.id, version: 1 });
    expect(hooks.readFrom).toHaveBeenLastCalledWith('postgres');
    expect(store.cached.has(attempt.id)).toBe(true);
    await expect(service.get('00000000-0000-4000-8000-000000000000')).rejects.toThrow(SessionNotFoundError);
  });

  test('Redis away: PostgreSQL answers, and no fill is tried', async () => {
    const { attempt } = await start();
    store.down = true;
    const fill = jest.spyOn(store, 'fill');
    await expect(service.get(attempt.id)).resolves.toMatchObject({ id: attempt.id });
    expect(hooks.readFrom).toHaveBeenLastCalledWith('postgres');
    expect(fill).not.toHaveBeenCalled();
  });

  test('a failed cache fill is logged and the read still answers', async () => {
    const { attempt } = await start();
    store.evict(attempt.id);
    jest.spyOn(store, 'fill').mockRejectedValueOnce(new ServiceUnavailableError('redis'));
    await expect(service.get(attempt.id)).resolves.toMatchObject({ id: attempt.id });
    expect(warnings.join('')).toMatch(/cache fill failed for /);
  });

  test('another user’s attempt, or one of a quiz outside the scope: 403', async () => {
    const { attempt } = await start();
    await expect(service.get(attempt.id, 'u2')).rejects.toThrow(ForbiddenError);
    await expect(service.get(attempt.id, undefined, ['quiz-2'])).rejects.toThrow(ForbiddenError);
    await expect(service.get(attempt.id, 'u1', ['quiz-1'])).resolves.toMatchObject({ id: attempt.id });
  });

  test('past its deadline it reads as expired (410) before any write moved it', async () => {
    const { attempt } = await start();
    now = attempt.expiresAt!;
    const err = await service.get(attempt.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionExpiredError);
    expect(err).toMatchObject({ status: 410 });
    // only shown so: Redis still holds it running
    expect((await store.get(attempt.id))!.attempt.status).toBe('started');
  });
});

describe('progress', () => {
  test('applied with version + 1; the first change not in PostgreSQL schedules the write-behind, once', async () => {
    const { attempt } = await start('u1', 'quiz-1', { ctx: undefined });
    now += 1000;
    const after = await service.progress(attempt.id, { expectedVersion: 1, currentQuestion: 2, answers: answers({ q1: 'A' }) }, 'u1');
    expect(after).toMatchObject({ version: 2, status: 'in_progress', currentQuestion: 2, lastUpdated: now });
    expect(after.answers.get('q1')).toBe('"A"');
    expect(hooks.becameDirty).toHaveBeenCalledTimes(1);
    expect(hooks.becameDirty).toHaveBeenCalledWith(attempt.id, now);
    await service.progress(attempt.id, { answers: answers({ q2: 'B' }) });
    expect(hooks.becameDirty).toHaveBeenCalledTimes(1);
    // nothing durable yet: that is the write-behind's job
    expect(repo.rows.get(attempt.id)!.version).toBe(1);
  });

  test('the response does not wait for the persist enqueue; a failed one is a warning; drainBackground waits for those under way', async () => {
    const { attempt } = await start();
    let land!: () => void;
    hooks.becameDirty.mockImplementationOnce(() => new Promise<void>((resolve) => (land = resolve)));
    const after = await service.progress(attempt.id, { answers: answers({ q1: 'A' }) });
    expect(after.version).toBe(2);
    expect(hooks.becameDirty).toHaveBeenCalledTimes(1);
    let drained = false;
    const drain = service.drainBackground().then(() => (drained = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false);
    land();
    await drain;
    expect(drained).toBe(true);

    const second = await start('u2');
    hooks.becameDirty.mockImplementationOnce(async () => {
      throw new Error('queue down');
    });
    await service.progress(second.attempt.id, { answers: answers({ q1: 'A' }) });
    await service.drainBackground();
    expect(warnings.join('')).toContain('schedule persist failed (the sweep will catch up): Error: queue down');
  });

  test('a stale version: 409 with the current attempt, counted as a conflict, nothing applied', async () => {
    const { attempt } = await start();
    await service.progress(attempt.id, { expectedVersion: 1, answers: answers({ q1: 'A' }) });
    const err = await service.progress(attempt.id, { expectedVersion: 1, answers: answers({ q1: 'B' }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionConflictError);
    expect(err).toMatchObject({ status: 409 });
    expect(hooks.conflicted).toHaveBeenCalledTimes(1);
    const held = (await store.get(attempt.id))!.attempt;
    expect(held.version).toBe(2);
    expect(held.answers.get('q1')).toBe('"A"');
    expect(types(await store.pendingEvents(attempt.id))).toEqual(['answer_saved', 'write_rejected']);
  });

  test('not cached (evicted): filled from PostgreSQL and applied; 404 when PostgreSQL has none either', async () => {
    const { attempt } = await start();
    store.evict(attempt.id);
    const after = await service.progress(attempt.id, { expectedVersion: 1, answers: answers({ q1: 'A' }) });
    expect(after.version).toBe(2);
    expect(hooks.readFrom).toHaveBeenCalledWith('postgres');
    // the event counter goes on from PostgreSQL's events
    expect((await store.pendingEvents(attempt.id)).map((e) => e.seq)).toEqual([2]);
    await expect(service.progress('00000000-0000-4000-8000-000000000000', { answers: answers({ q1: 'A' }) })).rejects.toThrow(
      SessionNotFoundError,
    );
  });

  test('evicted again at once (Redis out of memory): 503', async () => {
    const { attempt } = await start();
    store.evict(attempt.id);
    jest.spyOn(store, 'fill').mockResolvedValue(false);
    await expect(service.progress(attempt.id, { answers: answers({ q1: 'A' }) })).rejects.toThrow(ServiceUnavailableError);
  });

  test('each refusal is its error: paused 423, completed 409, expired 410, too many answers 400, another user’s 403', async () => {
    const paused = (await start('u1')).attempt;
    await service.control(paused.id, { control: { action: 'pause' } });
    await expect(service.progress(paused.id, { answers: answers({ q1: 'A' }) })).rejects.toMatchObject({
      status: 423,
      constructor: SessionPausedError,
    });

    const completed = (await start('u2')).attempt;
    await service.complete(completed.id);
    await expect(service.progress(completed.id, { answers: answers({ q1: 'A' }) })).rejects.toMatchObject({
      status: 409,
      constructor: SessionCompletedError,
    });

    const abandoned = (await start('u3')).attempt;
    await service.abandon(abandoned.id);
    await expect(service.progress(abandoned.id, { answers: answers({ q1: 'A' }) })).rejects.toMatchObject({
      status: 410,
      constructor: SessionExpiredError,
    });

    const full = (await start('u4')).attempt;
    await service.progress(full.id, { answers: answers({ q1: 1, q2: 2, q3: 3, q4: 4, q5: 5 }) });
    // a new answer beyond MAX_ANSWERS is refused; replacing one is not
    await expect(service.progress(full.id, { answers: answers({ q6: 6 }) })).rejects.toMatchObject({
      status: 400,
      constructor: ValidationError,
    });
    await expect(service.progress(full.id, { answers: answers({ q5: 'five' }) })).resolves.toMatchObject({ version: 3 });

    await expect(service.progress(full.id, { answers: answers({ q1: 'A' }) }, 'u1')).rejects.toThrow(ForbiddenError);
    expect(hooks.conflicted).not.toHaveBeenCalled();
  });

  test('the deadline passes before the write: 410, and the attempt is moved (the transition is announced)', async () => {
    const { attempt } = await start();
    now = attempt.expiresAt! + 1;
    await expect(service.progress(attempt.id, { answers: answers({ q1: 'A' }) })).rejects.toThrow(SessionExpiredError);
    expect(hooks.transitioned).toHaveBeenCalledWith(expect.objectContaining({ id: attempt.id, status: 'expired', version: 2 }));
    expect(types(await store.pendingEvents(attempt.id))).toEqual(['expired', 'write_rejected']);
  });

  test('the same idempotency key again: the kept outcome comes back, nothing is applied twice', async () => {
    const { attempt } = await start();
    const claim = { recordKey: `session:${attempt.id}:idem:abc`, fingerprint: 'fp' };
    const first = await service.progress(attempt.id, { idempotency: claim, expectedVersion: 1, answers: answers({ q1: 'A' }) });
    expect(first.version).toBe(2);
    const replay = await service
      .progress(attempt.id, { idempotency: claim, expectedVersion: 1, answers: answers({ q1: 'A' }) })
      .catch((e: unknown) => e);
    expect(replay).toBeInstanceOf(IdempotentReplay);
    expect(JSON.parse((replay as IdempotentReplay).record)).toMatchObject({ fp: 'fp', state: 'done', code: 'OK' });
    expect((await store.get(attempt.id))!.attempt.version).toBe(2);
    // not a conflict: the client's retry of a request that was applied
    expect(hooks.conflicted).not.toHaveBeenCalled();
  });
});

describe('complete and abandon: durable before the answer', () => {
  test('complete: the events first, then what they announce, then the snapshot; the answer is what PostgreSQL holds', async () => {
    const { attempt } = await start();
    await service.progress(attempt.id, { answers: answers({ q1: 'A' }) });
    const insertEvents = jest.spyOn(repo, 'insertEvents');
    const upsert = jest.spyOn(repo, 'upsertSnapshots');
    now += 2000;
    const done = await service.complete(attempt.id, 2, 'u1', STUDENT);
    expect(done).toMatchObject({ status: 'completed', version: 3, submittedBy: 'student', completedAt: now, endedAt: now });
    const [written] = insertEvents.mock.calls[0];
    expect(written.map((w) => w.event.type)).toEqual(['answer_saved', 'completed']);
    expect(hooks.eventsDurable).toHaveBeenCalledWith(
      expect.objectContaining({ id: attempt.id }),
      expect.arrayContaining([expect.objectContaining({ type: 'completed' })]),
    );
    expect(insertEvents.mock.invocationCallOrder[0]).toBeLessThan(hooks.eventsDurable.mock.invocationCallOrder[0]);
    expect(hooks.eventsDurable.mock.invocationCallOrder[0]).toBeLessThan(upsert.mock.invocationCallOrder[0]);
    expect(repo.rows.get(attempt.id)).toMatchObject({ status: 'completed', version: 3, submittedBy: 'student' });
    expect(repo.rows.get(attempt.id)!.answers.get('q1')).toBe('"A"');
    expect(hooks.transitioned).toHaveBeenCalledWith(expect.objectContaining({ status: 'completed' }));
  });

  test('completing again is harmless: the same attempt, written again in case the first write failed', async () => {
    const { attempt } = await start();
    await service.complete(attempt.id);
    const again = await service.complete(attempt.id);
    expect(again).toMatchObject({ status: 'completed', version: 2 });
    expect(hooks.transitioned).toHaveBeenCalledTimes(1);
  });

  test('what the events announce failing fails the close: the snapshot is not written, a retry writes it', async () => {
    const { attempt } = await start();
    hooks.eventsDurable.mockRejectedValueOnce(new Error('outbox away'));
    await expect(service.complete(attempt.id)).rejects.toThrow('outbox away');
    expect(repo.rows.get(attempt.id)!.status).toBe('started');
    // the retry: closed in Redis already (ALREADY), and now durable
    await expect(service.complete(attempt.id)).resolves.toMatchObject({ status: 'completed' });
    expect(repo.rows.get(attempt.id)!.status).toBe('completed');
    expect(types(repo.events.get(attempt.id)!)).toEqual(['started', 'completed']);
  });

  test('a stale version is 409 (a conflict); a paused attempt 423; an expired one 410; an abandoned one may not be completed', async () => {
    const { attempt } = await start();
    await service.progress(attempt.id, { answers: answers({ q1: 'A' }) });
    await expect(service.complete(attempt.id, 1)).rejects.toThrow(SessionConflictError);
    expect(hooks.conflicted).toHaveBeenCalledTimes(1);
    await service.control(attempt.id, { control: { action: 'pause' } });
    await expect(service.complete(attempt.id)).rejects.toThrow(SessionPausedError);
    await service.control(attempt.id, { control: { action: 'resume' } });
    await service.abandon(attempt.id);
    await expect(service.complete(attempt.id)).rejects.toMatchObject({ status: 410, constructor: SessionExpiredError });

    const late = (await start('u2')).attempt;
    now = late.expiresAt!;
    await expect(service.complete(late.id)).rejects.toMatchObject({ status: 410, constructor: SessionExpiredError });
    // what the deadline did is announced
    expect(hooks.transitioned).toHaveBeenCalledWith(expect.objectContaining({ id: late.id, status: 'expired' }));
  });

  test('a snapshot changed while it was written (Redis came back older): the Redis copy is moved above PostgreSQL’s', async () => {
    const { attempt } = await start();
    // PostgreSQL holds version 2 with other content than Redis' version 2 will have
    await repo.upsertSnapshots([{ ...attempt, version: 2, lastUpdated: now - 1 }]);
    const done = await service.complete(attempt.id);
    expect(done).toMatchObject({ status: 'completed', version: 3 });
    expect(repo.rows.get(attempt.id)).toMatchObject({ status: 'completed', version: 3 });
  });
});

describe('close for the workers', () => {
  test('by the deadline: closed in Redis, not yet durable; closeDurably writes it', async () => {
    const { attempt } = await start();
    await expect(service.close(attempt.id, { by: 'deadline' })).resolves.toEqual({ outcome: 'unchanged' });
    now = attempt.expiresAt!;
    const closed = await service.close(attempt.id, { by: 'deadline' });
    expect(closed).toMatchObject({ outcome: 'closed', durable: false, attempt: { status: 'expired' } });
    expect(repo.rows.get(attempt.id)!.status).toBe('started');
    await expect(service.closeDurably(attempt.id, { by: 'deadline' })).resolves.toMatchObject({ outcome: 'was-closed' });
    expect(repo.rows.get(attempt.id)).toMatchObject({ status: 'expired', endedAt: attempt.expiresAt });
  });

  test('not cached: filled from PostgreSQL first; an attempt PostgreSQL lacks is left alone', async () => {
    const { attempt } = await start();
    store.evict(attempt.id);
    now = attempt.expiresAt!;
    await expect(service.close(attempt.id, { by: 'deadline' })).resolves.toMatchObject({ outcome: 'closed' });
    expect(hooks.readFrom).toHaveBeenCalledWith('postgres');
    await expect(service.close('00000000-0000-4000-8000-000000000000', { by: 'deadline' })).resolves.toEqual({ outcome: 'unchanged' });
  });

  test('idle: abandoned only once idle for the time given', async () => {
    const { attempt } = await start();
    now += 59_000;
    await expect(service.close(attempt.id, { by: 'idle', idleMs: 60_000 })).resolves.toEqual({ outcome: 'unchanged' });
    now += 1000;
    const closed = await service.closeDurably(attempt.id, { by: 'idle', idleMs: 60_000 });
    expect(closed).toMatchObject({ outcome: 'closed', attempt: { status: 'abandoned' } });
    expect(repo.rows.get(attempt.id)!.status).toBe('abandoned');
    expect(repo.events.get(attempt.id)!.at(-1)).toMatchObject({ type: 'abandoned', data: { by: 'idle' } });
  });
});

describe('control', () => {
  test('extend: the deadline moves, durably, and the expiry job follows it', async () => {
    const { attempt } = await start();
    const { attempt: held, changed } = await service.control(attempt.id, {
      control: { action: 'extend', seconds: 120, from: 'deadline', reopen: false },
      reason: 'fire alarm',
    });
    expect(changed).toBe(true);
    expect(held).toMatchObject({ expiresAt: attempt.expiresAt! + 120_000, extraTimeSeconds: 120, version: 2 });
    expect(repo.rows.get(attempt.id)).toMatchObject({ expiresAt: attempt.expiresAt! + 120_000 });
    expect(repo.events.get(attempt.id)!.at(-1)).toMatchObject({ type: 'extended', data: { reason: 'fire alarm', granted_seconds: 120 } });
    expect(hooks.deadlineSet).toHaveBeenLastCalledWith(held);
  });

  test('pause freezes the clock, resume restores the time left from then; pausing twice changes nothing', async () => {
    const { attempt } = await start();
    now += 100_000;
    await service.control(attempt.id, { control: { action: 'pause' } });
    await expect(service.control(attempt.id, { control: { action: 'pause' } })).resolves.toMatchObject({ changed: false });
    now += 3_600_000;
    const { attempt: resumed } = await service.control(attempt.id, { control: { action: 'resume' } });
    expect(resumed.status).toBe('started');
    expect(resumed.expiresAt).toBe(now + (attempt.expiresAt! - (BASE + 100_000)));
  });

  test('refusals: a completed attempt 409, an untimed one cannot be extended 400, a closed one 410, an overdue one cannot be paused', async () => {
    const done = (await start('u1')).attempt;
    await service.complete(done.id);
    await expect(service.control(done.id, { control: { action: 'pause' } })).rejects.toThrow(SessionCompletedError);

    const untimed = (await start('u2', 'quiz-1', { timeLimitSeconds: 0 })).attempt;
    await expect(
      service.control(untimed.id, { control: { action: 'extend', seconds: 60, from: 'now', reopen: false } }),
    ).rejects.toMatchObject({
      status: 400,
      constructor: ValidationError,
    });

    const abandoned = (await start('u3')).attempt;
    await service.abandon(abandoned.id);
    await expect(service.control(abandoned.id, { control: { action: 'resume' } })).rejects.toMatchObject({ status: 410 });

    policies.setPolicy({
      quizId: 'graced',
      timeLimitSeconds: 60,
      maxAttempts: null,
      overdueHandling: 'graceperiod',
      gracePeriodSeconds: 60,
      opensAt: null,
      closesAt: null,
    });
    const overdue = (await start('u4', 'graced')).attempt;
    now += 61_000;
    await expect(service.control(overdue.id, { control: { action: 'pause' } })).rejects.toThrow(/overdue/);
    // what the deadline did on the way is durable all the same
    expect(repo.rows.get(overdue.id)!.status).toBe('overdue');
  });

  test('reopening an expired attempt: refused while the user has another open attempt at the quiz', async () => {
    const first = (await start()).attempt;
    now = first.expiresAt!;
    const second = await start();
    expect(second.created).toBe(true);
    const reopen = { control: { action: 'extend' as const, seconds: 600, from: 'now' as const, reopen: true } };
    const err = await service.control(first.id, reopen).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnotherAttemptOpenError);
    expect(err).toMatchObject({ status: 409 });
    await service.complete(second.attempt.id);
    const { attempt: reopened } = await service.control(first.id, reopen);
    expect(reopened).toMatchObject({ status: 'in_progress', endedAt: null, expiresAt: now + 600_000 });
    expect(repo.rows.get(first.id)!.status).toBe('in_progress');
  });

  test('a proctor scoped to other quizzes: 403 before anything is changed', async () => {
    const { attempt } = await start();
    await expect(service.control(attempt.id, { control: { action: 'pause' }, quizScope: ['quiz-2'] })).rejects.toThrow(ForbiddenError);
    expect((await store.get(attempt.id))!.attempt.status).toBe('started');
    await expect(service.control(attempt.id, { control: { action: 'pause' }, quizScope: ['quiz-1'] })).resolves.toMatchObject({
      changed: true,
    });
  });
});

describe('events, client events and listings', () => {
  test('events: PostgreSQL’s, then those only in Redis, each once, after a seq, at most a limit', async () => {
    const { attempt } = await start();
    await service.progress(attempt.id, { answers: answers({ q1: 'A' }) });
    await persist(attempt.id);
    await service.progress(attempt.id, { answers: answers({ q2: 'B' }) });
    await service.clientEvents(attempt.id, [{ type: 'page_blurred', data: {} }]);
    expect(repo.events.get(attempt.id)!.map((e) => e.seq)).toEqual([1, 2]);
    const all = await service.events(attempt.id, 0, 100);
    expect(all.events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'started'],
      [2, 'answer_saved'],
      [3, 'answer_saved'],
      [4, 'page_blurred'],
    ]);
    expect(await service.events(attempt.id, 1, 2)).toMatchObject({ nextAfter: 3, events: [{ seq: 2 }, { seq: 3 }] });
    await expect(service.events(attempt.id, 0, 10, 'u2')).rejects.toThrow(ForbiddenError);
  });

  test('client events are noted with the server’s time and published; only on the user’s own attempt', async () => {
    const { attempt } = await start();
    now += 500;
    const seq = await service.clientEvents(
      attempt.id,
      [
        { type: 'page_blurred', data: {} },
        { type: 'page_focused', data: {} },
      ],
      'u1',
    );
    expect(seq).toBe(3);
    expect(store.published).toEqual([{ attemptId: attempt.id, types: ['page_blurred', 'page_focused'], at: now }]);
    await expect(service.clientEvents(attempt.id, [{ type: 'page_blurred', data: {} }], 'u2')).rejects.toThrow(ForbiddenError);
  });

  test('a listing shows open attempts as Redis has them, filters by the live status, and pages on', async () => {
    const a = (await start('u1')).attempt;
    now += 1;
    const b = (await start('u2')).attempt;
    now += 1;
    const c = (await start('u3')).attempt;
    await service.progress(a.id, { answers: answers({ q1: 'A' }) });
    // b is paused in Redis only (PostgreSQL still says started)
    await store.control(b.id, now, { action: 'pause' });
    const page = await service.list({ quizId: 'quiz-1', limit: 2 });
    expect(page.attempts.map((x) => [x.id, x.status, x.version])).toEqual([
      [a.id, 'in_progress', 2],
      [b.id, 'paused', 2],
    ]);
    expect(page.next).toEqual({ startedAt: b.startedAt, id: b.id });
    await expect(service.list({ quizId: 'quiz-1', limit: 2, after: page.next! })).resolves.toMatchObject({
      attempts: [{ id: c.id }],
      next: null,
    });
    const paused = await service.list({ quizId: 'quiz-1', status: 'paused', limit: 10 });
    expect(paused.attempts.map((x: Attempt) => x.id)).toEqual([b.id]);
  });
});
