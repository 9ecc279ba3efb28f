import { DelayedError, type Job } from 'bullmq';
import type { AttemptStatus } from '../../shared/domain/status';
import type { DeadlineIndex, DueEntry } from '../../shared/queues/deadlines';
import type { JobPayloads } from '../../shared/queues/jobs';
import type { SessionService } from '../../shared/sessionService';
import type { SnapshotPersister } from '../persister';
import { closeAndPersist } from './closeAndPersist';

/** Payload of `expire-window`. */
export type ExpireWindowPayload = JobPayloads['expire-window'];

/** What one expiry tick did: the entries it found due, and how many the deadline moved to each status. */
export interface ExpireWindowReport {
  due: number;
  moved: Partial<Record<AttemptStatus, number>>;
}

/** Entries read from the index at once. */
const PAGE = 500;
/** Closes under way at once (their PostgreSQL writes share the persister's batches). */
const CONCURRENCY = 50;

/**
 * Applies the deadline of every attempt of the shard's deadline index due at or before `until`:
 * expired, completed by the timer, abandoned, or made overdue (whose grace end the service then
 * lists again). Each handled entry is removed unless its deadline moved meanwhile; an attempt
 * found not due (closed, paused, extended) is simply dropped, since a moved deadline is listed
 * again. A failure (PostgreSQL away) is thrown; the entries not yet handled stay listed.
 */
export async function expireDue(
  service: SessionService,
  persister: SnapshotPersister,
  deadlines: DeadlineIndex,
  shard: number,
  until: number,
): Promise<ExpireWindowReport> {
  const report: ExpireWindowReport = { due: 0, moved: {} };
  // an entry re-listed at a due time this window also covers is handled again, once per due time
  const handled = new Set<string>();
  const expireOne = async (entry: DueEntry): Promise<void> => {
    handled.add(`${entry.id}@${entry.at}`);
    report.due += 1;
    const result = await closeAndPersist(service, persister, entry.id, { by: 'deadline' });
    if (result.outcome === 'closed') {
      const status = result.attempt.status;
      report.moved[status] = (report.moved[status] ?? 0) + 1;
    }
    await deadlines.removeIfAt(shard, entry);
  };
  for (;;) {
    const page = (await deadlines.due(shard, until, PAGE)).filter((e) => !handled.has(`${e.id}@${e.at}`));
    if (page.length === 0) return report;
    for (let i = 0; i < page.length; i += CONCURRENCY) {
      await Promise.all(page.slice(i, i + CONCURRENCY).map(expireOne));
    }
  }
}

/** How many attempts a report says the deadline moved. */
export const movedCount = (report: ExpireWindowReport): number => Object.values(report.moved).reduce((a, b) => a + (b ?? 0), 0);

/**
 * The job of one expiry tick: expireDue over the job's shard up to its tick. A job that runs early
 * (clock skew between hosts) waits for its time; a failure fails the job, which is retried.
 */
export function expireWindowTask(service: SessionService, persister: SnapshotPersister, deadlines: DeadlineIndex) {
  return async (job: Job<ExpireWindowPayload>, token?: string): Promise<ExpireWindowReport> => {
    const { shard, until } = job.data;
    if (service.clock() < until) {
      await job.moveToDelayed(until, token);
      throw new DelayedError();
    }
    return expireDue(service, persister, deadlines, shard, until);
  };
}
