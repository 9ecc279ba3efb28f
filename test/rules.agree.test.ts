import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { loadConfig } from '../src/shared/config';
import { createKnex } from '../src/shared/db/knex';
import type { Attempt } from '../src/shared/domain/attempt';
import { isPastDeadline, pastDeadlineSql } from '../src/shared/domain/deadline';
import { idleSql, isIdle } from '../src/shared/domain/idle';
import { ATTEMPT_STATUSES, isOpen, OPEN_SQL, OPEN_STATUSES, type AttemptStatus } from '../src/shared/domain/status';
import { FIRST_VERSION } from '../src/shared/domain/version';
import { RULES_LUA } from '../src/shared/store/luaScripts';
import { SessionRepository, TABLE } from '../src/shared/store/sessionRepository';
import { DIRTY_SET_KEY, SessionStore, sessionKey } from '../src/shared/store/sessionStore';
import { assertAsyncProperty } from './support/property';

/*
 * One rule, three implementations: the TypeScript rule (src/shared/domain), the Lua the scripts are
 * built with (against real Redis) and the SQL the repository and the sweeps use (against real
 * PostgreSQL). Over random attempts and clocks, with times near every boundary, all three agree on
 * whether the attempt is open, past its deadline, and idle; and so do the real close script and
 * the real guarded UPDATE, which act on those answers.
 */

let redis: Redis;
let knex: Knex;
let store: SessionStore;
let repo: SessionRepository;
const userPrefix = `rules-agree-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  const config = loadConfig(process.env);
  redis = new Redis(config.REDIS_URL);
  knex = createKnex(config);
  store = new SessionStore(redis, 600);
  repo = new SessionRepository(knex);
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
  };
  return { attempt, now };
}

/** The verdicts of the Lua rule functions, run on their own in Redis. */
async function luaVerdicts(a: Attempt, now: number, idleMs: number): Promise<{ open: boolean; past: boolean; idle: boolean }> {
  const script = `${RULES_LUA}
local now = tonumber(ARGV[3])
return {is_open(ARGV[1]) and 1 or 0, past_deadline(ARGV[1], ARGV[2], now) and 1 or 0, is_idle(ARGV[1], ARGV[4], now, tonumber(ARGV[5])) and 1 or 0}`;
  const [open, past, idle] = (await redis.eval(
    script,
    0,
    a.status,
    a.expiresAt === null ? '' : String(a.expiresAt),
    String(now),
    String(a.lastUpdated),
    String(idleMs),
  )) as number[];
  return { open: open === 1, past: past === 1, idle: idle === 1 };
}

/** The verdicts of the SQL conditions, on the attempt's row. */
async function sqlVerdicts(id: string, now: number, idleMs: number): Promise<{ open: boolean; past: boolean; idle: boolean }> {
  const past = pastDeadlineSql(now);
  const idle = idleSql(now, idleMs);
  const row = await knex(TABLE)
    .select(
      knex.raw(`coalesce(${OPEN_SQL}, false) as open`),
      knex.raw(`coalesce(${past.sql}, false) as past`, past.bindings),
      knex.raw(`coalesce(${idle.sql}, false) as idle`, idle.bindings),
    )
    .where({ id })
    .first();
  return { open: row.open, past: row.past, idle: row.idle };
}

/** The attempt's row; at most one open attempt per user and quiz, so each gets a user of its own. */
async function insertRow(a: Attempt): Promise<void> {
  await knex(TABLE).insert({
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
  });
}

const copyOf = (a: Attempt): Attempt => ({ ...a, id: randomUUID(), userId: `${userPrefix}-${randomUUID().slice(0, 8)}` });

test('TypeScript, Lua and SQL agree on open, past the deadline and idle, and the real close script and UPDATE act on it', async () => {
  await assertAsyncProperty(
    fc.asyncProperty(scenario, async (s) => {
      const { attempt, now } = build(s);
      const expected = { open: isOpen(attempt.status), past: isPastDeadline(attempt, now), idle: isIdle(attempt, now, s.idleMs) };

      expect(await luaVerdicts(attempt, now, s.idleMs)).toEqual(expected);

      await insertRow(attempt);
      expect(await sqlVerdicts(attempt.id, now, s.idleMs)).toEqual(expected);

      // the write scripts: a deadline close closes exactly an attempt past its deadline; an idle
      // close, one that is idle (and not past its deadline, which expires it instead)
      const forDeadline = copyOf(attempt);
      const forIdle = copyOf(attempt);
      const keys = [forDeadline, forIdle].map((a) => sessionKey(a.id));
      try {
        await store.fill(forDeadline);
        await store.fill(forIdle);
        const deadline = await store.close(forDeadline.id, now, 'expired', { kind: 'deadline' });
        expect(deadline.code === 'OK').toBe(expected.past);
        const idle = await store.close(forIdle.id, now, 'abandoned', { kind: 'idle', idleMs: s.idleMs });
        expect(idle.code === 'EXPIRED').toBe(expected.past);
        expect(idle.code === 'OK').toBe(expected.idle && !expected.past);
      } finally {
        await redis.del(...keys);
        await redis.zrem(DIRTY_SET_KEY, forDeadline.id, forIdle.id);
      }

      // the guarded UPDATEs the sweeps use when Redis holds no copy
      const rowForDeadline = copyOf(attempt);
      const rowForIdle = copyOf(attempt);
      await insertRow(rowForDeadline);
      await insertRow(rowForIdle);
      expect((await repo.close(rowForDeadline.id, 'expired', now, { kind: 'deadline' })) !== null).toBe(expected.past);
      expect((await repo.close(rowForIdle.id, 'abandoned', now, { kind: 'idle', idleMs: s.idleMs })) !== null).toBe(expected.idle);
    }),
    { numRuns: 150 },
  );
});

test('the migration’s partial indexes and check constraints are the domain’s SQL', async () => {
  /** The status literals of a definition PostgreSQL prints (`'started'::character varying`, ...). */
  const statusesIn = (def: string): string[] => [...def.matchAll(/'([a-z_]+)'::/g)].map((m) => m[1]).sort();
  const indexes = await knex.raw(`select indexdef from pg_indexes where tablename = ? and indexname like '%open%'`, [TABLE]);
  expect(indexes.rows).toHaveLength(3);
  for (const { indexdef } of indexes.rows as Array<{ indexdef: string }>) expect(statusesIn(indexdef)).toEqual([...OPEN_STATUSES].sort());

  const checks = await knex.raw(
    `select conname, pg_get_constraintdef(oid) as def from pg_constraint where conrelid = ?::regclass and contype = 'c'`,
    [TABLE],
  );
  const byName = Object.fromEntries((checks.rows as Array<{ conname: string; def: string }>).map((r) => [r.conname, r.def]));
  expect(statusesIn(byName.quiz_sessions_status_check)).toEqual([...ATTEMPT_STATUSES].sort());
  expect(byName.quiz_sessions_version_check).toContain(`version >= ${FIRST_VERSION}`);
});
