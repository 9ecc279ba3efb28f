import type { Config } from '../config';
import type { Attempt } from '../domain/attempt';
import { dueAt } from '../domain/deadline';
import { jobIds, QUEUES, QUEUE_OF, shardOf } from './jobs';
import type { ShardedQueue } from './queue';

/** Puts the API's jobs on the queues: the write-behind once per window, expiry at the deadline. */
export class JobScheduler {
  constructor(
    private readonly queues: Record<(typeof QUEUES)[keyof typeof QUEUES], ShardedQueue>,
    private readonly config: Pick<Config, 'PERSIST_DELAY_SECONDS'>,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The shard of the attempt's queue for this job. */
  private shardOf(job: 'persist-snapshot' | 'expire-session', sessionId: string) {
    const shards = this.queues[QUEUE_OF[job]];
    return shards[shardOf(sessionId, shards.length)];
  }

  /** Persists the attempt PERSIST_DELAY_SECONDS after its first unpersisted change (once per window). */
  async schedulePersist(sessionId: string, dirtySince: number): Promise<void> {
    const delay = Math.max(0, dirtySince + this.config.PERSIST_DELAY_SECONDS * 1000 - this.clock());
    await this.shardOf('persist-snapshot', sessionId).add(
      'persist-snapshot',
      { sessionId, dirtySince },
      { jobId: jobIds.persist(sessionId, dirtySince), delay },
    );
  }

  /**
   * Applies the attempt's deadline when it is next due (its deadline, or the end of its grace);
   * nothing for an untimed, paused or closed attempt. The id names the due time, so a resumed
   * attempt is not scheduled twice, and a moved deadline gets a job of its own.
   */
  async scheduleExpiry(attempt: Attempt): Promise<void> {
    const at = dueAt(attempt);
    if (at === null) return;
    await this.shardOf('expire-session', attempt.id).add(
      'expire-session',
      { sessionId: attempt.id, expiresAt: at },
      { jobId: jobIds.expire(attempt.id, at), delay: Math.max(0, at - this.clock()) },
    );
  }
}
