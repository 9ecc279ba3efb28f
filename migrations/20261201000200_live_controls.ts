import type { Knex } from 'knex';
import { DEADLINE_STATUSES } from '../src/shared/domain/deadline';
import { OPEN_SQL, RUNNING_SQL, STATUS_CHECK_SQL, statusInSql } from '../src/shared/domain/status';

/*
 * Live controls and overdue handling: an attempt may be paused (its clock stopped) or overdue (in
 * its grace period), both still the user's open attempt; it keeps what its deadline does, the time
 * granted live, and when and from which status it was paused. The status check and the partial
 * indexes are rebuilt from the statuses' home (src/shared/domain/status.ts).
 */

/** The indexes and the check as the first migration built them, before paused and overdue. */
const BEFORE = "status in ('started', 'in_progress')";

async function rebuild(knex: Knex, open: string, deadline: string, running: string, check: string): Promise<void> {
  await knex.raw('alter table quiz_sessions drop constraint if exists quiz_sessions_status_check');
  await knex.raw(`alter table quiz_sessions add constraint quiz_sessions_status_check check (${check})`);
  await knex.raw('drop index if exists quiz_sessions_one_open_idx');
  await knex.raw(`create unique index quiz_sessions_one_open_idx on quiz_sessions (user_id, quiz_id) where ${open}`);
  await knex.raw('drop index if exists quiz_sessions_open_deadline_idx');
  await knex.raw(`create index quiz_sessions_open_deadline_idx on quiz_sessions (expires_at) where ${deadline} and expires_at is not null`);
  await knex.raw('drop index if exists quiz_sessions_open_activity_idx');
  await knex.raw(`create index quiz_sessions_open_activity_idx on quiz_sessions (last_updated) where ${running}`);
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('quiz_sessions', (t) => {
    t.timestamp('paused_at', { useTz: true }).nullable();
    t.string('paused_from', 16).nullable();
    t.integer('extra_time_seconds').notNullable().defaultTo(0);
    t.string('overdue_handling', 16).notNullable().defaultTo('expire');
    t.integer('grace_period_seconds').nullable();
  });
  await rebuild(knex, OPEN_SQL, statusInSql(DEADLINE_STATUSES), RUNNING_SQL, STATUS_CHECK_SQL);
}

/** Back to two open statuses: paused and overdue attempts become in progress first. */
export async function down(knex: Knex): Promise<void> {
  await knex.raw("update quiz_sessions set status = 'in_progress' where status in ('paused', 'overdue')");
  await rebuild(knex, BEFORE, BEFORE, BEFORE, "status in ('started', 'in_progress', 'completed', 'expired', 'abandoned')");
  await knex.schema.alterTable('quiz_sessions', (t) => {
    t.dropColumn('paused_at');
    t.dropColumn('paused_from');
    t.dropColumn('extra_time_seconds');
    t.dropColumn('overdue_handling');
    t.dropColumn('grace_period_seconds');
  });
}
