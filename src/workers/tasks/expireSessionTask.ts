import { DelayedError, type Job } from 'bullmq';
import type { AttemptStatus } from '../../shared/domain/status';
import type { JobPayloads } from '../../shared/queues/jobs';
import type { SessionService } from '../../shared/sessionService';
import type { SnapshotPersister } from '../persister';
import { closeAndPersist } from './closeAndPersist';

/** Payload of `expire-session`. */
export type ExpireSessionPayload = JobPayloads['expire-session'];

/** What an expiry job did: the status the deadline moved the attempt to, or nothing. */
export type ExpireOutcome = AttemptStatus | 'unchanged';

/**
 * Applies the attempt's deadline if it is due (deadline.ts): expired, completed by the timer,
 * abandoned, or overdue (the service then schedules the job that ends the grace). Closed, paused
 * and extended attempts are left alone (an extension or a resume has a job of its own). A job
 * that runs early (clock skew between hosts) goes back to wait for its time.
 */
export function expireSessionTask(service: SessionService, persister: SnapshotPersister) {
  return async (job: Job<ExpireSessionPayload>, token?: string): Promise<ExpireOutcome> => {
    const { sessionId, expiresAt } = job.data;
    if (service.clock() < expiresAt) {
      await job.moveToDelayed(expiresAt, token);
      throw new DelayedError();
    }
    const result = await closeAndPersist(service, persister, sessionId, { by: 'deadline' });
    return result.outcome === 'closed' ? result.attempt.status : 'unchanged';
  };
}
