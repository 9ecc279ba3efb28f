/*
 * How a domain rule hands itself to the stores. Each rule module (status, deadline, idle, version,
 * writeBehind) defines its rule once in TypeScript and, beside it, the same rule as a Lua function
 * (pulled into every script by src/shared/store/lua/rules.ts) and as an SQL condition (used by
 * src/shared/store/sessionRepository.ts and the migrations). test/rules.agree.test.ts runs all
 * three over random attempts and clocks.
 */

/** An SQL condition over a `quiz_sessions` row, with `?` placeholders and their bindings. */
export interface SqlCondition {
  sql: string;
  bindings: ReadonlyArray<string | number | Date>;
}

/** An SQL string literal of a constant the code defines (never of input): `'a'`, quotes doubled. */
export function sqlLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A Lua string literal of a constant the code defines. */
export function luaLiteral(value: string): string {
  return JSON.stringify(value);
}
