import { startApiServer } from './api/server';
import { ConfigError, loadConfig } from './shared/config';
import { createKnex, migrateLatest } from './shared/db/knex';
import { createLogger } from './shared/logger';
import { waitForReady } from './shared/redis';
import { createRuntime } from './shared/runtime';
import { Shutdown } from './shared/shutdown';

/** The process roles; one entry point serves them all (Procfile: one line per role). */
export const ROLES = ['api', 'migrate'] as const;
type Role = (typeof ROLES)[number];

async function main(): Promise<void> {
  const role = (process.argv[2] ?? process.env.SERVICE_ROLE ?? 'api') as Role;
  if (!ROLES.includes(role)) {
    process.stderr.write(`usage: node dist/src/main.js <${ROLES.join('|')}> (or SERVICE_ROLE)\n`);
    process.exit(2);
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`[session-service] ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.LOG_LEVEL, role === 'api' ? '' : role);

  if (role === 'migrate') {
    const knex = createKnex(config);
    try {
      const ran = await migrateLatest(knex);
      log.info(ran.length ? `migrations ran: ${ran.join(', ')}` : 'schema up to date');
    } finally {
      await knex.destroy();
    }
    return;
  }

  const shutdown = new Shutdown(log, config.SHUTDOWN_TIMEOUT_MS);
  shutdown.installSignalHandlers();
  const runtime = createRuntime(config, log, shutdown, role);
  if (!(await waitForReady(runtime.redis, 5000))) log.warn('redis is not reachable yet; reads fall back to PostgreSQL, writes answer 503');
  await startApiServer({ config, log, shutdown, ...runtime });
}

main().catch((err) => {
  process.stderr.write(`[session-service] fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
