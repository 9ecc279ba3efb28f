import { dirtySetOf } from '../src/shared/store/keys';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { loadConfig } from '../src/shared/config';
import { createKnex } from '../src/shared/db/knex';
import { UNCONTROLLED, type Attempt } from '../src/shared/domain/attempt';
import { EXTEND_FROM, extendedDeadline, grantedSeconds, resumedDeadline } from '../src/shared/domain/control';
import { DEADLINE_STATUSES, dueChange, pastDeadlineSql } from '../src/shared/domain/deadline';
import { idleSql, isIdle } from '../src/shared/domain/idle';
import { OVERDUE_HANDLINGS, type OverdueHandling } from '../src/shared/domain/policy';
import { shardOf } from '../src/shared/domain/shard';
import {
  ATTEMPT_STATUSES,
  isOpen,
  isRunning,
  OPEN_SQL,
  OPEN_STATUSES,
  RUNNING_SQL,
  RUNNING_STATUSES,
  type AttemptStatus,
} from '../src/shared/domain/status';
import { FIRST_VERSION } from '../src/shared/domain/version';
import { RULES_LUA } from '../src/shared/store/luaScripts';
import { TABLE } from '../src/shared/store/sessionRepository';
import { eventsKey, SessionStore, sessionKey } from '../src/shared/store/sessionStore';
import { assertAsyncProperty } from './support/property';

/*
 * One rule, three implementations: the TypeScript rule (src/shared/domain), the Lua the scripts are
 * built with (against real Redis) and the SQL the repository and the sweeps use (against real
 * PostgreSQL). Over random attempts and clocks, with times near every boundary, all three agree on
 * whether the attempt is running, open, due for its deadline (and what the deadline does), and
 * idle; and so does the real close script, which acts on those answers. The live controls' clock
 * agrees between TypeScript and Lua too.
 */

let redis: Redis;
let knex: Knex;
let store: SessionStore;
const userPrefix = `rules-agree-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  const config = loadConfig(process.env);
  redis = new Redis(config.REDIS_URL);
  knex = createKnex(config);
  store = new SessionStore(redis, 600);
});
afterAll(async () => {
  await knex(TABLE).where('user_id', 'like', `${userPrefix}%`).delete();
  await knex.destroy();
  redis.disconnect();
});

const BASE = Date.UTC(2026, 11, 1, 9, 0, 0);
/** An offset in ms: mostly close to a boundary (within 2 ms, or whole seconds), sometimes anywhere. */
const offset = fc.oneof(
  fc.integer({ min: -2, max: 2 }),
  fc.integer({ min: -5, max: 5 }).map((s) => s * 1000),
  fc.integer({ min: -3_600_000, max: 3_600_000 }),
);

const scenario = fc.record({
  status: fc.constantFrom<AttemptStatus>(...ATTEMPT_STATUSES),
  timed: fc.boolean(),
  handling: fc.constantFrom<OverdueHandling>(...OVERDUE_HANDLINGS),
  /** With graceperiod: the grace, near the offsets' scale. */
  graceSeconds: fc.integer({ min: 1, max: 7200 }),
  /** now - expiresAt */
  pastDeadlineBy: offset,
  /** now - lastUpdated - idleMs */
  idleBeyond: offset,
  idleMs: fc.integer({ min: 1000, max: 86_400_000 }),
});

/** The attempt and clock a scenario describes. */
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function build(s: Scenario): { attempt: Attempt; now: number } {
  const now = BASE;
  const lastUpdated = now - s.idleMs - s.idleBeyond;
  const startedAt = Math.min(lastUpdated, now) - 60_000;
  const expiresAt = s.timed ? now - s.pastDeadlineBy : null;
  const closed = !isOpen(s.status);
  const grace = s.handling === 'graceperiod';
  const attempt: Attempt = {
    id: randomUUID(),
    userId: `${userPrefix}-${randomUUID().slice(0, 8)}`,
    quizId: 'quiz-rules',
    status: s.status,
    currentQuestion: 0,
    answers: new Map([['q1', '"a"']]),
    version: 3,
    timeLimitSeconds: s.timed ? 1800 : 0,
    startedAt,
    expiresAt,
    lastUpdated,
    completedAt: s.status === 'completed' ? lastUpdated : null,
    endedAt: closed ? lastUpdated : null,
    attemptNumber: 1,
    submittedBy: s.status === 'completed' ? 'student' : null,
    ...UNCONTROLLED,
    pausedAt: s.status === 'paused' ? lastUpdated : null,
    pausedFrom: s.status === 'paused' ? 'in_progress' : null,
    overdueHandling: s.handling,
    gracePeriodSeconds: grace ? s.graceSeconds : null,
  };
  return { attempt, now };
}

/** What every rule says of an attempt at a clock. */
interface Verdicts {
  running: boolean;
  open: boolean;
  /** The status the deadline moves it to now, or null. */
  due: string | null;
  /** With `due`: when it ended ('' or null: still open) and whether the timer submitted it. */
  endedAt: number | null;
  submitted: boolean;
  idle: boolean;
}

function tsVerdicts(a: Attempt, now: number, idleMs: number): Verdicts {
  const change = dueChange(a, now);
  return {
    running: isRunning(a.status),
    open: isOpen(a.status),
    due: change?.status ?? null,
    endedAt: change?.endedAt ?? null,
    submitted: change?.submitted ?? false,
    idle: isIdle(a, now, idleMs),
  };
}

/** The verdicts of the Lua rule functions, run on their own in Redis. */
async function luaVerdicts(a: Attempt, now: number, idleMs: number): Promise<Verdicts> {
  const script = `${RULES_LUA}
local now = tonumber(ARGV[3])
local due, ended_at, submitted = due_change(ARGV[1], ARGV[2], ARGV[6], ARGV[7], now)
return {is_running(ARGV[1]) and 1 or 0, is_open(ARGV[1]) and 1 or 0, due or '', ended_at or '', submitted and 1 or 0,
  is_idle(ARGV[1], ARGV[4], now, tonumber(ARGV[5])) and 1 or 0}`;
  const [running, open, due, endedAt, submitted, idle] = (await redis.eval(
    script,
    0,
    a.status,
    a.expiresAt === null ? '' : String(a.expiresAt),
    String(now),
    String(a.lastUpdated),
    String(idleMs),
    a.overdueHandling,
    a.gracePeriodSeconds === null ? '' : String(a.gracePeriodSeconds),
  )) as [number, number, string, string, number, number];
  return {
    running: running === 1,
    open: open === 1,
    due: due === '' ? null : due,
    endedAt: endedAt === '' ? null : Number(endedAt),
    submitted: submitted === 1,
    idle: idle === 1,
  };
}

/** The verdicts of the SQL conditions, on the attempt's row: running, open, due, idle. */
async function sqlVerdicts(
  id: string,
  now: number,
  idleMs: number,
): Promise<{ running: boolean; open: boolean; due: boolean; idle: boolean }> {
  const past = pastDeadlineSql(now);
  const idle = idleSql(now, idleMs);
  const row = await knex(TABLE)
    .select(
      knex.raw(`coalesce(${RUNNING_SQL}, false) as running`),
      knex.raw(`coalesce(${OPEN_SQL}, false) as open`),
      knex.raw(`coalesce(${past.sql}, false) as due`, past.bindings),
      knex.raw(`coalesce(${idle.sql}, false) as idle`, idle.bindings),
    )
    .where({ id })
    .first();
  return { running: row.running, open: row.open, due: row.due, idle: row.idle };
}

/** The attempt's row; at most one open attempt per user and quiz, so each gets a user of its own. */
async function insertRow(a: Attempt): Promise<void> {
  await knex(TABLE).insert({
    shard: shardOf(a.userId),
    id: a.id,
    user_id: a.userId,
    quiz_id: String(a.quizId),
    status: a.status,
    answers: '{}',
    version: a.version,
    time_limit_seconds: a.timeLimitSeconds,
    started_at: new Date(a.startedAt),
    expires_at: a.expiresAt === null ? null : new Date(a.expiresAt),
    last_updated: new Date(a.lastUpdated),
    completed_at: a.completedAt === null ? null : new Date(a.completedAt),
    ended_at: a.endedAt === null ? null : new Date(a.endedAt),
    paused_at: a.pausedAt === null ? null : new Date(a.pausedAt),
    overdue_handling: a.overdueHandling,
    grace_period_seconds: a.gracePeriodSeconds,
  });
}

const copyOf = (a: Attempt): Attempt => ({ ...a, id: randomUUID(), userId: `${userPrefix}-${randomUUID().slice(0, 8)}` });

test('TypeScript, Lua and SQL agree on running, open, the deadline (what it does, to the ms) and idle, and the real close script acts on it', async () => {
  await assertAsyncProperty(
    fc.asyncProperty(scenario, async (s) => {
      const { attempt, now } = build(s);
      const expected = tsVerdicts(attempt, now, s.idleMs);

      expect(await luaVerdicts(attempt, now, s.idleMs)).toEqual(expected);

      await insertRow(attempt);
      const { running, open, due, idle } = expected;
      expect(await sqlVerdicts(attempt.id, now, s.idleMs)).toEqual({ running, open, due: due !== null, idle });

      // the write script: a deadline close moves exactly an attempt that is due, to what the rule
      // says; an idle close abandons one that is idle (and not due, which the deadline moves instead)
      const forDeadline = copyOf(attempt);
      const forIdle = copyOf(attempt);
      const keys = [forDeadline, forIdle].flatMap((a) => [sessionKey(a.id), eventsKey(a.id)]);
      try {
        await store.fill(forDeadline);
        await store.fill(forIdle);
        const deadline = await store.close(forDeadline.id, now, { guard: { kind: 'deadline' } });
        expect(deadline.code === 'OK').toBe(due !== null);
        if (deadline.code === 'OK') {
          const moved = deadline.stored.attempt;
          expect(moved.status).toBe(due);
          expect(moved.endedAt).toBe(expected.endedAt);
          expect(moved.submittedBy).toBe(expected.submitted ? 'timer' : attempt.submittedBy);
          expect(moved.version).toBe(attempt.version + 1);
        }
        const byIdle = await store.close(forIdle.id, now, { guard: { kind: 'idle', idleMs: s.idleMs } });
        expect('movedByDeadline' in byIdle && byIdle.movedByDeadline).toBe(due !== null);
        expect(byIdle.code === 'OK').toBe(idle && due === null);
      } finally {
        await redis.del(...keys);
        await redis.zrem(dirtySetOf(forDeadline.id), forDeadline.id);
        await redis.zrem(dirtySetOf(forIdle.id), forIdle.id);
      }
    }),
    { numRuns: 150 },
  );
});

test('TypeScript and Lua agree on the live controls’ clock: extension, granted seconds, resume', async () => {
  const script = `${RULES_LUA}
local d = extended_deadline(tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5])
return {string.format('%d', d), granted_seconds(tonumber(ARGV[1]), d), string.format('%d', resumed_deadline(tonumber(ARGV[1]), tonumber(ARGV[6]), tonumber(ARGV[4])))}`;
  await assertAsyncProperty(
    fc.asyncProperty(
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      fc.integer({ min: 1, max: 604_800 }),
      fc.constantFrom(...EXTEND_FROM),
      fc.option(fc.integer({ min: 0, max: 3_600_000 }), { nil: null }),
      async (deadlineFromNow, seconds, from, pausedBefore) => {
        const now = BASE;
        const expiresAt = now + deadlineFromNow;
        const pausedAt = pausedBefore === null ? null : Math.min(now - pausedBefore, expiresAt - 1);
        const extended = extendedDeadline(expiresAt, seconds, from, now, pausedAt);
        const resumed = resumedDeadline(expiresAt, pausedAt ?? now, now);
        const [d, granted, r] = (await redis.eval(
          script,
          0,
          String(expiresAt),
          String(seconds),
          from,
          String(now),
          pausedAt === null ? '' : String(pausedAt),
          String(pausedAt ?? now),
        )) as [string, number, string];
        expect([Number(d), granted, Number(r)]).toEqual([extended, grantedSeconds(expiresAt, extended), resumed]);
        expect(extended).toBeGreaterThanOrEqual(expiresAt);
      },
    ),
    { numRuns: 200 },
  );
});

test('the migration’s partial indexes and check constraints are the domain’s SQL', async () => {
  /** The status literals of a definition PostgreSQL prints (`'started'::character varying`, ...). */
  const statusesIn = (def: string): string[] => [...def.matchAll(/'([a-z_]+)'::/g)].map((m) => m[1]).sort();
  const indexes = await knex.raw(`select indexname, indexdef from pg_indexes where tablename = ? and indexname like '%open%'`, [TABLE]);
  const byIndex = Object.fromEntries(
    (indexes.rows as Array<{ indexname: string; indexdef: string }>).map((r) => [r.indexname, r.indexdef]),
  );
  expect(Object.keys(byIndex)).toHaveLength(3);
  expect(statusesIn(byIndex.quiz_sessions_one_open_idx)).toEqual([...OPEN_STATUSES].sort());
  expect(statusesIn(byIndex.quiz_sessions_open_deadline_idx)).toEqual([...DEADLINE_STATUSES].sort());
  expect(statusesIn(byIndex.quiz_sessions_open_activity_idx)).toEqual([...RUNNING_STATUSES].sort());

  const checks = await knex.raw(
    `select conname, pg_get_constraintdef(oid) as def from pg_constraint where conrelid = ?::regclass and contype = 'c'`,
    [TABLE],
  );
  const byName = Object.fromEntries((checks.rows as Array<{ conname: string; def: string }>).map((r) => [r.conname, r.def]));
  expect(statusesIn(byName.quiz_sessions_status_check)).toEqual([...ATTEMPT_STATUSES].sort());
  expect(byName.quiz_sessions_version_check).toContain(`version >= ${FIRST_VERSION}`);
});
