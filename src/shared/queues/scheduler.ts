import type { Config } from '../config';
import type { Attempt } from '../domain/attempt';
import { dueAt } from '../domain/deadline';
import { persistTick } from '../domain/writeBehind';
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

  /** The window jobs this process has put on the queue (or is putting): shard:until -> the add. */
  private readonly windows = new Map<string, Promise<void>>();

  /**
   * Persists the attempt PERSIST_DELAY_SECONDS after its first unpersisted change, by the shared
   * job of its queue shard and tick (writeBehind.ts persistTick): only the first attempt of a tick
   * costs this process a round trip; other processes' adds of the same tick are dropped by its id.
   */
  async schedulePersist(sessionId: string, dirtySince: number): Promise<void> {
    const shards = this.queues[QUEUE_OF['persist-window']];
    const shard = shardOf(sessionId, shards.length);
    const { runAt, dirtyBefore } = persistTick(dirtySince, this.config.PERSIST_DELAY_SECONDS);
    const key = `${shard}:${runAt}`;
    const known = this.windows.get(key);
    if (known) return known;
    const add = shards[shard]
      .add(
        'persist-window',
        { shard, until: dirtyBefore },
        { jobId: jobIds.persistWindow(shard, runAt), delay: Math.max(0, runAt - this.clock()) },
      )
      .then(
        () => undefined,
        (err: unknown) => {
          // not remembered: the next attempt of the window tries again
          this.windows.delete(key);
          throw err;
        },
      );
    this.windows.set(key, add);
    // windows that ended long ago are not asked for again
    if (this.windows.size > 64 * shards.length) {
      const old = this.clock();
      for (const k of [...this.windows.keys()]) if (Number(k.split(':')[1]) < old) this.windows.delete(k);
    }
    return add;
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
