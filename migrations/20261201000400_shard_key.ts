import type { Knex } from 'knex';
import { configSchema } from '../src/shared/config';
import { DEADLINE_STATUSES } from '../src/shared/domain/deadline';
import { shardOfIdSql, shardSql } from '../src/shared/domain/shard';
import { OPEN_SQL, RUNNING_SQL, statusInSql } from '../src/shared/domain/status';

/*
 * The shard key (src/shared/domain/shard.ts): both tables get a `shard` column derived from the
 * attempt's user_id, leading the primary keys and the one-open-attempt unique index, so they can be
 * hash-partitioned by it, now (PG_PARTITIONS=N when this runs: N hash partitions, `<table>_p<k>`)
 * or later on Citus (docs/SCALING.md). A check constraint holds every row to the rule.
 *
 * Both tables are rebuilt: a new one (plain or partitioned), every row copied, the old one dropped,
 * the indexes made on the new one. One path for both shapes; it locks the tables while it runs, so
 * it is run with the service stopped (README "Operations").
 */

const SESSIONS = 'quiz_sessions';
const EVENTS = 'attempt_events';

/** `<table>_next` (plain, or partitioned by hash of shard into `partitions`) with every row of `<table>`, then renamed over it. */
async function rebuild(knex: Knex, table: string, partitions: number): Promise<void> {
  const next = `${table}_next`;
  await knex.raw(
    `create table ?? (like ?? including defaults including constraints)${partitions > 0 ? ' partition by hash (shard)' : ''}`,
    [next, table],
  );
  for (let k = 0; k < partitions; k++) {
    await knex.raw(`create table ?? partition of ?? for values with (modulus ${partitions}, remainder ${k})`, [`${table}_p${k}`, next]);
  }
  await knex.raw('insert into ?? select * from ??', [next, table]);
  await knex.raw('drop table ??', [table]);
  await knex.raw('alter table ?? rename to ??', [next, table]);
}

/** The indexes of quiz_sessions; `keyed` with the shard key leading them, else as before this migration. */
async function sessionIndexes(knex: Knex, keyed: boolean): Promise<void> {
  const shard = keyed ? 'shard, ' : '';
  await knex.raw(`alter table ${SESSIONS} add primary key (${shard}id)`);
  // the one-open-attempt rule: one user's attempts share a shard, so the rule holds per partition
  await knex.raw(`create unique index quiz_sessions_one_open_idx on ${SESSIONS} (${shard}user_id, quiz_id) where ${OPEN_SQL}`);
  await knex.raw(`create index quiz_sessions_user_quiz_idx on ${SESSIONS} (${shard}user_id, quiz_id)`);
  await knex.raw(
    `create index quiz_sessions_open_deadline_idx on ${SESSIONS} (expires_at) where ${statusInSql(DEADLINE_STATUSES)} and expires_at is not null`,
  );
  await knex.raw(`create index quiz_sessions_open_activity_idx on ${SESSIONS} (last_updated) where ${RUNNING_SQL}`);
  if (keyed) {
    // a lookup by an id that names no shard (made before this migration) asks every partition
    await knex.raw(`create index quiz_sessions_id_idx on ${SESSIONS} (id)`);
    // the staff listing of a quiz (and the console) in its order
    await knex.raw(`create index quiz_sessions_quiz_listing_idx on ${SESSIONS} (quiz_id, started_at, id)`);
  }
}

export async function up(knex: Knex): Promise<void> {
  const partitions = configSchema.shape.PG_PARTITIONS.parse(process.env.PG_PARTITIONS);
  await knex.raw(`alter table ${SESSIONS} add column shard smallint`);
  await knex.raw(`update ${SESSIONS} set shard = ${shardSql('user_id')}`);
  await knex.raw(`alter table ${SESSIONS} alter column shard set not null`);
  await knex.raw(`alter table ${SESSIONS} add constraint quiz_sessions_shard_check check (shard = ${shardSql('user_id')})`);
  await knex.raw(`alter table ${EVENTS} add column shard smallint`);
  await knex.raw(`update ${EVENTS} e set shard = s.shard from ${SESSIONS} s where s.id = e.attempt_id`);
  // events whose attempt's row was not written yet (a write-behind cut short): the id's shard
  await knex.raw(`update ${EVENTS} set shard = ${shardOfIdSql('attempt_id')} where shard is null`);
  await knex.raw(`alter table ${EVENTS} alter column shard set not null`);

  await rebuild(knex, SESSIONS, partitions);
  await sessionIndexes(knex, true);
  await rebuild(knex, EVENTS, partitions);
  await knex.raw(`alter table ${EVENTS} add primary key (shard, attempt_id, seq)`);
}

/** Back to plain tables keyed by id (and attempt_id, seq), without the shard column. */
export async function down(knex: Knex): Promise<void> {
  await rebuild(knex, SESSIONS, 0);
  await knex.raw(`alter table ${SESSIONS} drop column shard`);
  await sessionIndexes(knex, false);
  await rebuild(knex, EVENTS, 0);
  await knex.raw(`alter table ${EVENTS} drop column shard`);
  await knex.raw(`alter table ${EVENTS} add primary key (attempt_id, seq)`);
}
