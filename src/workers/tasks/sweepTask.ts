import type { Config } from '../../shared/config';
import type { Logger } from '../../shared/logger';
import { stragglersBefore } from '../../shared/domain/writeBehind';
import type { CloseReason, SessionService } from '../../shared/sessionService';
import type { SessionRepository } from '../../shared/store/sessionRepository';
import type { SessionStore } from '../../shared/store/sessionStore';
import type { SnapshotPersister } from '../persister';
import { closeAndPersist } from './closeAndPersist';
import type { DeadlineIndex } from '../../shared/queues/deadlines';
import { expireDue, movedCount } from './expireWindowTask';

/** How many dirty attempts' TTLs one Redis round trip refreshes. */
const TTL_REFRESH_PAGE = 1000;
/** How long one sweep may spend persisting stragglers (the next sweep goes on where it stopped). */
const STRAGGLER_FLUSH_BUDGET_MS = 10_000;
/**
 * A deadline index entry due this long ago is one whose tick job was lost or keeps failing (a
 * tick's job runs within EXPIRY_TICK_MS of its entries): the sweep handles it, so the index does
 * not keep entries no job will come for.
 */
export const STALE_DEADLINE_MS = 5_000;

/** What one sweep did. */
export interface SweepReport {
  expired: number;
  abandoned: number;
  persisted: number;
}

/**
 * The safety net for lost or late jobs: expires open attempts past their deadline (and handles the
 * deadline index's entries no tick job came for), abandons open
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
  deadlines: DeadlineIndex,
) {
  /** Closes each attempt; returns how many this sweep closed. */
  const closeAll = async (ids: readonly string[], reason: CloseReason): Promise<number> =>
    (await Promise.all(ids.map((id) => closeAndPersist(service, persister, id, reason)))).filter((r) => r.outcome === 'closed').length;
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
    const stragglers = stragglersBefore(now, config.PERSIST_DELAY_SECONDS);

    // first, and needing only Redis: keep every straggler's key alive until PostgreSQL has it
    await step('refresh ttl', () => store.touchDirty(stragglers, TTL_REFRESH_PAGE), 0);

    const expired =
      (await step('expire', async () => closeAll(await repo.findOverdue(now, batch), { by: 'deadline' }), 0)) +
      (await step(
        'stale deadline entries',
        async () => {
          let moved = 0;
          for (let shard = 0; shard < deadlines.shardCount; shard++) {
            moved += movedCount(await expireDue(service, persister, deadlines, shard, now - STALE_DEADLINE_MS));
          }
          return moved;
        },
        0,
      ));

    const idleMs = config.ABANDON_AFTER_SECONDS * 1000;
    const abandoned = await step('abandon', async () => closeAll(await repo.findIdle(now, idleMs, batch), { by: 'idle', idleMs }), 0);

    const persisted = await step('persist stragglers', () => persister.flushDirty(stragglers, now + STRAGGLER_FLUSH_BUDGET_MS, batch), 0);

    const report = { expired, abandoned, persisted };
    if (report.expired || report.abandoned || report.persisted) {
      log.info(`sweep: expired ${report.expired}, abandoned ${report.abandoned}, persisted ${report.persisted}`);
    }
    return report;
  };
}
