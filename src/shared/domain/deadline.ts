import type { SqlCondition } from './fragments';
import { isOpen, OPEN_SQL, type AttemptStatus } from './status';

/*
 * The deadline: an open attempt whose deadline has passed is expired, whoever looks first and
 * whether or not its expiry job has run. The deadline is when it expires (not a second later), and
 * its time remaining counts down to it and stops when the attempt closes.
 */

/** What the deadline rule reads of an attempt. */
export interface DeadlineFields {
  status: AttemptStatus;
  /** Epoch ms; null when untimed. */
  expiresAt: number | null;
}

/** The deadline of an attempt started at `startedAt` with this limit; a limit of 0 is untimed. */
export function deadlineOf(startedAt: number, timeLimitSeconds: number): number | null {
  return timeLimitSeconds === 0 ? null : startedAt + timeLimitSeconds * 1000;
}

/** True when an open attempt's deadline has passed at `now`. */
export function isPastDeadline(a: DeadlineFields, now: number): boolean {
  return isOpen(a.status) && a.expiresAt !== null && now >= a.expiresAt;
}

/** Whole seconds left at `now` (frozen when the attempt closed); null when untimed. */
export function timeRemaining(a: DeadlineFields & { endedAt: number | null }, now: number): number | null {
  if (a.expiresAt === null) return null;
  const at = isOpen(a.status) ? now : (a.endedAt ?? now);
  return Math.max(0, Math.ceil((a.expiresAt - at) / 1000));
}

/** The attempt as it is at `now`: past its deadline, it is expired, and it ended at the deadline. */
export function presentAt<A extends DeadlineFields & { endedAt: number | null }>(a: A, now: number): A {
  if (!isPastDeadline(a, now)) return a;
  return { ...a, status: 'expired', endedAt: a.expiresAt };
}

/** isPastDeadline in Lua; `expires_at` is the hash field's text ('' when untimed). */
export const DEADLINE_LUA = `
local function past_deadline(status, expires_at, now)
  return is_open(status) and expires_at ~= '' and now >= tonumber(expires_at)
end
`;

/** isPastDeadline in SQL (a null expires_at is never past). */
export function pastDeadlineSql(now: number): SqlCondition {
  return { sql: `${OPEN_SQL} and expires_at <= ?`, bindings: [new Date(now)] };
}
