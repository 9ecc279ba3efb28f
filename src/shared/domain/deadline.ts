import type { SqlCondition } from './fragments';
import type { OverdueHandling } from './policy';
import { isRunning, OVERDUE_STATUS, PAUSED_STATUS, RUNNING_STATUSES, statusInSql, type AttemptStatus, type ClosedStatus } from './status';

/*
 * The deadline: a running attempt whose deadline has passed moves on by its quiz's overdue handling,
 * whoever looks first and whether or not its expiry job has run. The deadline is when it moves (not
 * a second later); its time remaining counts down to it, is frozen while the attempt is paused, and
 * stops when the attempt closes.
 *
 *   expire       expired at the deadline (the default)
 *   autosubmit   completed at the deadline, submitted by the timer, with the answers saved before it
 *   autoabandon  abandoned at the deadline
 *   graceperiod  overdue until deadline + grace (readable, completable, no progress), then expired
 *                at the end of the grace
 */

/** What the deadline rule reads of an attempt. */
export interface DeadlineFields {
  status: AttemptStatus;
  /** Epoch ms; null when untimed. */
  expiresAt: number | null;
  overdueHandling: OverdueHandling;
  /** With graceperiod: how long an overdue attempt may still be completed. */
  gracePeriodSeconds: number | null;
}

/** What the deadline does to an attempt: its new status and when it ended (null: still open). */
export interface DueChange {
  status: ClosedStatus | typeof OVERDUE_STATUS;
  endedAt: number | null;
  /** autosubmit: completed at the deadline, by the timer. */
  submitted: boolean;
}

/** Statuses the deadline moves: running ones, and overdue ones at the end of the grace. */
export const DEADLINE_STATUSES = [...RUNNING_STATUSES, OVERDUE_STATUS] as const;

/** The deadline of an attempt started at `startedAt` with this limit; a limit of 0 is untimed. */
export function deadlineOf(startedAt: number, timeLimitSeconds: number): number | null {
  return timeLimitSeconds === 0 ? null : startedAt + timeLimitSeconds * 1000;
}

const graceMs = (a: Pick<DeadlineFields, 'overdueHandling' | 'gracePeriodSeconds'>): number =>
  a.overdueHandling === 'graceperiod' ? (a.gracePeriodSeconds ?? 0) * 1000 : 0;

/** When the deadline next moves the attempt: a running one at its deadline, an overdue one when its grace ends; else null. */
export function dueAt(a: DeadlineFields): number | null {
  if (a.expiresAt === null) return null;
  if (isRunning(a.status)) return a.expiresAt;
  if (a.status === OVERDUE_STATUS) return a.expiresAt + graceMs(a);
  return null;
}

/**
 * Expiry runs by tick: every attempt due within one EXPIRY_TICK_MS of the clock shares one job per
 * queue shard (queues/deadlines.ts), run at the tick's end, so an attempt is closed at most this
 * late (plus the job's own time).
 */
export const EXPIRY_TICK_MS = 250;

/** The end of the expiry tick an attempt due at `at` belongs to: when its shard's job runs. */
export const expiryTick = (at: number): number => Math.ceil(at / EXPIRY_TICK_MS) * EXPIRY_TICK_MS;

/** What the deadline does to the attempt at `now`, or null when nothing (yet). */
export function dueChange(a: DeadlineFields, now: number): DueChange | null {
  const at = dueAt(a);
  if (at === null || now < at) return null;
  const deadline = a.expiresAt as number;
  const graceEnd = deadline + graceMs(a);
  if (a.status === OVERDUE_STATUS || (a.overdueHandling === 'graceperiod' && now >= graceEnd)) {
    return { status: 'expired', endedAt: graceEnd, submitted: false };
  }
  switch (a.overdueHandling) {
    case 'autosubmit':
      return { status: 'completed', endedAt: deadline, submitted: true };
    case 'autoabandon':
      return { status: 'abandoned', endedAt: deadline, submitted: false };
    case 'graceperiod':
      return { status: OVERDUE_STATUS, endedAt: null, submitted: false };
    default:
      return { status: 'expired', endedAt: deadline, submitted: false };
  }
}

/** True when the deadline moves the attempt at `now`. */
export const isPastDeadline = (a: DeadlineFields, now: number): boolean => dueChange(a, now) !== null;

/** Whole seconds left at `now` (frozen while paused, 0 when overdue, frozen at the end when closed); null when untimed. */
export function timeRemaining(a: DeadlineFields & { endedAt: number | null; pausedAt: number | null }, now: number): number | null {
  if (a.expiresAt === null) return null;
  let at = now;
  if (a.status === PAUSED_STATUS) at = a.pausedAt ?? now;
  else if (!isRunning(a.status) && a.status !== OVERDUE_STATUS) at = a.endedAt ?? now;
  return Math.max(0, Math.ceil((a.expiresAt - at) / 1000));
}

/** What presentAt rewrites. */
interface Presentable extends DeadlineFields {
  endedAt: number | null;
  completedAt: number | null;
  submittedBy: 'student' | 'timer' | null;
}

/** The attempt as it is at `now`: the deadline's change applied, if it is due (the scripts write it on the next write). */
export function presentAt<A extends Presentable>(a: A, now: number): A {
  const change = dueChange(a, now);
  if (!change) return a;
  return {
    ...a,
    status: change.status,
    endedAt: change.endedAt,
    completedAt: change.submitted ? change.endedAt : a.completedAt,
    submittedBy: change.submitted ? 'timer' : a.submittedBy,
  };
}

/**
 * dueChange in Lua, over the hash fields' text ('' for null). Returns the new status and the
 * ended_at text ('' when still open) and whether the timer submitted it; nil when nothing is due.
 */
export const DEADLINE_LUA = `
local function due_change(status, expires_at, handling, grace_seconds, now)
  if expires_at == '' then return nil end
  local deadline = tonumber(expires_at)
  local grace = 0
  if handling == 'graceperiod' and grace_seconds ~= '' then grace = tonumber(grace_seconds) * 1000 end
  local grace_end = deadline + grace
  if status == OVERDUE_STATUS then
    if now >= grace_end then return 'expired', tostring(grace_end), false end
    return nil
  end
  if not is_running(status) or now < deadline then return nil end
  if handling == 'graceperiod' then
    if now >= grace_end then return 'expired', tostring(grace_end), false end
    return OVERDUE_STATUS, '', false
  end
  if handling == 'autosubmit' then return 'completed', expires_at, true end
  if handling == 'autoabandon' then return 'abandoned', expires_at, false end
  return 'expired', expires_at, false
end
`;

/**
 * isPastDeadline in SQL: running attempts past their deadline, overdue ones past the end of their
 * grace (a null expires_at is never past). The sweep's deadline index covers DEADLINE_STATUSES.
 */
export function pastDeadlineSql(now: number): SqlCondition {
  const at = new Date(now);
  return {
    sql:
      `${statusInSql(DEADLINE_STATUSES)} and expires_at <= ? and (status <> '${OVERDUE_STATUS}' or ` +
      `expires_at + coalesce(grace_period_seconds, 0) * interval '1 second' <= ?)`,
    bindings: [at, at],
  };
}
