import { startApiServer } from './api/server';
import { ConfigError, loadConfig, type Config } from './shared/config';
import { createKnex, migrateLatest } from './shared/db/knex';
import { queueHooks } from './shared/hooks';
import { createLogger, type Logger } from './shared/logger';
import { Metrics } from './shared/metrics';
import { QUEUES } from './shared/queues/jobs';
import { createQueue } from './shared/queues/queue';
import { JobScheduler } from './shared/queues/scheduler';
import { failFastRedisOptions, waitForReady } from './shared/redis';
import { createRuntime } from './shared/runtime';
import { Shutdown } from './shared/shutdown';
import { createPersister, startLifecycleWorker, startPersistWorker } from './workers';

/** The process roles; one entry point serves them all (Procfile: one line per role). */
export const ROLES = ['api', 'persist-worker', 'lifecycle-worker', 'all', 'migrate'] as const;
type Role = (typeof ROLES)[number];

async function migrate(config: Config, log: Logger): Promise<void> {
  const knex = createKnex(config);
  try {
    const ran = await migrateLatest(knex);
    log.info(ran.length ? `migrations ran: ${ran.join(', ')}` : 'schema up to date');
  } finally {
    await knex.destroy();
  }
}

async function run(role: Exclude<Role, 'migrate'>, config: Config, log: Logger): Promise<void> {
  const shutdown = new Shutdown(log, config.SHUTDOWN_TIMEOUT_MS);
  shutdown.installSignalHandlers();
  const producer = failFastRedisOptions(config, `quiz-session-${role}-producer`);
  const queues = { [QUEUES.persist]: createQueue(QUEUES.persist, config, producer), [QUEUES.lifecycle]: createQueue(QUEUES.lifecycle, config, producer) };
  for (const q of Object.values(queues)) {
    q.on('error', (err) => log.debug(`queue ${q.name}: ${err.message}`));
    shutdown.add(`queue ${q.name}`, () => q.close(), 20);
  }
  const scheduler = new JobScheduler(queues, config);
  const metrics = new Metrics(role);
  metrics.watchQueues(Object.values(queues));
  const runtime = createRuntime(config, log, shutdown, role, queueHooks(scheduler, metrics.sessionObservers(), log));
  if (!(await waitForReady(runtime.redis, 5000))) log.warn('redis is not reachable yet; reads fall back to PostgreSQL, writes answer 503');

  const workerDeps = {
    config,
    log,
    shutdown,
    runtime,
    observer: metrics.jobObserver(),
    persisterEvents: {
      persisted: (lagMs: number) => metrics.persistLag.observe(lagMs / 1000),
      redirtied: (id: string, since: number) => scheduler.schedulePersist(id, since),
    },
  };
  const persister = role === 'api' ? null : createPersister(workerDeps);
  if (persister && (role === 'persist-worker' || role === 'all')) startPersistWorker(workerDeps, persister);
  if (persister && (role === 'lifecycle-worker' || role === 'all')) await startLifecycleWorker(workerDeps, persister);
  if (role === 'api' || role === 'all') await startApiServer({ config, log, shutdown, metrics, ...runtime });
  // workers serve their metrics on METRICS_PORT; in `all` the API's /metrics has the one registry
  else await metrics.serve(config.METRICS_PORT, config.HOST, log, shutdown);
  if (role !== 'api') log.info(`${role} started`);
}

async function main(): Promise<void> {
  const role = (process.argv[2] ?? process.env.SERVICE_ROLE ?? 'api') as Role;
  if (!ROLES.includes(role)) {
    process.stderr.write(`usage: node dist/src/main.js <${ROLES.join('|')}> (or SERVICE_ROLE)\n`);
    process.exit(2);
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`[session-service] ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // the API's request lines keep the seeds' `[session-service]` prefix, also when run in `all`
  const log = createLogger(config.LOG_LEVEL, role === 'api' || role === 'all' ? '' : role);
  if (role === 'migrate') await migrate(config, log);
  else await run(role, config, log);
}

main().catch((err) => {
  process.stderr.write(`[session-service] fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
