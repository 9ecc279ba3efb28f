import type { Config } from '../../shared/config';
import type { Logger } from '../../shared/logger';
import type { SessionService } from '../../shared/sessionService';
import type { SessionRepository } from '../../shared/store/sessionRepository';
import type { SnapshotPersister } from '../persister';

/** What one sweep did. */
export interface SweepReport {
  expired: number;
  abandoned: number;
  persisted: number;
}

/**
 * The safety net for lost or late jobs: expires open attempts past their deadline, abandons open
 * attempts idle for ABANDON_AFTER_SECONDS, persists attempts dirty for longer than the window.
 * Each step reads one bounded batch from an index, so a sweep costs nothing for attempts that
 * need nothing. Safe with several workers at once: every transition is one atomic Redis script
 * (or a guarded UPDATE), so an attempt changes status once.
 */
export function sweepTask(
  service: SessionService,
  repo: SessionRepository,
  persister: SnapshotPersister,
  config: Pick<Config, 'ABANDON_AFTER_SECONDS' | 'PERSIST_DELAY_SECONDS' | 'SWEEP_BATCH_SIZE'>,
  log: Logger,
) {
  const writeClosed = (attempt: { id: string }) => persister.persist(attempt.id);
  return async (): Promise<SweepReport> => {
    const now = service.clock();
    const batch = config.SWEEP_BATCH_SIZE;

    const overdue = await repo.findOverdue(now, batch);
    const expired = await Promise.all(overdue.map((id) => service.close(id, { by: 'deadline' }, writeClosed)));

    const idleMs = config.ABANDON_AFTER_SECONDS * 1000;
    const idle = await repo.findIdle(now - idleMs, batch);
    const abandoned = await Promise.all(idle.map((id) => service.close(id, { by: 'idle', idleMs }, writeClosed)));

    // dirty past the window plus a grace period: its persist job was lost or is failing
    const stragglersBefore = now - (config.PERSIST_DELAY_SECONDS + 5) * 1000;
    const persisted = await persister.flushDirty(stragglersBefore, now + 10_000, batch);

    const report = {
      expired: expired.filter(Boolean).length,
      abandoned: abandoned.filter(Boolean).length,
      persisted,
    };
    if (report.expired || report.abandoned || report.persisted) {
      log.info(`sweep: expired ${report.expired}, abandoned ${report.abandoned}, persisted ${report.persisted}`);
    }
    return report;
  };
}
