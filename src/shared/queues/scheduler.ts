import type { Config } from '../config';
import type { Attempt } from '../domain/attempt';
import { dueAt, expiryTick } from '../domain/deadline';
import { persistTick } from '../domain/writeBehind';
import { jobIds, QUEUES, QUEUE_OF, shardOf } from './jobs';
import type { ShardedQueue } from './queue';
import type { DeadlineIndex } from './deadlines';

/** Puts the API's jobs on the queues: the write-behind once per window, expiry at the deadline. */
export class JobScheduler {
  constructor(
    private readonly queues: Record<(typeof QUEUES)[keyof typeof QUEUES], ShardedQueue>,
    private readonly config: Pick<Config, 'PERSIST_DELAY_SECONDS'>,
    private readonly deadlines: DeadlineIndex,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The window jobs this process has put on the queues (or is putting): job:shard:runAt -> the add. */
  private readonly windows = new Map<string, Promise<void>>();
  private prunedAt = 0;

  /**
   * Puts the shard's job of one tick on its queue once per process: other attempts of the tick
   * cost no round trip, and other processes' adds of it are dropped by its id. A failed add is
   * forgotten, so the next attempt of the tick tries again.
   */
  private addWindowJob(job: 'persist-window' | 'expire-window', shard: number, runAt: number, until: number): Promise<void> {
    const key = `${job}:${shard}:${runAt}`;
    const known = this.windows.get(key);
    if (known) return known;
    const shards = this.queues[QUEUE_OF[job]];
    const jobId = job === 'persist-window' ? jobIds.persistWindow(shard, runAt) : jobIds.expireWindow(shard, runAt);
    const add = shards[shard].add(job, { shard, until }, { jobId, delay: Math.max(0, runAt - this.clock()) }).then(
      () => undefined,
      (err: unknown) => {
        this.windows.delete(key);
        throw err;
      },
    );
    this.windows.set(key, add);
    // windows that ended are not asked for again (looked for at most once a second: expiry ticks
    // can be hours ahead, so the map may hold many)
    const now = this.clock();
    if (this.windows.size > 64 * shards.length && now - this.prunedAt >= 1000) {
      this.prunedAt = now;
      for (const k of [...this.windows.keys()]) if (Number(k.split(':')[2]) < now) this.windows.delete(k);
    }
    return add;
  }

  /**
   * Persists the attempt PERSIST_DELAY_SECONDS after its first unpersisted change, by the shared
   * job of its queue shard and tick (writeBehind.ts persistTick): only the first attempt of a tick
   * costs this process a round trip; other processes' adds of the same tick are dropped by its id.
   */
  async schedulePersist(sessionId: string, dirtySince: number): Promise<void> {
    const shards = this.queues[QUEUE_OF['persist-window']];
    const { runAt, dirtyBefore } = persistTick(dirtySince, this.config.PERSIST_DELAY_SECONDS);
    return this.addWindowJob('persist-window', shardOf(sessionId, shards.length), runAt, dirtyBefore);
  }

  /**
   * Applies the attempt's deadline when it is next due (its deadline, or the end of its grace):
   * listed (or re-scored) in the deadline index, and the job of its shard and expiry tick queued;
   * nothing for an untimed, paused or closed attempt (a stale entry is found not due and dropped).
   * The index first: should the job's add fail, a later tick's job, or the sweep, still finds it.
   */
  async scheduleExpiry(attempt: Attempt): Promise<void> {
    const at = dueAt(attempt);
    if (at === null) return;
    await this.deadlines.set(attempt.id, at);
    // a tick already past may have run: a due time now (clock skew between hosts) goes to the next
    const tick = expiryTick(Math.max(at, this.clock() + 1));
    await this.addWindowJob('expire-window', this.deadlines.shardOf(attempt.id), tick, tick);
  }
}
