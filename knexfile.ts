import type { Knex } from 'knex';
import { loadConfig } from './src/shared/config';
import { knexConfig } from './src/shared/db/knex';

/** knex CLI configuration (compiled to dist/knexfile.js): `npx knex --knexfile dist/knexfile.js migrate:latest`. */
const config: Knex.Config = knexConfig(loadConfig());
export default config;
module.exports = config;
