import { Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Config } from '../shared/config';
import type { Logger } from '../shared/logger';
import { QUEUE_OF, type JobName, type JobPayloads, type QueueName } from '../shared/queues/jobs';
import { cappedExponentialBackoff, consumedShards, shardPrefix } from '../shared/queues/queue';
import { workerConnection } from '../shared/redis';
import { ShutdownOrder, type Shutdown } from '../shared/shutdown';

/** A handler per job name the queue carries. */
export type Handlers<N extends JobName> = { [J in N]: (job: Job<JobPayloads[J]>, token?: string) => Promise<unknown> };

/** Observers of job execution, for metrics. */
export interface JobObserver {
  /** A worker now consumes this shard of the queue, for these job names. */
  consuming?(queue: QueueName, shard: number, jobNames: readonly string[]): void;
  started?(queue: QueueName, job: Job, lagMs: number, shard?: number): void;
  finished?(queue: QueueName, job: Job, outcome: 'completed' | 'failed' | 'delayed', seconds: number, shard?: number): void;
}

/**
 * Starts a BullMQ worker on every shard of `queue` this process consumes (QUEUE_SHARDS,
 * QUEUE_SHARDS_CONSUMED). Checks at start-up that every job name the queue carries has exactly one
 * handler. On shutdown the workers stop taking jobs and finish the active ones.
 */
export function startWorker<N extends JobName>(
  queue: QueueName,
  handlers: Handlers<N>,
  deps: { config: Config; log: Logger; shutdown: Shutdown; observer?: JobObserver },
  options: Partial<WorkerOptions> = {},
): Worker[] {
  const expected = (Object.keys(QUEUE_OF) as JobName[]).filter((name) => QUEUE_OF[name] === queue).sort();
  const given = Object.keys(handlers).sort();
  if (expected.join() !== given.join()) {
    throw new Error(`queue ${queue} carries jobs [${expected.join(', ')}] but handlers are [${given.join(', ')}]`);
  }
  return consumedShards(deps.config).map((shard) => {
    const worker = startShardWorker(queue, shard, handlers, deps, options);
    deps.observer?.consuming?.(queue, shard, expected);
    return worker;
  });
}

function startShardWorker<N extends JobName>(
  queue: QueueName,
  shard: number,
  handlers: Handlers<N>,
  deps: { config: Config; log: Logger; shutdown: Shutdown; observer?: JobObserver },
  options: Partial<WorkerOptions>,
): Worker {
  const worker = new Worker(
    queue,
    async (job: Job, token?: string) => {
      const handler = (handlers as Record<string, (j: Job, t?: string) => Promise<unknown>>)[job.name];
      if (!handler) throw new Error(`no handler for job ${job.name}`);
      // queue lag: from when the job was due (added, or its delay ran out) to now; first runs only,
      // since a retry's due time is its backoff's end
      if (job.attemptsMade === 0)
        deps.observer?.started?.(queue, job, Math.max(0, Date.now() - (job.timestamp + (job.opts.delay ?? 0))), shard);
      const started = process.hrtime.bigint();
      try {
        const result = await handler(job, token);
        deps.observer?.finished?.(queue, job, 'completed', Number(process.hrtime.bigint() - started) / 1e9, shard);
        return result;
      } catch (err) {
        const outcome = (err as Error)?.name === 'DelayedError' ? 'delayed' : 'failed';
        deps.observer?.finished?.(queue, job, outcome, Number(process.hrtime.bigint() - started) / 1e9, shard);
        throw err;
      }
    },
    {
      connection: workerConnection(deps.config, `quiz-session-worker-${queue}-${shard}`),
      prefix: shardPrefix(deps.config, shard),
      settings: { backoffStrategy: cappedExponentialBackoff },
      // a killed worker's jobs come back within seconds, not the default 30 s
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 10,
      ...options,
    },
  );
  worker.on('failed', (job, err) => {
    if (err?.name !== 'DelayedError') deps.log.warn(`job ${job?.name} ${job?.id} failed (attempt ${job?.attemptsMade}): ${err.message}`);
  });
  worker.on('error', (err) => deps.log.warn(`worker ${queue} (shard ${shard}): ${err.message}`));
  deps.shutdown.add(`worker ${queue} shard ${shard}`, () => worker.close(), ShutdownOrder.StopIntake);
  return worker;
}
