/*
 * The version: every accepted change adds one, a new attempt starts at FIRST_VERSION, and a write
 * that names a version applies only at that version (else 409, never a silent overwrite). The
 * durable copy only ever moves forward: a snapshot replaces a row only when it is newer.
 */

/** The version of a new attempt. */
export const FIRST_VERSION = 1;
/** The highest version (PostgreSQL integer); also the highest a client may send. */
export const MAX_VERSION = 2_147_483_647;

/** True when a write expecting `expected` (undefined: any) may apply to an attempt at `current`. */
export function versionMatches(expected: number | undefined, current: number): boolean {
  return expected === undefined || expected === current;
}

/** The version after one more change. */
export const nextVersion = (current: number): number => current + 1;

/** versionMatches and nextVersion in Lua; `expected` is the script argument ('' for any). */
export const VERSION_LUA = `
local function version_matches(expected, v)
  return expected == '' or tonumber(expected) == v
end
local function next_version(v)
  return v + 1
end
`;

/** The upsert's guard: the snapshot being written (`excluded`) is newer than the row in `table`. */
export const newerSnapshotSql = (table: string): string => `${table}.version < excluded.version`;

/** The table's check constraint. */
export const VERSION_CHECK_SQL = `version >= ${FIRST_VERSION}`;
