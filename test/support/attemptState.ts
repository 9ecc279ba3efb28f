import { type AttemptJson } from './harness';
import { request } from './http';

/** The part of an attempt a rejected request must leave exactly as it was. */
export interface HeldState {
  id: string;
  status: AttemptJson['status'];
  version: number;
  current_question: number;
  answers: Record<string, unknown>;
}

/** The held state of an attempt as the API rendered it. */
export function heldState(a: AttemptJson): HeldState {
  return { id: a.id, status: a.status, version: a.version, current_question: a.current_question, answers: a.answers };
}

/** The attempt as GET serves it now (an abandoned or expired one comes inside its 410). */
export async function readHeldState(baseUrl: string, id: string): Promise<HeldState> {
  const res = await request(baseUrl, 'GET', `/api/sessions/${id}`);
  if (res.status === 200) return heldState(res.body);
  if (res.status === 410 && res.body?.session) return heldState(res.body.session);
  throw new Error(`GET /api/sessions/${id}: ${res.status} ${JSON.stringify(res.body)}`);
}
