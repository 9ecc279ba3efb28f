import type { Attempt } from '../domain/attempt';
import type { SessionRepository } from './sessionRepository';
import type { SessionStore } from './sessionStore';

/** What PostgreSQL holds of one attempt after writeSnapshots: that snapshot, and whether this call wrote it. */
export interface HeldSnapshot {
  attempt: Attempt;
  wrote: boolean;
}

/**
 * Writes attempt snapshots to PostgreSQL and returns, per attempt written or already there, the
 * version PostgreSQL now holds. The upsert is version-guarded (version.ts), so a replayed or
 * reordered snapshot changes nothing. One case needs more: Redis came back from an older state (a
 * host crash with AOF everysec loses up to a second) and handed out again versions PostgreSQL
 * already holds with other content. Then the row looks newer while the Redis copy is the one
 * students now work on: the Redis copy is moved above the row's version and written, so nothing
 * acknowledged after the restart is refused.
 */
export async function writeSnapshots(
  store: Pick<SessionStore, 'rebase'>,
  repo: Pick<SessionRepository, 'upsertSnapshots' | 'versionsOf'>,
  attempts: readonly Attempt[],
  clock: () => number = Date.now,
): Promise<Map<string, HeldSnapshot>> {
  const held = new Map<string, HeldSnapshot>();
  const byId = new Map(attempts.map((a) => [a.id, a]));
  for (const id of await repo.upsertSnapshots(attempts)) held.set(id, { attempt: byId.get(id)!, wrote: true });
  const unwritten = attempts.filter((a) => !held.has(a.id));
  if (unwritten.length === 0) return held;

  const rows = await repo.versionsOf(unwritten);
  const rebased = new Map<string, Attempt>();
  for (const a of unwritten) {
    const row = rows.get(a.id);
    if (!row) continue;
    const diverged = row.version > a.version || (row.version === a.version && row.lastUpdated !== a.lastUpdated);
    if (!diverged) {
      held.set(a.id, { attempt: a, wrote: false }); // a replay: PostgreSQL already has this snapshot
      continue;
    }
    const moved = await store.rebase(a.id, a.version, row.version + 1, clock());
    if (moved) rebased.set(a.id, moved.attempt);
  }
  for (const id of await repo.upsertSnapshots([...rebased.values()])) held.set(id, { attempt: rebased.get(id)!, wrote: true });
  return held;
}
