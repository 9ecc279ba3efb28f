import type { z } from 'zod';
import { ValidationError } from '../shared/errors';

/** camelCase spellings some clients of the earlier Node service send, mapped to the seed's snake_case. */
const ALIASES: Record<string, string> = {
  userId: 'user_id',
  quizId: 'quiz_id',
  timeLimitSeconds: 'time_limit_seconds',
  questionId: 'question_id',
  currentQuestion: 'current_question',
  expectedVersion: 'version',
};

/** The body with camelCase aliases renamed; a field given both ways with different values is refused. */
export function withSeedNames(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const source = body as Record<string, unknown>;
  let out: Record<string, unknown> | null = null;
  for (const alias of Object.keys(ALIASES)) {
    if (!Object.prototype.hasOwnProperty.call(source, alias)) continue;
    const name = ALIASES[alias];
    out ??= { ...source };
    // equal scalars are fine; anything else given twice is ambiguous (and comparing deep values
    // would let a hostile body exhaust the stack)
    const both = Object.prototype.hasOwnProperty.call(source, name);
    if (both && (typeof source[name] === 'object' || source[name] !== source[alias])) {
      throw new ValidationError(`${name}: given twice (as ${name} and ${alias}) with different values`, name);
    }
    out[name] = source[alias];
    delete out[alias];
  }
  return out ?? body;
}

/** The camelCase alias of a snake_case field, if it has one. */
export function aliasOf(field: string): string | undefined {
  return Object.keys(ALIASES).find((alias) => ALIASES[alias] === field);
}

/** The camelCase aliases of these snake_case fields. */
export function aliasesOf(fields: readonly string[]): string[] {
  return Object.keys(ALIASES).filter((alias) => fields.includes(ALIASES[alias]));
}

/** Levenshtein distance, or `max + 1` when the lengths alone differ by more than `max`. */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, '');

/**
 * The 400 for a field the request may not carry: named, with the fields it may (and the nearest
 * one, when the name looks like a typo of it: `versoin` -> `version`).
 */
export function unknownField(key: string, accepted: readonly string[]): ValidationError {
  const names = [...accepted, ...aliasesOf(accepted)];
  const near = names
    .map((name) => ({ name, d: squash(name) === squash(key) ? 0 : distance(key.toLowerCase(), name.toLowerCase(), 2) }))
    .filter((c) => c.d <= 2)
    .sort((x, y) => x.d - y.d)[0];
  const hint = near ? ` (did you mean ${near.name}?)` : '';
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  const takes = accepted.length ? `; this request takes ${accepted.join(', ')}` : '';
  return new ValidationError(`${shown}: unknown field${hint}${takes}`, shown);
}

/** Refuses (400) the first key of `body` that is not one of `accepted` (aliases already renamed). */
export function refuseUnknownFields(body: Record<string, unknown>, accepted: ReadonlySet<string>): void {
  for (const key of Object.keys(body)) if (!accepted.has(key)) throw unknownField(key, [...accepted]);
}

/** Parses input with a schema; a failure is a 400 whose message names the field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'path' | 'query' = 'body'): z.output<S> {
  const result = schema.safeParse(where === 'body' ? withSeedNames(input) : input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    // the top level's fields are listed; a nested object's are in the OpenAPI document
    const prefix = issue.path.map(String).join('.');
    const shape = prefix ? {} : ((schema as unknown as { shape?: Record<string, unknown> }).shape ?? {});
    throw unknownField(prefix ? `${prefix}.${issue.keys[0]}` : issue.keys[0], Object.keys(shape));
  }
  const field = issue.path.map(String).join('.') || where;
  const message = issue.message.startsWith(field) ? issue.message : `${field}: ${issue.message}`;
  throw new ValidationError(message, field);
}
