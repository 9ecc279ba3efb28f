import type { Knex } from 'knex';
import { OVERDUE_HANDLINGS } from '../src/shared/domain/policy';
import { sqlLiteral } from '../src/shared/domain/fragments';

/**
 * The institution's rules per quiz (quiz_policies), and each attempt's number among its user's
 * attempts at the quiz (quiz_sessions.attempt_number, counted from 1) and who submitted it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('quiz_policies', (t) => {
    t.string('quiz_id', 128).primary();
    t.integer('time_limit_seconds').notNullable();
    t.integer('max_attempts').nullable();
    t.string('overdue_handling', 16).notNullable().defaultTo('expire');
    t.integer('grace_period_seconds').nullable();
    t.timestamp('opens_at', { useTz: true }).nullable();
    t.timestamp('closes_at', { useTz: true }).nullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    `alter table quiz_policies add constraint quiz_policies_overdue_check check (overdue_handling in (${OVERDUE_HANDLINGS.map(sqlLiteral).join(', ')}))`,
  );
  await knex.raw(`alter table quiz_policies add constraint quiz_policies_attempts_check check (max_attempts is null or max_attempts >= 1)`);
  await knex.raw(
    `alter table quiz_policies add constraint quiz_policies_window_check check (opens_at is null or closes_at is null or opens_at < closes_at)`,
  );

  await knex.schema.alterTable('quiz_sessions', (t) => {
    t.integer('attempt_number').notNullable().defaultTo(1);
    t.string('submitted_by', 16).nullable();
  });
  // attempts made before this migration: numbered in the order they started
  await knex.raw(`update quiz_sessions s set attempt_number = n.rn from (
      select id, row_number() over (partition by user_id, quiz_id order by started_at, id) as rn from quiz_sessions) n
    where s.id = n.id`);
  await knex.raw(`update quiz_sessions set submitted_by = 'student' where status = 'completed'`);
}

/** Drops the policies and the two columns (what they held is lost). */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('quiz_sessions', (t) => {
    t.dropColumn('attempt_number');
    t.dropColumn('submitted_by');
  });
  await knex.schema.dropTable('quiz_policies');
}
