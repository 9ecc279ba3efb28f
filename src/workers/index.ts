import type { Config } from '../shared/config';
import type { Logger } from '../shared/logger';
import { QUEUES, SWEEP_SCHEDULER_ID } from '../shared/queues/jobs';
import type { TypedQueue } from '../shared/queues/queue';
import type { Runtime } from '../shared/runtime';
import { ShutdownOrder, type Shutdown } from '../shared/shutdown';
import { PERSIST_BATCH_MAX } from '../shared/domain/writeBehind';
import { SnapshotPersister, type PersisterEvents } from './persister';
import { startWorker, type JobObserver } from './startWorker';
import { expireSessionTask } from './tasks/expireSessionTask';
import { expireWindowTask } from './tasks/expireWindowTask';
import type { DeadlineIndex } from '../shared/queues/deadlines';
import { persistSnapshotTask } from './tasks/persistSnapshotTask';
import { persistWindowTask } from './tasks/persistWindowTask';
import { sweepTask } from './tasks/sweepTask';
import { deliverWebhookTask, type WebhookObserver } from './tasks/deliverWebhookTask';
import { webhookBackoffMs } from '../shared/domain/webhook';

/** Expiry and sweep jobs one lifecycle worker runs at once. */
const LIFECYCLE_CONCURRENCY = 50;
/** The shutdown flush gets the shutdown budget less this, for what closes after it... */
const CLOSE_AFTER_FLUSH_MS = 2_500;
/** ...but at least this long. */
const MIN_FLUSH_MS = 500;
/** Webhook deliveries one webhook worker has under way at once (each mostly waits on a receiver). */
const WEBHOOK_CONCURRENCY = 20;
/** On shutdown, deliveries still under way this long before the shutdown budget ends are aborted (and retried later). */
const ABORT_DELIVERIES_BEFORE_MS = 2_000;
/** Longest wait between tries of the sweep scheduler's upsert while Redis is away. */
const SCHEDULER_RETRY_MAX_MS = 2_000;

/** What a worker role needs. */
export interface WorkerDeps {
  config: Config;
  log: Logger;
  shutdown: Shutdown;
  runtime: Runtime;
  observer?: JobObserver;
  persisterEvents?: PersisterEvents;
}

/** The batching persister of one process, flushed on shutdown after its workers stop. */
export function createPersister(deps: WorkerDeps): SnapshotPersister {
  const persister = new SnapshotPersister(deps.runtime.store, deps.runtime.repo, deps.log, deps.persisterEvents);
  deps.shutdown.add('persister', () => persister.drain(), ShutdownOrder.DrainPersister);
  return persister;
}

/**
 * The write-behind worker. On SIGTERM it stops taking jobs, finishes the active ones, then flushes
 * every attempt still dirty (within the shutdown budget), so nothing waits on a delayed job.
 */
export function startPersistWorker(deps: WorkerDeps, persister: SnapshotPersister) {
  // as many jobs at once as one persist batch holds, so a full window fills one batch
  const worker = startWorker(
    QUEUES.persist,
    { 'persist-snapshot': persistSnapshotTask(persister), 'persist-window': persistWindowTask(persister, deps.config) },
    deps,
    {
      concurrency: PERSIST_BATCH_MAX,
    },
  );
  deps.shutdown.add(
    'flush dirty attempts',
    async () => {
      const deadline = Date.now() + Math.max(MIN_FLUSH_MS, deps.config.SHUTDOWN_TIMEOUT_MS - CLOSE_AFTER_FLUSH_MS);
      const n = await persister.flushDirty(Date.now(), deadline, deps.config.SWEEP_BATCH_SIZE);
      deps.log.info(`flushed ${n} unpersisted attempts`);
    },
    ShutdownOrder.FlushDirty,
  );
  return worker;
}

/** The lifecycle worker: expiry at the deadline (by tick, from the deadline index) and the repeatable sweep (scheduled on `queue`). */
export async function startLifecycleWorker(deps: WorkerDeps, persister: SnapshotPersister, queue: TypedQueue, deadlines: DeadlineIndex) {
  const { service, store, repo } = deps.runtime;
  const worker = startWorker(
    QUEUES.lifecycle,
    {
      'expire-window': expireWindowTask(service, persister, deadlines),
      'expire-session': expireSessionTask(service, persister),
      sweep: sweepTask(service, store, repo, persister, deps.config, deps.log, deadlines),
    },
    deps,
    { concurrency: LIFECYCLE_CONCURRENCY },
  );
  await upsertSweepScheduler(queue, deps);
  return worker;
}

/**
 * The webhook worker: delivers `deliver-webhook` jobs (deliverWebhookTask), retrying with
 * WEBHOOK_BACKOFF_MS doubling up to an hour. On shutdown it stops taking jobs and lets the
 * deliveries under way finish, aborting those still waiting on a receiver near the end of the
 * shutdown budget (they are retried: at least once).
 */
export function startWebhookWorker(deps: WorkerDeps, observer?: WebhookObserver) {
  const stopping = new AbortController();
  const worker = startWorker(
    QUEUES.webhooks,
    { 'deliver-webhook': deliverWebhookTask(deps.config, deps.log, stopping.signal, observer) },
    deps,
    {
      concurrency: WEBHOOK_CONCURRENCY,
      settings: { backoffStrategy: (attemptsMade: number) => webhookBackoffMs(attemptsMade, deps.config.WEBHOOK_BACKOFF_MS) },
    },
  );
  const graceMs = Math.max(0, deps.config.SHUTDOWN_TIMEOUT_MS - ABORT_DELIVERIES_BEFORE_MS);
  deps.shutdown.add(
    'webhook deliveries',
    () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stopping.abort();
          resolve();
        }, graceMs);
        void Promise.all(worker.map((w) => w.close())).finally(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    ShutdownOrder.StopIntake,
  );
  return worker;
}

/**
 * One sweep scheduler for the whole deployment: upsert is idempotent, so every lifecycle worker
 * may call it. The queue's connection fails fast, so a Redis that is not up yet is retried here.
 */
async function upsertSweepScheduler(queue: TypedQueue, deps: WorkerDeps): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await queue.upsertJobScheduler(
        SWEEP_SCHEDULER_ID,
        { every: deps.config.SWEEP_INTERVAL_SECONDS * 1000 },
        {
          name: 'sweep',
          data: { scheduledBy: 'scheduler' },
          opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 }, attempts: 1 },
        },
      );
      return;
    } catch (err) {
      if (attempt === 1) deps.log.warn(`scheduling the sweep failed (${(err as Error).message}); retrying until Redis answers`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(SCHEDULER_RETRY_MAX_MS, 100 * 2 ** attempt)));
    }
  }
}
