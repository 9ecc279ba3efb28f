import type { Knex } from 'knex';
import * as createQuizSessions from './20261123000000_create_quiz_sessions';
import * as quizPolicies from './20261201000000_quiz_policies';
import * as accommodationsOverrides from './20261201000100_accommodations_overrides';
import * as liveControls from './20261201000200_live_controls';
import * as attemptEvents from './20261201000300_attempt_events';
import * as shardKey from './20261201000400_shard_key';

/** Every migration, in order; the names are the file names, as knex records them. */
const migrations: Array<[string, Knex.Migration]> = [
  ['20261123000000_create_quiz_sessions', createQuizSessions],
  ['20261201000000_quiz_policies', quizPolicies],
  ['20261201000100_accommodations_overrides', accommodationsOverrides],
  ['20261201000200_live_controls', liveControls],
  ['20261201000300_attempt_events', attemptEvents],
  ['20261201000400_shard_key', shardKey],
];

/**
 * A knex migration source over the list above, so the same migrations run from TypeScript (tests)
 * and from the compiled build without a directory scan or a TypeScript loader.
 */
export const migrationSource: Knex.MigrationSource<[string, Knex.Migration]> = {
  getMigrations: async () => migrations,
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};
