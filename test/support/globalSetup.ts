import { loadConfig } from '../../src/shared/config';
import { createKnex, migrateLatest } from '../../src/shared/db/knex';

/** Runs the migrations once against the test database before any test file. */
export default async function globalSetup(): Promise<void> {
  const knex = createKnex(loadConfig(process.env));
  try {
    await migrateLatest(knex);
  } finally {
    await knex.destroy();
  }
}
