import { bucketOf } from '../store/keys';

import { urlKey } from '../domain/webhook';

/** The queues: write-behind, attempt lifecycle (expiry at the deadline, periodic sweeps), and webhooks to graders. */
export const QUEUES = {
  persist: 'persist-snapshot',
  lifecycle: 'session-lifecycle',
  webhooks: 'deliver-webhook',
} as const;

/** A queue name. */
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Every job name tied to its payload: the one contract between producers and consumers. */
export interface JobPayloads {
  /** Write the attempt's current Redis state to PostgreSQL (the 30-second write-behind). */
  'persist-snapshot': { sessionId: string; dirtySince: number };
  /** Write every attempt of the queue shard dirty since at or before `until` (writeBehind.ts persistTick). */
  'persist-window': { shard: number; until: number };
  /** Apply the attempt's deadline when it is due (deadline.ts dueAt: the deadline, or the end of the grace), if it still is (queued before the deadline index; still run). */
  'expire-session': { sessionId: string; expiresAt: number };
  /** Apply the deadline of every attempt of the shard's deadline index due at or before `until` (queues/deadlines.ts). */
  'expire-window': { shard: number; until: number };
  /** The safety net: expire overdue, abandon idle, persist stragglers. */
  sweep: { scheduledBy: 'scheduler' };
  /** POST one signed webhook message (domain/webhook.ts) to one configured URL. */
  'deliver-webhook': { messageId: string; type: string; url: string; body: string };
}

/** A job name. */
export type JobName = keyof JobPayloads;

/** Which queue carries each job. */
export const QUEUE_OF: { [J in JobName]: QueueName } = {
  'persist-snapshot': QUEUES.persist,
  'persist-window': QUEUES.persist,
  'expire-session': QUEUES.lifecycle,
  'expire-window': QUEUES.lifecycle,
  sweep: QUEUES.lifecycle,
  'deliver-webhook': QUEUES.webhooks,
};

/**
 * Deterministic job ids, so a duplicate add is dropped: one shared persist job per queue shard
 * and tick (persistWindow; the per-attempt persist id is for jobs queued before it), one expiry job per queue shard and
 * expiry tick (expireWindow; the per-attempt expire id is for jobs queued before the deadline index), one delivery per
 * webhook message and URL (kept a day after it is delivered, so a repeated enqueue is dropped).
 */
export const jobIds = {
  persist: (sessionId: string, dirtySince: number) => `persist-${sessionId}-${dirtySince}`,
  persistWindow: (shard: number, tick: number) => `persist-window-${shard}-${tick}`,
  expire: (sessionId: string, dueAt: number) => `expire-${sessionId}-${dueAt}`,
  expireWindow: (shard: number, tick: number) => `expire-window-${shard}-${tick}`,
  webhook: (messageId: string, url: string) => `webhook-${messageId}-${urlKey(url)}`,
};

/** The queue shard of a bucket (keys.ts): every attempt of the bucket has its jobs there. */
export const shardOfBucket = (bucket: number, shards: number): number => bucket % shards;

/** The shard an attempt's jobs go to: by its bucket (keys.ts), so one attempt's jobs share a shard. */
export const shardOf = (sessionId: string, shards: number): number => (shards === 1 ? 0 : shardOfBucket(bucketOf(sessionId), shards));

/** The id of the repeatable sweep's job scheduler. */
export const SWEEP_SCHEDULER_ID: JobName = 'sweep';
