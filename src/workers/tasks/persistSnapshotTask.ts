import type { Job } from 'bullmq';
import type { JobPayloads } from '../../shared/queues/jobs';
import type { PersistOutcome, SnapshotPersister } from '../persister';

/** Payload of `persist-snapshot`. */
export type PersistSnapshotPayload = JobPayloads['persist-snapshot'];

/**
 * Writes the attempt's current Redis state to PostgreSQL (batched with other jobs). Replays are
 * harmless: the upsert is version-guarded and an attempt whose key is gone is simply done.
 */
export function persistSnapshotTask(persister: SnapshotPersister) {
  return async (job: Job<PersistSnapshotPayload>): Promise<PersistOutcome> => persister.persist(job.data.sessionId);
}
