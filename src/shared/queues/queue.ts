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

/**
 * The BullMQ prefix of shard `shard`: QUEUE_PREFIX itself with one shard (the keys of a deployment
 * that never sharded stay where they are), else `<prefix>-<shard>`, inside the braces of a hash tag
 * (`{bull}` -> `{bull-2}`), so on a cluster each shard has a slot of its own.
 */
export function shardPrefix(config: Pick<Config, 'QUEUE_PREFIX' | 'QUEUE_SHARDS'>, shard: number): string {
  if (config.QUEUE_SHARDS === 1) return config.QUEUE_PREFIX;
  const tag = /^\{(.*)\}$/.exec(config.QUEUE_PREFIX);
  return tag ? `{${tag[1]}-${shard}}` : `${config.QUEUE_PREFIX}-${shard}`;
}

/** The shards a worker process consumes: QUEUE_SHARDS_CONSUMED, else every one. */
export const consumedShards = (config: Pick<Config, 'QUEUE_SHARDS' | 'QUEUE_SHARDS_CONSUMED'>): number[] =>
  config.QUEUE_SHARDS_CONSUMED ?? Array.from({ length: config.QUEUE_SHARDS }, (_, k) => k);

/** The shards of one job type's queue, by shard number. */
export type ShardedQueue = readonly TypedQueue[];

/** Opens every shard of a queue. */
export function createShardedQueue(
  name: QueueName,
  config: Pick<Config, 'QUEUE_PREFIX' | 'QUEUE_SHARDS'>,
  connection: ConnectionOptions,
): ShardedQueue {
  return Array.from({ length: config.QUEUE_SHARDS }, (_, k) => createQueue(name, { QUEUE_PREFIX: shardPrefix(config, k) }, connection));
}

/** Opens a queue with the service's defaults and prefix. */
export function createQueue(name: QueueName, config: Pick<Config, 'QUEUE_PREFIX'>, connection: ConnectionOptions): TypedQueue {
  return new Queue<JobPayloads[JobName], unknown, JobName>(name, {
    connection,
    prefix: config.QUEUE_PREFIX,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
  });
}
