import type { SqlCondition } from './fragments';
import { isRunning, RUNNING_SQL, type AttemptStatus } from './status';

/*
 * The idle rule: a running attempt with no activity for ABANDON_AFTER_SECONDS is abandoned by the
 * sweep. Activity is any accepted write (its `lastUpdated`; a resume counts); reads do not count. A
 * paused or overdue attempt is never idle: a proctor or the grace period decides its end.
 */

/** What the idle rule reads of an attempt. */
export interface IdleFields {
  status: AttemptStatus;
  /** Epoch ms of the last accepted write. */
  lastUpdated: number;
}

/** True when a running attempt has had no activity for at least `idleMs` at `now`. */
export function isIdle(a: IdleFields, now: number, idleMs: number): boolean {
  return isRunning(a.status) && now - a.lastUpdated >= idleMs;
}

/** isIdle in Lua; `last_updated` is the hash field's text. */
export const IDLE_LUA = `
local function is_idle(status, last_updated, now, idle_ms)
  return is_running(status) and now - tonumber(last_updated) >= idle_ms
end
`;

/** isIdle in SQL. */
export function idleSql(now: number, idleMs: number): SqlCondition {
  return { sql: `${RUNNING_SQL} and last_updated <= ?`, bindings: [new Date(now - idleMs)] };
}
