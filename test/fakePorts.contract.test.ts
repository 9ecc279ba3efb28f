import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { UNCONTROLLED, type Attempt } from '../src/shared/domain/attempt';
import type { Control, ExtendFrom } from '../src/shared/domain/control';
import type { EventContext } from '../src/shared/domain/events';
import { OVERDUE_HANDLINGS, type OverdueHandling } from '../src/shared/domain/policy';
import { loadConfig } from '../src/shared/config';
import { createRequestRedis, type RedisClient } from '../src/shared/redis';
import type { IdempotencyClaim } from '../src/shared/store/idempotencyStore';
import { decodeRendered, type StoredAttempt } from '../src/shared/store/sessionCodec';
import { dirtySetOf, eventsKey, SessionStore, sessionKey, type WriteResult } from '../src/shared/store/sessionStore';
import { FakeSessionStore } from './support/fakePorts';
import { assertAsyncProperty } from './support/property';

/*
 * The unit tests' fake live state (test/support/fakePorts.ts) against the real one: the same
 * random sequences of writes (progress with and without a version, an owner, an idempotency key;
 * the student's and the workers' closes; pause, resume, extend; notes) on a synthetic clock that
 * crosses deadlines and grace periods, run on SessionStore over Redis (the Lua scripts) and on
 * the fake; every answer (code, dirty, moved by the deadline, the attempt after it, its pending
 * events, a kept idempotency record) must be the same. So a service unit test over the fake
 * tests the service against what Redis does.
 */

type Expect = 'current' | 'stale' | 'any';
type Who = 'self' | 'other' | 'anyone';
type Command =
  | { kind: 'wait'; ms: number }
  | { kind: 'progress'; expect: Expect; who: Who; answers: string[]; currentQuestion?: number; key?: string }
  | { kind: 'close'; target: 'completed' | 'abandoned'; expect: Expect; who: Who }
  | { kind: 'deadline' }
  | { kind: 'idle'; idleMs: number }
  | { kind: 'control'; control: Control }
  | { kind: 'note'; who: Who };

const expectArb = fc.constantFrom<Expect>('current', 'current', 'stale', 'any');
const whoArb = fc.constantFrom<Who>('self', 'self', 'anyone', 'other');
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constantFrom(999, 1000, 1001)) }),
  fc.record(
    {
      kind: fc.constant('progress' as const),
      expect: expectArb,
      who: whoArb,
      answers: fc.uniqueArray(fc.constantFrom('q1', 'q2', 'q3', 'q4', 'q5'), { maxLength: 3 }),
      currentQuestion: fc.integer({ min: 0, max: 9 }),
      key: fc.constantFrom('k1', 'k2'),
    },
    { requiredKeys: ['kind', 'expect', 'who', 'answers'] },
  ),
  fc.record({
    kind: fc.constant('close' as const),
    target: fc.constantFrom<'completed' | 'abandoned'>('completed', 'abandoned'),
    expect: expectArb,
    who: whoArb,
  }),
  fc.constant({ kind: 'deadline' as const }),
  fc.record({
    kind: fc.constant('idle' as const),
    idleMs: fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.constantFrom(999, 1000, 1001, 2000)),
  }),
  fc.record({
    kind: fc.constant('control' as const),
    control: fc.oneof(
      fc.constant<Control>({ action: 'pause' }),
      fc.constant<Control>({ action: 'resume' }),
      fc.record({
        action: fc.constant('extend' as const),
        seconds: fc.integer({ min: 1, max: 5 }),
        from: fc.constantFrom<ExtendFrom>('deadline', 'now'),
        reopen: fc.boolean(),
      }),
    ),
  }),
  fc.record({ kind: fc.constant('note' as const), who: whoArb }),
);

const BASE = Date.UTC(2026, 11, 1, 9, 0, 0);
const MAX_ANSWERS = 3;

function newAttempt(limitSeconds: number, handling: OverdueHandling, graceSeconds: number): Attempt {
  return {
    id: randomUUID(),
    userId: `fake-contract-${randomUUID().slice(0, 8)}`,
    quizId: 'quiz-fake-contract',
    status: 'started',
    currentQuestion: 0,
    answers: new Map([['q1', '"first"']]),
    version: 1,
    timeLimitSeconds: limitSeconds,
    startedAt: BASE,
    expiresAt: limitSeconds === 0 ? null : BASE + limitSeconds * 1000,
    lastUpdated: BASE,
    completedAt: null,
    endedAt: null,
    attemptNumber: 1,
    submittedBy: null,
    ...UNCONTROLLED,
    overdueHandling: handling,
    gracePeriodSeconds: handling === 'graceperiod' ? graceSeconds : null,
    eventSeq: 1,
  };
}

/** An attempt with its answers parsed (their text and order are Redis' own), and when it became dirty. */
const comparable = (s: StoredAttempt) => ({
  ...s.attempt,
  answers: Object.fromEntries([...s.attempt.answers].map(([q, text]) => [q, JSON.parse(text) as unknown])),
  dirtySince: s.dirtySince,
});

/** A write's answer, comparable: a kept record with its attempt parsed. */
function comparableResult(r: WriteResult) {
  if (r.code === 'REPLAY') {
    const record = JSON.parse(r.record) as { r: string[] };
    return { ...r, record: { ...record, r: comparable(decodeRendered(record.r)) } };
  }
  if (!('stored' in r)) return r;
  return { ...r, stored: comparable(r.stored) };
}

let redis: RedisClient;
let real: SessionStore;
beforeAll(async () => {
  redis = createRequestRedis(loadConfig(process.env), 'quiz-session-test-fake-contract');
  real = new SessionStore(redis, 600);
  await new Promise<void>((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', () => resolve())));
});
afterAll(() => redis.disconnect());

/** Runs one command on a store. */
function run(
  store: SessionStore | FakeSessionStore,
  a: Attempt,
  c: Exclude<Command, { kind: 'wait' }>,
  now: number,
  version: number,
  step: number,
) {
  const ctx: EventContext = { actor: { id: a.userId, role: 'student' }, requestId: `req-${step}` };
  const owner = (who: Who) => (who === 'self' ? a.userId : who === 'other' ? 'someone-else' : undefined);
  const expected = (e: Expect) => (e === 'current' ? version : e === 'stale' ? version - 1 : undefined);
  switch (c.kind) {
    case 'progress': {
      const idempotency: IdempotencyClaim | undefined = c.key
        ? { recordKey: `${sessionKey(a.id)}:idem:${c.key}`, fingerprint: `fp-${c.key}` }
        : undefined;
      const answers = new Map(c.answers.map((q) => [q, JSON.stringify({ q, step })]));
      return store.progress(
        a.id,
        now,
        {
          expectedVersion: expected(c.expect),
          owner: owner(c.who),
          answers,
          currentQuestion: c.currentQuestion,
          maxAnswers: MAX_ANSWERS,
          idempotency,
        },
        ctx,
      );
    }
    case 'close':
      return store.close(a.id, now, { guard: { kind: 'none' }, target: c.target }, expected(c.expect), owner(c.who), ctx);
    case 'deadline':
      return store.close(a.id, now, { guard: { kind: 'deadline' } });
    case 'idle':
      return store.close(a.id, now, { guard: { kind: 'idle', idleMs: c.idleMs } });
    case 'control':
      return store.control(a.id, now, c.control, ctx, step % 2 ? `reason ${step}` : undefined);
    case 'note':
      return store.note(a.id, now, [{ type: 'page_blurred', data: { step } }], ctx, owner(c.who));
  }
}

test('a missing attempt is a MISS to both', async () => {
  const fake = new FakeSessionStore();
  const a = newAttempt(60, 'expire', 0);
  for (const store of [real, fake]) {
    expect(await run(store, a, { kind: 'progress', expect: 'any', who: 'anyone', answers: ['q1'] }, BASE, 1, 0)).toEqual({ code: 'MISS' });
    expect(await run(store, a, { kind: 'deadline' }, BASE, 1, 0)).toEqual({ code: 'MISS' });
    expect(await store.read(a.id)).toBeNull();
  }
});

test('the fake store answers every random sequence of writes exactly as the scripts do', async () => {
  await assertAsyncProperty(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 4 }),
      fc.constantFrom<OverdueHandling>(...OVERDUE_HANDLINGS),
      fc.integer({ min: 1, max: 3 }),
      fc.array(command, { minLength: 1, maxLength: 16 }),
      async (limitSeconds, handling, graceSeconds, commands) => {
        const a = newAttempt(limitSeconds, handling, graceSeconds);
        const fake = new FakeSessionStore();
        expect(await real.fill(a)).toBe(true);
        expect(await fake.fill(a)).toBe(true);
        // a fill of the same version keeps the copy there
        expect([await real.fill(a), await fake.fill(a)]).toEqual([false, false]);
        let now = BASE;
        let version = a.version;
        try {
          for (const [step, c] of commands.entries()) {
            if (c.kind === 'wait') {
              now += c.ms;
              continue;
            }
            const [got, want] = await Promise.all([run(real, a, c, now, version, step), run(fake, a, c, now, version, step)]);
            expect({ step, command: c, ...comparableResult(want) }).toEqual({ step, command: c, ...comparableResult(got) });
            expect(await fake.pendingEvents(a.id)).toEqual(await real.pendingEvents(a.id));
            if ('stored' in got) version = got.stored.attempt.version;
          }
          expect(comparable((await fake.get(a.id))!)).toEqual(comparable((await real.get(a.id))!));
        } finally {
          await redis.del(sessionKey(a.id), eventsKey(a.id), `${sessionKey(a.id)}:idem:k1`, `${sessionKey(a.id)}:idem:k2`);
          await redis.zrem(dirtySetOf(a.id), a.id);
        }
      },
    ),
    { numRuns: 200, interruptAfterTimeLimit: 115_000 },
  );
}, 120_000);
