import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Knex } from 'knex';
import { UUID_V4 } from '../src/api/schemas/session';
import { loadConfig } from '../src/shared/config';
import { createKnex, partitionCount, partitionMismatch, repartition } from '../src/shared/db/knex';
import { UNCONTROLLED, type Attempt } from '../src/shared/domain/attempt';
import { attemptIdFor, SHARD_SPACE, shardOf, shardOfId, shardSql } from '../src/shared/domain/shard';
import { SessionRepository } from '../src/shared/store/sessionRepository';
import { createDatabase, dropDatabase } from './support/pgAdmin';
import { assertAsyncProperty, assertProperty } from './support/property';

/*
 * The PostgreSQL shard key (src/shared/domain/shard.ts): the TypeScript rule and the SQL one agree,
 * a new id names its shard, and the shard-key migration turns a database holding attempts from
 * before it into plain or hash-partitioned tables (PG_PARTITIONS) without losing a row, with the
 * one-open rule still held by the database and a lookup by id reading one partition.
 */

const adminUrl = process.env.DATABASE_URL!;
const LAST_BEFORE_SHARD_KEY = '20261201000300_attempt_events';
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0);

function attempt(userId: string, over: Partial<Attempt> = {}): Attempt {
  return {
    id: attemptIdFor(userId),
    userId,
    quizId: 'quiz-shard',
    status: 'in_progress',
    currentQuestion: 1,
    answers: new Map([['q1', '"A"']]),
    version: 2,
    timeLimitSeconds: 600,
    startedAt: T0,
    expiresAt: T0 + 600_000,
    lastUpdated: T0 + 1000,
    completedAt: null,
    endedAt: null,
    attemptNumber: 1,
    submittedBy: null,
    ...UNCONTROLLED,
    ...over,
  };
}

describe('the rule', () => {
  const config = loadConfig(process.env);
  let knex: Knex;
  beforeAll(() => {
    knex = createKnex(config);
  });
  afterAll(() => knex.destroy());

  test('TypeScript and SQL give every user id the same shard, in [0, 4096)', async () => {
    await assertAsyncProperty(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'binary', minLength: 1, maxLength: 128 }), { minLength: 1, maxLength: 50 }),
        async (ids) => {
          const usable = ids.filter((id) => !id.includes('\u0000'));
          if (usable.length === 0) return;
          const rows = await knex.raw(`select u, ${shardSql('u')} as shard from unnest(?::text[]) as u`, [usable]);
          for (const row of rows.rows as Array<{ u: string; shard: number }>) {
            expect(row.shard).toBe(shardOf(row.u));
            expect(row.shard).toBeGreaterThanOrEqual(0);
            expect(row.shard).toBeLessThan(SHARD_SPACE);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  test('a new attempt id is a UUID v4 that names its user’s shard', () => {
    assertProperty(
      fc.property(fc.string({ minLength: 1, maxLength: 128 }), (userId) => {
        const id = attemptIdFor(userId);
        expect(id).toMatch(UUID_V4);
        expect(shardOfId(id)).toBe(shardOf(userId));
      }),
    );
  });

  test('ids of one user still differ', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => attemptIdFor('same-user')));
    expect(ids.size).toBe(1000);
  });
});

/** A database of this test's own, migrated up to just before the shard key. */
async function databaseBeforeShardKey(): Promise<{ name: string; knex: Knex }> {
  const name = `quiz_shard_${randomBytes(5).toString('hex')}`;
  const knex = createKnex(loadConfig({ DATABASE_URL: await createDatabase(adminUrl, name) }, { DATABASE_POOL_MAX: 3 }));
  for (;;) {
    const [, ran] = (await knex.migrate.up()) as [number, string[]];
    if (ran.includes(LAST_BEFORE_SHARD_KEY)) break;
    if (ran.length === 0) throw new Error(`${LAST_BEFORE_SHARD_KEY} never ran`);
  }
  return { name, knex };
}

/** A row as the migrations before the shard key wrote it: a random id, which names no shard. */
async function legacyRow(knex: Knex, userId: string, status: string, quizId = 'quiz-shard'): Promise<string> {
  const id = randomUUID();
  await knex('quiz_sessions').insert({
    id,
    user_id: userId,
    quiz_id: quizId,
    status,
    answers: JSON.stringify({ q1: 'legacy' }),
    version: 3,
    time_limit_seconds: 600,
    started_at: new Date(T0),
    expires_at: new Date(T0 + 600_000),
    last_updated: new Date(T0 + 2000),
    attempt_number: 1,
  });
  await knex('attempt_events').insert({ attempt_id: id, seq: 1, type: 'started', at: new Date(T0), actor_role: 'student', data: '{}' });
  return id;
}

async function withPartitions<T>(partitions: number, run: () => Promise<T>): Promise<T> {
  const before = process.env.PG_PARTITIONS;
  process.env.PG_PARTITIONS = String(partitions);
  try {
    return await run();
  } finally {
    if (before === undefined) delete process.env.PG_PARTITIONS;
    else process.env.PG_PARTITIONS = before;
  }
}

describe.each([0, 4])('the shard-key migration with PG_PARTITIONS=%i', (partitions) => {
  let db: { name: string; knex: Knex };
  let repo: SessionRepository;
  const legacy: Record<string, string> = {};
  const prefix = `shard-${partitions}-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    db = await databaseBeforeShardKey();
    legacy.open = await legacyRow(db.knex, `${prefix}-a`, 'in_progress');
    legacy.closed = await legacyRow(db.knex, `${prefix}-a`, 'completed');
    legacy.other = await legacyRow(db.knex, `${prefix}-b`, 'started');
    // an event whose attempt's row was never written (a write-behind cut short)
    await db.knex('attempt_events').insert({ attempt_id: randomUUID(), seq: 1, type: 'started', at: new Date(T0), actor_role: 'student' });
    await withPartitions(partitions, () => db.knex.migrate.latest());
    repo = new SessionRepository(db.knex);
  }, 60_000);
  afterAll(async () => {
    await db.knex.destroy();
    await dropDatabase(adminUrl, db.name);
  });

  test('every row is kept, with its user’s shard', async () => {
    const rows = await db.knex('quiz_sessions').select('id', 'user_id', 'shard', 'answers', 'version').orderBy('id');
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.shard).toBe(shardOf(row.user_id));
      expect(row).toMatchObject({ answers: { q1: 'legacy' }, version: 3 });
    }
    const events = await db.knex('attempt_events').select('attempt_id', 'shard');
    expect(events).toHaveLength(4);
    const byId = new Map(rows.map((r) => [r.id, r.shard]));
    for (const e of events) expect(e.shard).toBe(byId.get(e.attempt_id) ?? shardOfId(e.attempt_id));
  });

  test(partitions > 0 ? 'both tables are hash-partitioned into PG_PARTITIONS partitions' : 'both tables stay plain', async () => {
    expect(await partitionCount(db.knex, 'quiz_sessions')).toBe(partitions);
    expect(await partitionCount(db.knex, 'attempt_events')).toBe(partitions);
    expect(await partitionMismatch(db.knex, { PG_PARTITIONS: partitions })).toBeNull();
    expect(await partitionMismatch(db.knex, { PG_PARTITIONS: partitions + 2 })).toMatch(/PG_PARTITIONS/);
    // named <table>_p<k>, each taking its remainder of the hash
    const bounds = await db.knex.raw(
      `select c.relname, pg_get_expr(c.relpartbound, c.oid) as bound from pg_inherits i join pg_class c on c.oid = i.inhrelid
       join pg_class p on p.oid = i.inhparent where p.relname = 'quiz_sessions' order by c.relname`,
    );
    expect(bounds.rows).toEqual(
      Array.from({ length: partitions }, (_, k) => ({
        relname: `quiz_sessions_p${k}`,
        bound: `FOR VALUES WITH (modulus ${partitions}, remainder ${k})`,
      })),
    );
    const keys = await db.knex.raw(
      `select c.relname, pg_get_constraintdef(k.oid) as def from pg_constraint k join pg_class c on c.oid = k.conrelid
       where k.contype = 'p' and c.relname in ('quiz_sessions', 'attempt_events') order by 1`,
    );
    expect(keys.rows).toEqual([
      { relname: 'attempt_events', def: 'PRIMARY KEY (shard, attempt_id, seq)' },
      { relname: 'quiz_sessions', def: 'PRIMARY KEY (shard, id)' },
    ]);
  });

  test('a row whose shard is not its user’s is refused by the database', async () => {
    const a = attempt(`${prefix}-c`);
    const wrong = (shardOf(a.userId) + 1) % SHARD_SPACE;
    await expect(
      db.knex('quiz_sessions').insert({
        shard: wrong,
        id: a.id,
        user_id: a.userId,
        quiz_id: 'q',
        status: 'started',
        time_limit_seconds: 60,
        started_at: new Date(T0),
        last_updated: new Date(T0),
        attempt_number: 1,
      }),
    ).rejects.toThrow(/quiz_sessions_shard_check/);
  });

  test('legacy ids (which name no shard) and new ids are both found by id', async () => {
    for (const id of Object.values(legacy)) expect((await repo.findById(id))?.id).toBe(id);
    const fresh = attempt(`${prefix}-d`);
    expect(await repo.insertIfNoneOpen(fresh, null)).toBe(1);
    expect((await repo.findById(fresh.id))?.answers.get('q1')).toBe('"A"');
    expect(await repo.findById(attemptIdFor(`${prefix}-nobody`))).toBeNull();
  });

  test('the one-open rule still holds, for a legacy open attempt too', async () => {
    // user a's legacy attempt is open: a new one is refused
    expect(await repo.insertIfNoneOpen(attempt(`${prefix}-a`), null)).toBeNull();
    // its closed attempt counts towards the attempt number of a new one once the open one closes
    await db.knex('quiz_sessions').where({ id: legacy.open }).update({ status: 'expired' });
    expect(await repo.insertIfNoneOpen(attempt(`${prefix}-a`), null)).toBe(3);
    expect(await repo.insertIfNoneOpen(attempt(`${prefix}-a`), null)).toBeNull();
  });

  test('the write-behind upsert and the events carry the shard: a replay writes nothing twice', async () => {
    const a = attempt(`${prefix}-e`);
    expect(await repo.insertIfNoneOpen(a, null)).toBe(1);
    const newer = { ...a, version: 5, answers: new Map([['q1', '"B"']]) };
    expect(await repo.upsertSnapshots([newer])).toEqual([a.id]);
    expect(await repo.upsertSnapshots([newer])).toEqual([]);
    expect((await repo.versionsOf([newer])).get(a.id)?.version).toBe(5);
    const event = {
      seq: 2,
      type: 'answer_saved' as const,
      at: T0,
      actor: { id: a.userId, role: 'student' as const },
      request_id: null,
      data: {},
    };
    await repo.insertEvents([{ attempt: a, event }]);
    await repo.insertEvents([{ attempt: a, event }]);
    expect((await repo.eventsAfter(a, 0, 10)).map((e) => e.seq)).toEqual([2]);
    expect((await repo.findById(a.id))?.eventSeq).toBe(2);
  });

  if (partitions > 0) {
    test('a lookup by a new id, and a user’s attempts, read one partition', async () => {
      const a = attempt(`${prefix}-f`);
      expect(await repo.insertIfNoneOpen(a, null)).toBe(1);
      const plan = async (sql: string, bindings: unknown[]) =>
        JSON.stringify((await db.knex.raw(`explain (format json) ${sql}`, bindings as Knex.RawBinding[])).rows);
      const byId = await plan('select * from quiz_sessions where shard = ? and id = ?', [shardOfId(a.id), a.id]);
      const scanned = (text: string) => new Set(text.match(/quiz_sessions_p\d+/g)).size;
      expect(scanned(byId)).toBe(1);
      const byUser = await plan('select * from quiz_sessions where shard = ? and user_id = ?', [shardOf(a.userId), a.userId]);
      expect(scanned(byUser)).toBe(1);
      // the sweeps' and the quiz listing's queries visit every partition
      const byQuiz = await plan('select * from quiz_sessions where quiz_id = ?', ['quiz-shard']);
      expect(scanned(byQuiz)).toBe(partitions);
    });
  }

  test('down leaves plain tables keyed as before, every row kept', async () => {
    await db.knex.migrate.down();
    expect(await partitionCount(db.knex, 'quiz_sessions')).toBe(0);
    const columns = await db.knex.raw(
      `select column_name from information_schema.columns where table_name = 'quiz_sessions' and column_name = 'shard'`,
    );
    expect(columns.rows).toEqual([]);
    expect(Number((await db.knex('quiz_sessions').count('* as n'))[0].n)).toBeGreaterThanOrEqual(3);
    for (const id of Object.values(legacy)) expect(await db.knex('quiz_sessions').where({ id }).first()).toBeDefined();
    // and up again
    await withPartitions(partitions, () => db.knex.migrate.latest());
    expect(await partitionCount(db.knex, 'quiz_sessions')).toBe(partitions);
  });

  test('repartition rebuilds both tables with another PG_PARTITIONS, every row kept', async () => {
    const before = await db.knex('quiz_sessions').select('id', 'version', 'answers').orderBy('id');
    const events = Number((await db.knex('attempt_events').count('* as n'))[0].n);
    const next = partitions === 0 ? 3 : 0;
    await withPartitions(next, () => repartition(db.knex));
    expect(await partitionCount(db.knex, 'quiz_sessions')).toBe(next);
    expect(await partitionCount(db.knex, 'attempt_events')).toBe(next);
    expect(await db.knex('quiz_sessions').select('id', 'version', 'answers').orderBy('id')).toEqual(before);
    expect(Number((await db.knex('attempt_events').count('* as n'))[0].n)).toBe(events);
    expect(await repo.insertIfNoneOpen(attempt(`${prefix}-b`), null)).toBeNull(); // the one-open rule, rebuilt
  });
});
