import { luaLiteral, sqlLiteral } from './fragments';

/*
 * The attempt's states and the moves between them: the one home of "open" and "closed".
 *
 *   started ──progress──► in_progress ──progress──► in_progress
 *      │                       │
 *      └──────────┬────────────┘
 *                 ├── complete (the student) ──► completed
 *                 ├── abandon (the student, or idle: idle.ts) ──► abandoned
 *                 └── the deadline passes (deadline.ts) ──► expired
 *
 * An open attempt takes progress; a closed one never changes again.
 */

/** Statuses in which an attempt still takes progress. */
export const OPEN_STATUSES = ['started', 'in_progress'] as const;
/** Statuses an attempt never leaves. */
export const CLOSED_STATUSES = ['completed', 'expired', 'abandoned'] as const;
/** Every status. */
export const ATTEMPT_STATUSES = [...OPEN_STATUSES, ...CLOSED_STATUSES] as const;

/** Where an attempt is in its life. */
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];
/** A status that takes progress. */
export type OpenStatus = (typeof OPEN_STATUSES)[number];
/** A status an attempt never leaves. */
export type ClosedStatus = (typeof CLOSED_STATUSES)[number];

/** The status a new attempt starts in. */
export const INITIAL_STATUS: OpenStatus = 'started';
/** The status an accepted progress write leaves an open attempt in. */
export const PROGRESS_STATUS: OpenStatus = 'in_progress';

/** True while the attempt takes progress (its deadline aside: see deadline.ts). */
export function isOpen(status: AttemptStatus): status is OpenStatus {
  return (OPEN_STATUSES as readonly string[]).includes(status);
}

/** True when the move is allowed: from an open status to the progress status or to any closed one. */
export function canMove(from: AttemptStatus, to: AttemptStatus): boolean {
  return isOpen(from) && (to === PROGRESS_STATUS || !isOpen(to));
}

/** isOpen in Lua, for the scripts. */
export const STATUS_LUA = `
local OPEN_STATUSES = {${OPEN_STATUSES.map((s) => `[${luaLiteral(s)}] = true`).join(', ')}}
local INITIAL_STATUS = ${luaLiteral(INITIAL_STATUS)}
local PROGRESS_STATUS = ${luaLiteral(PROGRESS_STATUS)}
local function is_open(status)
  return OPEN_STATUSES[status] == true
end
`;

/** isOpen in SQL: the rows of open attempts (the partial indexes of the migrations use it too). */
export const OPEN_SQL = `status in (${OPEN_STATUSES.map(sqlLiteral).join(', ')})`;

/** Every status in SQL, for the table's check constraint. */
export const STATUS_CHECK_SQL = `status in (${ATTEMPT_STATUSES.map(sqlLiteral).join(', ')})`;
