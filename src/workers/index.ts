import type { Config } from '../shared/config';
import type { Logger } from '../shared/logger';
import { QUEUES, SWEEP_SCHEDULER_ID } from '../shared/queues/jobs';
import { createQueue } from '../shared/queues/queue';
import { workerRedisOptions } from '../shared/redis';
import type { Runtime } from '../shared/runtime';
import type { Shutdown } from '../shared/shutdown';
import { SnapshotPersister, type PersisterEvents } from './persister';
import { startWorker, type JobObserver } from './startWorker';
import { expireSessionTask } from './tasks/expireSessionTask';
import { persistSnapshotTask } from './tasks/persistSnapshotTask';
import { sweepTask } from './tasks/sweepTask';

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
  deps.shutdown.add('persister', () => persister.drain(), 5);
  return persister;
}

/**
 * The write-behind worker. On SIGTERM it stops taking jobs, finishes the active ones, then flushes
 * every attempt still dirty (within the shutdown budget), so nothing waits on a delayed job.
 */
export function startPersistWorker(deps: WorkerDeps, persister = createPersister(deps)) {
  const worker = startWorker(QUEUES.persist, { 'persist-snapshot': persistSnapshotTask(persister) }, deps, { concurrency: 250 });
  deps.shutdown.add(
    'flush dirty attempts',
    async () => {
      const deadline = Date.now() + Math.max(500, deps.config.SHUTDOWN_TIMEOUT_MS - 2500);
      const n = await persister.flushDirty(Date.now(), deadline, deps.config.SWEEP_BATCH_SIZE);
      deps.log.info(`flushed ${n} unpersisted attempts`);
    },
    6,
  );
  return worker;
}

/** The lifecycle worker: expiry at the deadline and the repeatable sweep. */
export async function startLifecycleWorker(deps: WorkerDeps, persister = createPersister(deps)) {
  const { service, store, repo } = deps.runtime;
  const worker = startWorker(
    QUEUES.lifecycle,
    {
      'expire-session': expireSessionTask(service, persister),
      sweep: sweepTask(service, store, repo, persister, deps.config, deps.log),
    },
    deps,
    { concurrency: 50 },
  );
  // one scheduler for the whole deployment: upsert is idempotent, so every lifecycle worker may call it
  const queue = createQueue(QUEUES.lifecycle, deps.config, workerRedisOptions(deps.config, 'quiz-session-sweep-scheduler'));
  deps.shutdown.add('sweep scheduler queue', () => queue.close(), 20);
  await queue.upsertJobScheduler(
    SWEEP_SCHEDULER_ID,
    { every: deps.config.SWEEP_INTERVAL_SECONDS * 1000 },
    { name: 'sweep', data: { scheduledBy: 'scheduler' }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 }, attempts: 1 } },
  );
  return worker;
}
