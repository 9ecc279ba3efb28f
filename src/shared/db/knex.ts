import knexFactory, { type Knex } from 'knex';
import { migrationSource } from '../../../migrations';
import type { Config } from '../config';

/** The knex settings: bounded pool acquire, connect and statement times, so nothing hangs. */
export function knexConfig(config: Pick<Config, 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'DATABASE_STATEMENT_TIMEOUT_MS'>): Knex.Config {
  return {
    client: 'pg',
    connection: {
      connectionString: config.DATABASE_URL,
      connectionTimeoutMillis: 2000,
      statement_timeout: config.DATABASE_STATEMENT_TIMEOUT_MS,
      query_timeout: config.DATABASE_STATEMENT_TIMEOUT_MS + 1000,
      application_name: 'quiz-session-service',
    } as Knex.PgConnectionConfig,
    pool: { min: 0, max: config.DATABASE_POOL_MAX, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: 3000,
    migrations: { migrationSource, tableName: 'knex_migrations' },
  };
}

/** A knex instance for the configured database. */
export function createKnex(config: Parameters<typeof knexConfig>[0]): Knex {
  return knexFactory(knexConfig(config));
}

/** Brings the schema up to date; returns the names of the migrations it ran. */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, ran] = (await knex.migrate.latest()) as [number, string[]];
  return ran;
}

/** How many partitions a table has (0: a plain table). */
export async function partitionCount(knex: Knex, table: string): Promise<number> {
  const result = await knex.raw(
    `select count(*)::integer as n from pg_inherits i join pg_class p on p.oid = i.inhparent where p.relname = ?`,
    [table],
  );
  return (result.rows as Array<{ n: number }>)[0].n;
}

/**
 * Null when quiz_sessions has the PG_PARTITIONS partitions the config asks for, else why not: the
 * setting takes effect when the shard-key migration runs, later changes need a repartition
 * (docs/SCALING.md).
 */
export async function partitionMismatch(knex: Knex, config: Pick<Config, 'PG_PARTITIONS'>): Promise<string | null> {
  const actual = await partitionCount(knex, 'quiz_sessions');
  if (actual === config.PG_PARTITIONS) return null;
  return `PG_PARTITIONS=${config.PG_PARTITIONS}, but quiz_sessions has ${actual} partitions: the setting applies when the shard-key migration runs (node dist/src/main.js migrate --repartition rebuilds the tables; docs/SCALING.md)`;
}

/** The migration that makes the shard key and the partitions (migrations/20261201000400_shard_key.ts). */
export const SHARD_KEY_MIGRATION = '20261201000400_shard_key';

/**
 * Rebuilds quiz_sessions and attempt_events with the PG_PARTITIONS partitions of the environment,
 * every row kept: the shard-key migration undone and run again (it copies both tables). Run with
 * the service stopped (`node dist/src/main.js migrate --repartition`); only while that migration is
 * the latest one run, since undoing it must not undo a later one.
 */
export async function repartition(knex: Knex): Promise<void> {
  const [completed] = (await knex.migrate.list()) as [Array<{ name: string } | string>, unknown];
  const names = completed.map((m) => (typeof m === 'string' ? m : m.name));
  const last = names[names.length - 1];
  if (last !== SHARD_KEY_MIGRATION) {
    throw new Error(
      `repartition rebuilds the tables through ${SHARD_KEY_MIGRATION}, which must be the latest migration run (it is ${last ?? 'none'})`,
    );
  }
  await knex.migrate.down();
  await knex.migrate.latest();
}
