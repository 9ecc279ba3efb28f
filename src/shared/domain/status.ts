import { luaLiteral, sqlLiteral } from './fragments';

/*
 * The attempt's states and the moves between them: the one home of "running", "open" and "closed".
 *
 *   started ──progress──► in_progress ──progress──► in_progress
 *      │  ▲                    │  ▲
 *      │  └─resume── paused ◄─pause (a proctor: the clock stops; no writes, no worker closes it)
 *      │                       │
 *      └──────────┬────────────┘
 *                 ├── complete (the student) ──► completed
 *                 ├── abandon (the student, or idle: idle.ts) ──► abandoned
 *                 └── the deadline passes (deadline.ts), by the quiz's overdue handling:
 *                       expire ──► expired          autosubmit ──► completed (by the timer)
 *                       autoabandon ──► abandoned   graceperiod ──► overdue ──(grace ends)──► expired
 *                                                                     └── complete ──► completed
 *
 * A running attempt takes progress and its clock runs. An open one (running, paused or overdue) is
 * the user's current attempt at the quiz: a start resumes it. A closed one changes again only when
 * a proctor reopens an expired attempt with more time (control.ts).
 */

/** Statuses in which an attempt takes progress and its clock runs. */
export const RUNNING_STATUSES = ['started', 'in_progress'] as const;
/** A proctor paused it: the clock is stopped, and nothing but resume moves it. */
export const PAUSED_STATUS = 'paused';
/** Past its deadline, in the quiz's grace period: readable and completable, no more progress. */
export const OVERDUE_STATUS = 'overdue';
/** Statuses of the user's current attempt at a quiz (at most one: the database's unique index). */
export const OPEN_STATUSES = [...RUNNING_STATUSES, PAUSED_STATUS, OVERDUE_STATUS] as const;
/** Statuses an attempt does not leave on its own. */
export const CLOSED_STATUSES = ['completed', 'expired', 'abandoned'] as const;
/** Every status. */
export const ATTEMPT_STATUSES = [...OPEN_STATUSES, ...CLOSED_STATUSES] as const;

/** Where an attempt is in its life. */
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];
/** A status that takes progress. */
export type RunningStatus = (typeof RUNNING_STATUSES)[number];
/** A status of the user's current attempt. */
export type OpenStatus = (typeof OPEN_STATUSES)[number];
/** A closed status. */
export type ClosedStatus = (typeof CLOSED_STATUSES)[number];

/** The status a new attempt starts in. */
export const INITIAL_STATUS: RunningStatus = 'started';
/** The status an accepted progress write (or a reopen) leaves an attempt in. */
export const PROGRESS_STATUS: RunningStatus = 'in_progress';

/** True while the attempt takes progress and its clock runs (its deadline aside: see deadline.ts). */
export function isRunning(status: AttemptStatus): status is RunningStatus {
  return (RUNNING_STATUSES as readonly string[]).includes(status);
}

/** True while the attempt is the user's current one at the quiz (running, paused or overdue). */
export function isOpen(status: AttemptStatus): status is OpenStatus {
  return (OPEN_STATUSES as readonly string[]).includes(status);
}

const luaSet = (statuses: readonly string[]): string => `{${statuses.map((s) => `[${luaLiteral(s)}] = true`).join(', ')}}`;

// the /* @__PURE__ */ marks let the browser bundle (src/client uses isRunning) drop the Lua and SQL texts

/** The statuses in Lua, for the scripts. */
export const STATUS_LUA = /* @__PURE__ */ (() => `
local RUNNING_STATUSES = ${luaSet(RUNNING_STATUSES)}
local OPEN_STATUSES = ${luaSet(OPEN_STATUSES)}
local INITIAL_STATUS = ${luaLiteral(INITIAL_STATUS)}
local PROGRESS_STATUS = ${luaLiteral(PROGRESS_STATUS)}
local PAUSED_STATUS = ${luaLiteral(PAUSED_STATUS)}
local OVERDUE_STATUS = ${luaLiteral(OVERDUE_STATUS)}
local function is_running(status)
  return RUNNING_STATUSES[status] == true
end
local function is_open(status)
  return OPEN_STATUSES[status] == true
end
`)();

/** `status in (...)` over these statuses. */
export const statusInSql = (statuses: readonly string[]): string => `status in (${statuses.map(sqlLiteral).join(', ')})`;

/** isOpen in SQL: the user's current attempt (the one-open-attempt unique index uses it). */
export const OPEN_SQL = /* @__PURE__ */ statusInSql(OPEN_STATUSES);

/** isRunning in SQL. */
export const RUNNING_SQL = /* @__PURE__ */ statusInSql(RUNNING_STATUSES);

/** Every status in SQL, for the table's check constraint. */
export const STATUS_CHECK_SQL = /* @__PURE__ */ statusInSql(ATTEMPT_STATUSES);
