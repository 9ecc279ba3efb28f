import type { Knex } from 'knex';

/**
 * The event log of every attempt (src/shared/domain/events.ts): each accepted change and each
 * refused write, numbered by `seq` per attempt. Written by the write-behind with the snapshots,
 * so an event is as durable as the progress it records. Keyed by (attempt_id, seq), so a replayed
 * batch writes nothing twice, and ready to be hash-partitioned by attempt_id.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('attempt_events', (t) => {
    t.uuid('attempt_id').notNullable();
    t.integer('seq').notNullable();
    t.string('type', 32).notNullable();
    t.timestamp('at', { useTz: true }).notNullable();
    t.string('actor_id', 128).nullable();
    t.string('actor_role', 16).notNullable();
    t.string('request_id', 128).nullable();
    t.jsonb('data').notNullable().defaultTo('{}');
    t.primary(['attempt_id', 'seq']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('attempt_events');
}
