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

/** Parses input with a schema; a failure is a 400 whose message names the field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'path' | 'query' = 'body'): z.output<S> {
  const result = schema.safeParse(where === 'body' ? withSeedNames(input) : input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.map(String).join('.') || where;
  const message = issue.message.startsWith(field) ? issue.message : `${field}: ${issue.message}`;
  throw new ValidationError(message, field);
}
