import type { Knex } from 'knex';

/**
 * Per-user settings the institution gives: accommodations (more time on every timed quiz) and
 * per-quiz overrides (another time limit, more attempts, a later close).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_accommodations', (t) => {
    t.string('user_id', 128).primary();
    t.decimal('time_multiplier', 4, 2).notNullable().defaultTo(1);
    t.integer('extra_time_seconds').notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    `alter table user_accommodations add constraint user_accommodations_check check (time_multiplier between 1 and 5 and extra_time_seconds >= 0)`,
  );
  await knex.schema.createTable('quiz_overrides', (t) => {
    t.string('quiz_id', 128).notNullable();
    t.string('user_id', 128).notNullable();
    t.integer('time_limit_seconds').nullable();
    t.integer('extra_attempts').nullable();
    t.timestamp('closes_at', { useTz: true }).nullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['quiz_id', 'user_id']);
  });
}

/** Drops both tables (the settings they held are lost). */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('quiz_overrides');
  await knex.schema.dropTable('user_accommodations');
}
