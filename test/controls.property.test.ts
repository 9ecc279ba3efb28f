import { dirtySetOf } from '../src/shared/store/keys';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/shared/config';
import { UNCONTROLLED, type Attempt } from '../src/shared/domain/attempt';
import { extendedDeadline, grantedSeconds, resumedDeadline, type Control, type ExtendFrom } from '../src/shared/domain/control';
import { dueChange, timeRemaining } from '../src/shared/domain/deadline';
import { OVERDUE_HANDLINGS, type OverdueHandling } from '../src/shared/domain/policy';
import { isOpen, isRunning } from '../src/shared/domain/status';
import { eventsKey, SessionStore, sessionKey, type WriteResult } from '../src/shared/store/sessionStore';
import { buildSession, startTestApi, type AttemptJson, type TestApi } from './support/harness';
import { assertAsyncProperty } from './support/property';
import { request } from './support/http';

/*
 * No sequence of pause / resume / extend / progress (and the clock moving across deadlines and
 * grace periods) ever gives a negative time_remaining, a deadline before started_at, or a deadline
 * that moves earlier; a paused attempt's time is frozen; and the real scripts do exactly what a
 * reference model built from the TypeScript rules (deadline.ts, control.ts) says, step by step.
 * The scripts run with a synthetic clock (they take `now` as an argument), so every run is
 * deterministic and replays from its seed. A second property drives the real HTTP API on the
 * wall clock.
 */

type Command =
  | { kind: 'wait'; ms: number }
  | { kind: 'progress' }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'extend'; seconds: number; from: ExtendFrom; reopen: boolean };

/** A random step: a wait of up to `maxWaitMs` (and the 1 s boundaries), or a command; extensions of 1..`maxSeconds`. */
const commandOf = (maxWaitMs: number, maxSeconds: number, boundaries: number[] = []): fc.Arbitrary<Command> =>
  fc.oneof(
    fc.record({
      kind: fc.constant('wait' as const),
      ms: boundaries.length
        ? fc.oneof(fc.integer({ min: 0, max: maxWaitMs }), fc.constantFrom(...boundaries))
        : fc.integer({ min: 0, max: maxWaitMs }),
    }),
    fc.constant({ kind: 'progress' as const }),
    fc.constant({ kind: 'pause' as const }),
    fc.constant({ kind: 'resume' as const }),
    fc.record({
      kind: fc.constant('extend' as const),
      seconds: fc.integer({ min: 1, max: maxSeconds }),
      from: fc.constantFrom<ExtendFrom>('deadline', 'now'),
      reopen: fc.boolean(),
    }),
  );

const command = commandOf(3000, 5, [999, 1000, 1001]);

/** What the model says a step does: its code, and the attempt after it. */
interface Step {
  code: string;
  attempt: Attempt;
}

/** The reference model: one step of the rules, in TypeScript. */
function modelStep(before: Attempt, c: Exclude<Command, { kind: 'wait' }>, now: number): Step {
  let a = { ...before };
  let moved = false;
  const change = dueChange(a, now);
  if (change) {
    a = {
      ...a,
      status: change.status,
      endedAt: change.endedAt,
      lastUpdated: now,
      ...(change.submitted ? { completedAt: change.endedAt, submittedBy: 'timer' as const } : {}),
    };
    moved = true;
  }
  const done = (code: string, changes: Partial<Attempt> | null): Step => {
    const wrote = moved || changes !== null;
    return { code, attempt: { ...a, ...(changes ?? {}), version: wrote ? a.version + 1 : a.version } };
  };
  if (a.status === 'completed') return done('COMPLETED', null);
  switch (c.kind) {
    case 'progress':
      if (a.status === 'paused') return done('PAUSED', null);
      if (!isRunning(a.status)) return done('CLOSED', null);
      return done('OK', { status: 'in_progress', lastUpdated: now });
    case 'pause':
      if (a.status === 'paused') return done('UNCHANGED', null);
      if (a.status === 'overdue') return done('OVERDUE', null);
      if (!isRunning(a.status)) return done('CLOSED', null);
      return done('OK', { status: 'paused', pausedAt: now, pausedFrom: a.status });
    case 'resume':
      if (a.status !== 'paused') return done(isOpen(a.status) ? 'UNCHANGED' : 'CLOSED', null);
      return done('OK', {
        status: a.pausedFrom ?? 'in_progress',
        pausedAt: null,
        pausedFrom: null,
        lastUpdated: now,
        expiresAt: resumedDeadline(a.expiresAt!, a.pausedAt!, now),
      });
    case 'extend': {
      if (a.status === 'abandoned' || (a.status === 'expired' && !c.reopen)) return done('CLOSED', null);
      const deadline = extendedDeadline(a.expiresAt!, c.seconds, c.from, now, a.pausedAt);
      const changes: Partial<Attempt> = {
        expiresAt: deadline,
        extraTimeSeconds: a.extraTimeSeconds + grantedSeconds(a.expiresAt!, deadline),
      };
      if (!isRunning(a.status) && a.status !== 'paused') {
        if (deadline <= now) return done('PAST', null);
        Object.assign(changes, { status: 'in_progress', endedAt: null, lastUpdated: now });
      }
      return done('OK', changes);
    }
  }
}

let redis: Redis;
let store: SessionStore;
let api: TestApi;
beforeAll(async () => {
  redis = new Redis(loadConfig(process.env).REDIS_URL);
  store = new SessionStore(redis, 600);
  api = await startTestApi();
});
afterAll(async () => {
  redis.disconnect();
  await api.close();
});

const BASE = Date.UTC(2026, 11, 1, 9, 0, 0);

function newAttempt(limitSeconds: number, handling: OverdueHandling, graceSeconds: number): Attempt {
  return {
    id: randomUUID(),
    userId: `controls-property-${randomUUID().slice(0, 8)}`,
    quizId: 'quiz-controls',
    status: 'started',
    currentQuestion: 0,
    answers: new Map(),
    version: 1,
    timeLimitSeconds: limitSeconds,
    startedAt: BASE,
    expiresAt: BASE + limitSeconds * 1000,
    lastUpdated: BASE,
    completedAt: null,
    endedAt: null,
    attemptNumber: 1,
    submittedBy: null,
    ...UNCONTROLLED,
    overdueHandling: handling,
    gracePeriodSeconds: handling === 'graceperiod' ? graceSeconds : null,
  };
}

async function run(id: string, c: Exclude<Command, { kind: 'wait' }>, now: number): Promise<WriteResult> {
  if (c.kind === 'progress') return store.progress(id, now, { answers: new Map([['q1', '"A"']]), maxAnswers: 10 });
  const control: Control =
    c.kind === 'extend' ? { action: 'extend', seconds: c.seconds, from: c.from, reopen: c.reopen } : { action: c.kind };
  return store.control(id, now, control);
}

test('the scripts follow the reference model step by step, and no sequence breaks the clock’s invariants (synthetic clock)', async () => {
  await assertAsyncProperty(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom<OverdueHandling>(...OVERDUE_HANDLINGS),
      fc.integer({ min: 1, max: 3 }),
      fc.array(command, { minLength: 1, maxLength: 14 }),
      async (limitSeconds, handling, graceSeconds, commands) => {
        let model = newAttempt(limitSeconds, handling, graceSeconds);
        await store.fill(model);
        let now = BASE;
        try {
          for (const c of commands) {
            if (c.kind === 'wait') {
              now += c.ms;
              continue;
            }
            const expected = modelStep(model, c, now);
            const result = await run(model.id, c, now);
            if (!('stored' in result)) throw new Error(`the script answered ${result.code}`);
            const got = result.stored.attempt;
            const pick = (a: Attempt) => ({
              status: a.status,
              version: a.version,
              expiresAt: a.expiresAt,
              pausedAt: a.pausedAt,
              pausedFrom: a.pausedFrom,
              extraTimeSeconds: a.extraTimeSeconds,
              endedAt: a.endedAt,
              completedAt: a.completedAt,
              submittedBy: a.submittedBy,
            });
            expect({ code: result.code, ...pick(got) }).toEqual({ code: expected.code, ...pick(expected.attempt) });

            // the invariants, on what the service would show now
            const remaining = timeRemaining(got, now);
            expect(remaining).not.toBeNull();
            expect(remaining!).toBeGreaterThanOrEqual(0);
            expect(got.expiresAt!).toBeGreaterThanOrEqual(got.startedAt);
            expect(got.expiresAt!).toBeGreaterThanOrEqual(model.expiresAt!);
            if (got.status === 'paused') {
              expect(got.pausedAt).not.toBeNull();
              expect(remaining).toBe(timeRemaining(got, now + 10_000));
              expect(remaining!).toBeGreaterThan(0);
            }
            model = got;
          }
        } finally {
          await redis.del(sessionKey(model.id), eventsKey(model.id));
          await redis.zrem(dirtySetOf(model.id), model.id);
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('over HTTP on the wall clock: every response keeps time_remaining ≥ 0, the deadline after started_at and never earlier', async () => {
  const httpCommand = commandOf(300, 2);
  await assertAsyncProperty(
    fc.asyncProperty(fc.array(httpCommand, { minLength: 1, maxLength: 8 }), async (commands) => {
      const s = await buildSession(api, { time_limit_seconds: 1 });
      let last: AttemptJson = s;
      const check = (a: AttemptJson) => {
        expect(a.time_remaining === null || a.time_remaining >= 0).toBe(true);
        expect(Date.parse(a.expires_at!)).toBeGreaterThanOrEqual(Date.parse(a.started_at));
        expect(Date.parse(a.expires_at!)).toBeGreaterThanOrEqual(Date.parse(last.expires_at!));
        expect(a.version).toBeGreaterThanOrEqual(last.version);
        expect(a.paused_at !== null).toBe(a.status === 'paused');
        last = a;
      };
      for (const c of commands) {
        if (c.kind === 'wait') {
          await new Promise((resolve) => setTimeout(resolve, c.ms));
          continue;
        }
        const res =
          c.kind === 'progress'
            ? await request(api.url, 'PATCH', `/api/sessions/${s.id}/progress`, { answers: { q1: 'A' } })
            : await request(
                api.url,
                'POST',
                `/api/sessions/${s.id}/${c.kind}`,
                c.kind === 'extend' ? { seconds: c.seconds, from: c.from, reopen: c.reopen } : {},
              );
        const attempt = (res.status === 200 ? res.body : res.body?.session) as AttemptJson | undefined;
        if (attempt) check(attempt);
        else expect(res.status).toBe(400); // a reopen whose deadline is still past: nothing changed
      }
    }),
    { numRuns: 12, interruptAfterTimeLimit: 55_000 },
  );
}, 60_000);
