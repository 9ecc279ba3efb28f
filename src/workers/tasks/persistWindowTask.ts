import type { Job } from 'bullmq';
import type { Config } from '../../shared/config';
import { PERSIST_BATCH_MAX } from '../../shared/domain/writeBehind';
import type { JobPayloads } from '../../shared/queues/jobs';
import type { SnapshotPersister } from '../persister';

/** Payload of `persist-window`. */
export type PersistWindowPayload = JobPayloads['persist-window'];

/**
 * Writes every attempt of the job's queue shard that became dirty in the window ending at
 * `until` (batched by the persister). Replays are harmless: what is clean is no longer listed, and
 * the upsert is version-guarded. Returns how many were written.
 */
export function persistWindowTask(persister: SnapshotPersister, config: Pick<Config, 'QUEUE_SHARDS' | 'SWEEP_BATCH_SIZE'>) {
  return async (job: Job<PersistWindowPayload>): Promise<number> =>
    persister.flushWindow(job.data.until, job.data.shard, config.QUEUE_SHARDS, Math.min(config.SWEEP_BATCH_SIZE, PERSIST_BATCH_MAX));
}
