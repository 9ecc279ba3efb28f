import type { Config } from '../../shared/config';
import type { Logger } from '../../shared/logger';
import type { SessionService } from '../../shared/sessionService';
import type { SessionRepository } from '../../shared/store/sessionRepository';
import type { SessionStore } from '../../shared/store/sessionStore';
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
  store: SessionStore,
  repo: SessionRepository,
  persister: SnapshotPersister,
  config: Pick<Config, 'ABANDON_AFTER_SECONDS' | 'PERSIST_DELAY_SECONDS' | 'SWEEP_BATCH_SIZE'>,
  log: Logger,
) {
  const writeClosed = (attempt: { id: string }) => persister.persist(attempt.id);
  // each step runs even when another fails (PostgreSQL down must not stop the TTL refresh)
  const step = async <T>(name: string, run: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      log.warn(`sweep step ${name} failed: ${String(err)}`);
      return fallback;
    }
  };
  return async (): Promise<SweepReport> => {
    const now = service.clock();
    const batch = config.SWEEP_BATCH_SIZE;
    // dirty past the window plus a grace period: its persist job was lost or is failing
    const stragglersBefore = now - (config.PERSIST_DELAY_SECONDS + 5) * 1000;

    // first, and needing only Redis: keep every straggler's key alive until PostgreSQL has it
    await step('refresh ttl', () => store.touchDirty(stragglersBefore, 1000), 0);

    const expired = await step('expire', async () => {
      const overdue = await repo.findOverdue(now, batch);
      return (await Promise.all(overdue.map((id) => service.close(id, { by: 'deadline' }, writeClosed)))).filter(Boolean).length;
    }, 0);

    const idleMs = config.ABANDON_AFTER_SECONDS * 1000;
    const abandoned = await step('abandon', async () => {
      const idle = await repo.findIdle(now - idleMs, batch);
      return (await Promise.all(idle.map((id) => service.close(id, { by: 'idle', idleMs }, writeClosed)))).filter(Boolean).length;
    }, 0);

    const persisted = await step('persist stragglers', () => persister.flushDirty(stragglersBefore, now + 10_000, batch), 0);

    const report = { expired, abandoned, persisted };
    if (report.expired || report.abandoned || report.persisted) {
      log.info(`sweep: expired ${report.expired}, abandoned ${report.abandoned}, persisted ${report.persisted}`);
    }
    return report;
  };
}
