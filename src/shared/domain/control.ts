/*
 * The live controls a proctor (or a service) applies to a running exam: extend, pause and resume.
 * The one home of how they move the clock; the control script (lua/control-2.lua) runs them in
 * Lua, and the routes and the service take their limits from here.
 *
 * - extend: the deadline moves later by `seconds`, from the current deadline or from now (for a
 *   paused attempt, "now" is the instant it was paused). It never moves earlier. An expired
 *   attempt comes back (in progress, answers kept) only when asked to reopen; an overdue one comes
 *   back whenever its new deadline is ahead.
 * - pause: the clock stops; the time remaining is frozen at the pause.
 * - resume: the status before the pause returns, with the deadline now + the time remaining at the
 *   pause. Activity restarts too (a pause is not idleness).
 */

/** The most one extension may add (a week). */
export const MAX_EXTENSION_SECONDS = 604_800;

/** Where an extension counts from. */
export const EXTEND_FROM = ['deadline', 'now'] as const;
/** One of EXTEND_FROM. */
export type ExtendFrom = (typeof EXTEND_FROM)[number];

/** A live control. */
export type Control = { action: 'extend'; seconds: number; from: ExtendFrom; reopen: boolean } | { action: 'pause' } | { action: 'resume' };

/** The deadline after extending by `seconds` from `from` at `now`; never earlier than `expiresAt`. */
export function extendedDeadline(expiresAt: number, seconds: number, from: ExtendFrom, now: number, pausedAt: number | null): number {
  const base = from === 'now' ? (pausedAt ?? now) : expiresAt;
  return Math.max(expiresAt, base + seconds * 1000);
}

/** Whole seconds an extension granted (what the attempt's extra_time_seconds adds up). */
export const grantedSeconds = (before: number, after: number): number => Math.round((after - before) / 1000);

/** The deadline when a paused attempt resumes at `now`: the time remaining at the pause, from now. */
export const resumedDeadline = (expiresAt: number, pausedAt: number, now: number): number => now + (expiresAt - pausedAt);

/** The same rules in Lua (times are numbers of ms; paused_at is the hash field's text). */
export const CONTROL_LUA = `
local function extended_deadline(expires_at, seconds, from, now, paused_at)
  local base = expires_at
  if from == 'now' then
    base = now
    if paused_at ~= '' then base = tonumber(paused_at) end
  end
  return math.max(expires_at, base + seconds * 1000)
end
local function granted_seconds(before, after)
  return math.floor((after - before) / 1000 + 0.5)
end
local function resumed_deadline(expires_at, paused_at, now)
  return now + (expires_at - paused_at)
end
`;
