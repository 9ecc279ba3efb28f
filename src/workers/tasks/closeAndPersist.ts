import type { CloseReason, SessionService } from '../../shared/sessionService';
import type { SnapshotPersister } from '../persister';

/**
 * Closes an attempt for a worker and makes sure PostgreSQL gets the closed state (through the
 * batching persister, version-guarded, so a repeat writes nothing). True when this call closed it.
 */
export async function closeAndPersist(
  service: SessionService,
  persister: SnapshotPersister,
  id: string,
  reason: CloseReason,
): Promise<boolean> {
  const result = await service.close(id, reason);
  if (result.outcome !== 'unchanged' && !result.durable) await persister.persist(id);
  return result.outcome === 'closed';
}
