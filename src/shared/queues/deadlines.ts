import type { Queue } from 'bullmq';
import type { Redis as RedisClient, Cluster } from 'ioredis';
import { shardOf } from './jobs';

/** What the index needs of each shard of the lifecycle queue (a ShardedQueue): its key names and connection. */
type QueueShard = Pick<Queue, 'toKey' | 'client'>;

/** Removes an entry only if its score is still the one read: a deadline set meanwhile stays. */
const REMOVE_IF_AT = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0`;

type Client = (RedisClient | Cluster) & { deadlineRemoveIfAt?(key: string, id: string, score: string): Promise<number> };

/** An attempt listed as due, with its due time as the index holds it (for removeIfAt). */
export interface DueEntry {
  id: string;
  at: string;
}

/**
 * The deadline index: for each shard of the lifecycle queue, a sorted set of attempt ids by when
 * their deadline next moves them (deadline.ts dueAt), beside that shard's BullMQ keys (its prefix,
 * so on a cluster it shares the shard's slot). An attempt costs one member here instead of a
 * delayed job of its own; the shard's `expire-window` job of each tick (deadline.ts expiryTick)
 * closes what is due. A moved deadline (an extension, a resume, the grace of an overdue attempt)
 * re-scores the member; an attempt closed before its deadline leaves a member that its tick's job
 * finds not due and removes. The sweep stays the safety net for anything this misses.
 */
export class DeadlineIndex {
  constructor(private readonly shards: readonly QueueShard[]) {}

  /** How many shards the lifecycle queue has. */
  get shardCount(): number {
    return this.shards.length;
  }

  /** The shard an attempt's deadline is listed in (the shard of its lifecycle jobs). */
  shardOf(id: string): number {
    return shardOf(id, this.shards.length);
  }

  /** The index key of a shard: `<prefix>:session-lifecycle:deadlines`. */
  keyOf(shard: number): string {
    return this.shards[shard].toKey('deadlines');
  }

  private async client(shard: number): Promise<Client> {
    const client = (await this.shards[shard].client) as unknown as Client;
    if (!client.deadlineRemoveIfAt) client.defineCommand('deadlineRemoveIfAt', { numberOfKeys: 1, lua: REMOVE_IF_AT });
    return client;
  }

  /** Lists (or re-scores) the attempt as due at `at`. */
  async set(id: string, at: number): Promise<void> {
    const shard = this.shardOf(id);
    await (await this.client(shard)).zadd(this.keyOf(shard), at, id);
  }

  /** Up to `limit` entries of the shard due at or before `until`, earliest first. */
  async due(shard: number, until: number, limit: number): Promise<DueEntry[]> {
    const flat = await (await this.client(shard)).zrangebyscore(this.keyOf(shard), '-inf', until, 'WITHSCORES', 'LIMIT', 0, limit);
    const out: DueEntry[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ id: flat[i], at: flat[i + 1] });
    return out;
  }

  /** Removes the entry if it is still due at `at` (nothing moved its deadline since it was read). */
  async removeIfAt(shard: number, entry: DueEntry): Promise<boolean> {
    return (await (await this.client(shard)).deadlineRemoveIfAt!(this.keyOf(shard), entry.id, entry.at)) === 1;
  }

  /** Removes the attempt from the index, whatever its due time. */
  async remove(id: string): Promise<boolean> {
    const shard = this.shardOf(id);
    return (await (await this.client(shard)).zrem(this.keyOf(shard), id)) === 1;
  }

  /** How many attempts the shard lists. */
  async size(shard: number): Promise<number> {
    return (await this.client(shard)).zcard(this.keyOf(shard));
  }
}
