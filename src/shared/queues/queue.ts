import { Queue, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import type { Config } from '../config';
import type { JobName, JobPayloads, QueueName } from './jobs';

/**
 * Job defaults, set once: retries with a capped exponential backoff (the strategy lives in the
 * workers' settings), finished jobs removed by count so Redis memory stays flat.
 */
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 10_000, // "until PostgreSQL returns": the backoff caps the delay, the sweep is the backstop
  backoff: { type: 'capped-exponential', delay: 500 },
  // a finished job is never needed again (job ids are per window or per attempt): keep a few for
  // inspection, so Redis memory stays flat
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 1000 },
};

/** Entries kept in each queue's event stream (BullMQ's default is 10,000; nothing here reads them). */
export const EVENTS_MAX_LEN = 1000;

/** Largest retry delay: a job waiting on PostgreSQL is retried at least this often. */
export const MAX_BACKOFF_MS = 5000;

/** The workers' backoff: 500 ms doubling, at most MAX_BACKOFF_MS. */
export function cappedExponentialBackoff(attemptsMade: number): number {
  return Math.min(500 * 2 ** Math.max(0, attemptsMade - 1), MAX_BACKOFF_MS);
}

/** A queue over one of the job types, with the defaults above. */
export type TypedQueue = Queue<JobPayloads[JobName], unknown, JobName>;

/** Opens a queue with the service's defaults and prefix. */
export function createQueue(name: QueueName, config: Pick<Config, 'QUEUE_PREFIX'>, connection: ConnectionOptions): TypedQueue {
  return new Queue<JobPayloads[JobName], unknown, JobName>(name, {
    connection,
    prefix: config.QUEUE_PREFIX,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
  });
}
