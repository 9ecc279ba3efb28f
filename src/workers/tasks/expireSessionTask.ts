import { DelayedError, type Job } from 'bullmq';
import type { JobPayloads } from '../../shared/queues/jobs';
import type { SessionService } from '../../shared/sessionService';
import type { SnapshotPersister } from '../persister';
import { closeAndPersist } from './closeAndPersist';

/** Payload of `expire-session`. */
export type ExpireSessionPayload = JobPayloads['expire-session'];

/**
 * Expires the attempt at its deadline if it is still open; completed or abandoned attempts are
 * left alone. A job that runs early (clock skew between hosts) goes back to wait for the deadline.
 */
export function expireSessionTask(service: SessionService, persister: SnapshotPersister) {
  return async (job: Job<ExpireSessionPayload>, token?: string): Promise<'expired' | 'unchanged'> => {
    const { sessionId, expiresAt } = job.data;
    if (service.clock() < expiresAt) {
      await job.moveToDelayed(expiresAt, token);
      throw new DelayedError();
    }
    return (await closeAndPersist(service, persister, sessionId, { by: 'deadline' })) ? 'expired' : 'unchanged';
  };
}
