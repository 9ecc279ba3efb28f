import type { Knex } from 'knex';
import { OPEN_SQL, STATUS_CHECK_SQL } from '../src/shared/domain/status';
import { VERSION_CHECK_SQL } from '../src/shared/domain/version';

/** The durable copy of every attempt; at most one open attempt per user and quiz. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('quiz_sessions', (t) => {
    t.uuid('id').primary();
    t.string('user_id', 128).notNullable();
    t.string('quiz_id', 128).notNullable();
    // quiz_id is returned as given: an integer id round-trips as a number
    t.boolean('quiz_id_is_int').notNullable().defaultTo(false);
    t.string('status', 16).notNullable();
    t.integer('current_question').notNullable().defaultTo(0);
    t.jsonb('answers').notNullable().defaultTo('{}');
    t.integer('version').notNullable().defaultTo(1);
    t.integer('time_limit_seconds').notNullable();
    t.timestamp('started_at', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).nullable();
    t.timestamp('last_updated', { useTz: true }).notNullable();
    t.timestamp('completed_at', { useTz: true }).nullable();
    t.timestamp('ended_at', { useTz: true }).nullable();
    t.timestamp('persisted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // how many times the write-behind wrote this row: the coalescing, observable
    t.integer('persist_count').notNullable().defaultTo(1);
    t.index(['user_id', 'quiz_id'], 'quiz_sessions_user_quiz_idx');
  });
  // the statuses, "open" and the version bound come from their homes in src/shared/domain; a later
  // change to them comes with a migration that rebuilds these (test/rules.agree.test.ts compares)
  await knex.raw(`alter table quiz_sessions add constraint quiz_sessions_status_check check (${STATUS_CHECK_SQL})`);
  await knex.raw(`alter table quiz_sessions add constraint quiz_sessions_version_check check (${VERSION_CHECK_SQL})`);
  // the one-open-attempt rule, enforced by the database rather than by a read-then-write race
  await knex.raw(`create unique index quiz_sessions_one_open_idx on quiz_sessions (user_id, quiz_id) where ${OPEN_SQL}`);
  // the expiry sweep: open attempts by deadline
  await knex.raw(`create index quiz_sessions_open_deadline_idx on quiz_sessions (expires_at) where ${OPEN_SQL} and expires_at is not null`);
  // the abandonment sweep: open attempts by last activity
  await knex.raw(`create index quiz_sessions_open_activity_idx on quiz_sessions (last_updated) where ${OPEN_SQL}`);
}

/** Drops the table and with it every attempt: only for development databases. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('quiz_sessions');
}
