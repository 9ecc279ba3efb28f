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
