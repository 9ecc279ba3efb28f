import type { CloseReason, CloseResult, SessionService } from '../../shared/sessionService';
import type { SnapshotPersister } from '../persister';

/**
 * Closes an attempt for a worker and makes sure PostgreSQL gets the new state (through the
 * batching persister, version-guarded, so a repeat writes nothing). Says what the close did.
 */
export async function closeAndPersist(
  service: SessionService,
  persister: SnapshotPersister,
  id: string,
  reason: CloseReason,
): Promise<CloseResult> {
  const result = await service.close(id, reason);
  if (result.outcome !== 'unchanged' && !result.durable) await persister.persist(id);
  return result;
}
