import { startApiServer } from './api/server';
import { ConfigError, loadConfig, type Config } from './shared/config';
import { createKnex, migrateLatest, partitionMismatch, repartition } from './shared/db/knex';
import { queueHooks } from './shared/hooks';
import { createLogger, exitAfterLog, type Logger } from './shared/logger';
import { Metrics } from './shared/metrics';
import { QUEUES } from './shared/queues/jobs';
import { createShardedQueue, type TypedQueue } from './shared/queues/queue';
import { JobScheduler } from './shared/queues/scheduler';
import { DeadlineIndex } from './shared/queues/deadlines';
import { pingMasters, producerConnection, waitForReady } from './shared/redis';
import { ROLES, type Role, type ServingRole } from './shared/roles';
import { createRuntime, type Runtime } from './shared/runtime';
import { Shutdown, ShutdownOrder } from './shared/shutdown';
import { WebhookPublisher } from './shared/queues/webhooks';
import { createPersister, startLifecycleWorker, startPersistWorker, startWebhookWorker, type WorkerDeps } from './workers';
import type { SnapshotPersister } from './workers/persister';

/** What a long-running role is made of: the parts it starts, in order, sharing one process. */
interface Process {
  config: Config;
  log: Logger;
  shutdown: Shutdown;
  metrics: Metrics;
  deps: WorkerDeps;
  lifecycleQueue: TypedQueue;
  /** The lifecycle queue's deadline index (what the expiry ticks close). */
  deadlines: DeadlineIndex;
  /** The process's one batching persister, made on first use. */
  persister(): SnapshotPersister;
}

type Part = (p: Process) => Promise<unknown>;

const persistWorker: Part = async (p) => startPersistWorker(p.deps, p.persister());
const lifecycleWorker: Part = (p) => startLifecycleWorker(p.deps, p.persister(), p.lifecycleQueue, p.deadlines);
const webhookWorker: Part = async (p) => startWebhookWorker(p.deps, p.metrics.webhookObserver());
const api: Part = (p) => startApiServer({ config: p.config, log: p.log, shutdown: p.shutdown, metrics: p.metrics, ...p.deps.runtime });
// a worker serves its metrics on METRICS_PORT; the API (also in `all`) serves them itself
const workerMetrics: Part = (p) => p.metrics.serve(p.config.METRICS_PORT, p.config.HOST, p.log, p.shutdown);
const startedLine: (role: string) => Part = (role) => async (p) => p.log.info(`${role} started`);

/** Every serving role and its parts (Procfile: one line per role; `all` for development). */
const PARTS: Record<ServingRole, Part[]> = {
  api: [api],
  'persist-worker': [persistWorker, workerMetrics, startedLine('persist-worker')],
  'lifecycle-worker': [lifecycleWorker, workerMetrics, startedLine('lifecycle-worker')],
  'webhook-worker': [webhookWorker, workerMetrics, startedLine('webhook-worker')],
  all: [persistWorker, lifecycleWorker, webhookWorker, api, startedLine('all')],
};

/** `migrate`: the schema brought up to date; with `--repartition`, the tables rebuilt with PG_PARTITIONS partitions. */
async function migrate(config: Config, log: Logger, rebuild: boolean): Promise<void> {
  const knex = createKnex(config);
  try {
    const ran = await migrateLatest(knex);
    log.info(ran.length ? `migrations ran: ${ran.join(', ')}` : 'schema up to date');
    if (rebuild && (await partitionMismatch(knex, config))) {
      await repartition(knex);
      log.info(`quiz_sessions and attempt_events rebuilt with ${config.PG_PARTITIONS} partitions`);
    }
    const mismatch = await partitionMismatch(knex, config);
    if (mismatch) log.warn(mismatch);
  } finally {
    await knex.destroy();
  }
}

/**
 * What `dependency_up` checks in every process: the live state's Redis (every master), PostgreSQL,
 * and the queues' Redis when it is another one (QUEUE_REDIS_URL / QUEUE_REDIS_CLUSTER_NODES).
 */
function dependencyChecks(runtime: Runtime, queue: TypedQueue, config: Config): Record<string, () => Promise<unknown>> {
  const checks: Record<string, () => Promise<unknown>> = {
    redis: () => pingMasters(runtime.redis),
    postgres: () => runtime.knex.raw('select 1'),
  };
  if (config.QUEUE_REDIS_URL || config.QUEUE_REDIS_CLUSTER_NODES)
    checks.queue_redis = async () => ((await queue.client) as unknown as { ping(): Promise<string> }).ping();
  return checks;
}

/** The resources every serving role shares: queues, metrics, the runtime, the signal handlers. */
async function openProcess(role: ServingRole, config: Config, log: Logger): Promise<Process> {
  const shutdown = new Shutdown(log, config.SHUTDOWN_TIMEOUT_MS);
  shutdown.installSignalHandlers();
  const producer = producerConnection(config, `quiz-session-${role}-producer`);
  // each job type's queue, as QUEUE_SHARDS shards
  const queues = {
    [QUEUES.persist]: createShardedQueue(QUEUES.persist, config, producer),
    [QUEUES.lifecycle]: createShardedQueue(QUEUES.lifecycle, config, producer),
    [QUEUES.webhooks]: createShardedQueue(QUEUES.webhooks, config, producer),
  };
  for (const q of Object.values(queues).flat()) {
    q.on('error', (err) => log.debug(`queue ${q.name}: ${err.message}`));
    shutdown.add(`queue ${q.name}`, () => q.close(), ShutdownOrder.CloseQueues);
  }
  const deadlines = new DeadlineIndex(queues[QUEUES.lifecycle]);
  const scheduler = new JobScheduler(queues, config, deadlines);
  const metrics = new Metrics(role);
  metrics.watchQueues(Object.values(queues));
  // no publisher without URLs: a durable event then costs no enqueue
  const webhooks = config.WEBHOOK_URLS.length > 0 ? new WebhookPublisher(queues[QUEUES.webhooks], config) : undefined;
  const runtime = createRuntime(config, log, shutdown, role, queueHooks(scheduler, metrics.sessionObservers(), log, webhooks));
  // the persist enqueues writes started without waiting for them land before the queues close
  shutdown.add('background enqueues', () => runtime.service.drainBackground(), ShutdownOrder.DrainPersister);
  metrics.watchDependencies(dependencyChecks(runtime, queues[QUEUES.persist][0], config), shutdown);
  if (role === 'persist-worker' || role === 'all') metrics.watchDirtyBacklog(() => runtime.store.dirtyBacklog());
  if (!(await waitForReady(runtime.redis, 5000))) log.warn('redis is not reachable yet; reads fall back to PostgreSQL, writes answer 503');
  const deps: WorkerDeps = {
    config,
    log,
    shutdown,
    runtime,
    observer: metrics.jobObserver(),
    persisterEvents: {
      persisted: (lagMs: number) => metrics.persistLag.observe(lagMs / 1000),
      redirtied: (id: string, since: number) => scheduler.schedulePersist(id, since),
      eventsDurable: webhooks && ((attempt, events) => webhooks.eventsDurable(attempt, events)),
    },
  };
  let persister: SnapshotPersister | undefined;
  return {
    config,
    log,
    shutdown,
    metrics,
    deps,
    // the one sweep scheduler of the deployment lives on shard 0
    lifecycleQueue: queues[QUEUES.lifecycle][0],
    deadlines,
    persister: () => (persister ??= createPersister(deps)),
  };
}

async function main(): Promise<void> {
  const role = (process.argv[2] ?? process.env.SERVICE_ROLE ?? 'api') as Role;
  if (!(ROLES as readonly string[]).includes(role)) {
    return exitAfterLog(2, `usage: node dist/src/main.js <${ROLES.join('|')}> (or SERVICE_ROLE)`);
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) return exitAfterLog(2, `[session-service] ${err.message}`);
    throw err;
  }
  // the API's request lines keep the seeds' `[session-service]` prefix, also when run in `all`
  const log = createLogger(config.LOG_LEVEL, role === 'api' || role === 'all' ? '' : role);
  if (role === 'migrate') return migrate(config, log, process.argv.includes('--repartition'));
  const p = await openProcess(role, config, log);
  for (const part of PARTS[role]) await part(p);
}

main().catch((err) => exitAfterLog(1, `[session-service] fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
