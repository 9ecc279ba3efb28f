import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { ERROR_RESPONSES, startConflictResponse } from '../../src/api/schemas/responses';
import { maskClientText } from './clientText';
import type { AttemptJson } from './harness';
import type { TestResponse } from './http';

/*
 * The one response asserter of the tests: the error contract (expectError, expectErrorContract and
 * their VALIDATION_ERROR forms) and the attempt's shape (expectAttemptShape).
 */

/** A UUID v4, as the service issues attempt ids. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** An ISO 8601 UTC timestamp as JSON renders a Date. */
export const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Any error body the API's schemas describe (src/api/schemas/responses.ts). */
type AnyErrorBody = z.output<(typeof ERROR_RESPONSES)[keyof typeof ERROR_RESPONSES] | typeof startConflictResponse>;

/**
 * An error body as the asserters return it: the fields every error schema has (typed from the
 * schemas), the attempt a 409 or 410 carries, and whatever else a status's schema adds.
 */
export type ErrorBody = Record<string, unknown> &
  Pick<AnyErrorBody, 'error' | 'errorCode' | 'message' | 'statusCode' | 'requestId' | 'retryable'> & { session?: AttemptJson };

/** The error codes a zod error schema allows (its errorCode: a literal or an enum, per branch of a union). */
function codesOf(schema: z.ZodType): string[] {
  type Branch = { properties: { errorCode: { const?: string; enum?: string[] } } };
  const json = z.toJSONSchema(schema, { io: 'input' }) as unknown as Branch & { oneOf?: Branch[] };
  return (json.oneOf ?? [json]).flatMap((b) =>
    b.properties.errorCode.const !== undefined ? [b.properties.errorCode.const] : b.properties.errorCode.enum!,
  );
}

/** The error codes the contract allows for each status: the schemas of src/api/schemas/responses.ts (a start's 409 too). */
export const ERROR_CODES_BY_STATUS: Readonly<Record<number, readonly string[]>> = Object.fromEntries(
  Object.entries(ERROR_RESPONSES).map(([status, schema]) => [
    Number(status),
    [...new Set([...codesOf(schema), ...(status === '409' ? codesOf(startConflictResponse) : [])])],
  ]),
);

/** A stack frame, a module path or an SQL statement: what an error body must never show. */
const INTERNALS = /\n\s+at |node_modules|\.ts:\d+|\.js:\d+|\binsert into\b|\bselect .* from\b|ReplyError/i;

/**
 * The message with the client's own input masked, when it looks internal at all: a message may
 * echo what the client sent (the question id it got wrong, the path it asked for), and a client's
 * SQL-looking key is not SQL the service wrote. Masking only what the client sent keeps the check
 * strict for every word the service writes itself.
 */
function messageWithoutEcho(res: TestResponse, message: string): string {
  return INTERNALS.test(message) && res.sent ? maskClientText(message, res.sent) : message;
}

/**
 * The fields every error body has: JSON, `{error, errorCode, message, statusCode, requestId}` with
 * statusCode equal to `status`, requestId equal to the x-request-id header, a message; `extra` are
 * more fields to match.
 */
function expectErrorFields(res: TestResponse, status: number, errorCode: unknown, extra: Record<string, unknown> = {}): ErrorBody {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.body).toEqual(
    expect.objectContaining({
      error: STATUS_CODES[status],
      errorCode,
      message: expect.any(String),
      statusCode: status,
      requestId: res.headers.get('x-request-id'),
      ...extra,
    }),
  );
  expect((res.body as ErrorBody).message.length).toBeGreaterThan(0);
  return res.body as ErrorBody;
}

/**
 * Asserts the seed-2 error contract: the status and `errorCode`, then the fields every error body
 * has (see expectErrorFields). Returns the body for further checks.
 */
export function expectError(res: TestResponse, status: number, errorCode: string): ErrorBody {
  expect({ status: res.status, errorCode: res.body?.errorCode }).toEqual({ status, errorCode });
  return expectErrorFields(res, status, errorCode);
}

/** Asserts a 400 VALIDATION_ERROR whose message names `field`. */
export function expectValidationError(res: TestResponse, field: string): ErrorBody {
  const body = expectError(res, 400, 'VALIDATION_ERROR');
  expect(body.message).toContain(field);
  return body;
}

/**
 * Asserts the whole error contract for `status` (and `errorCode` when given): the fields every
 * error body has, an x-request-id header, `retryable`, a code the status allows, nothing internal.
 * Throws with the response in the message when the status or the body is off, so a property
 * test's counterexample shows what came back.
 */
export function expectErrorContract(res: TestResponse, status: number, errorCode?: string): ErrorBody {
  const seen = `${res.status} ${JSON.stringify(res.body)?.slice(0, 500)}`;
  if (res.status !== status) throw new Error(`expected HTTP ${status}${errorCode ? ` ${errorCode}` : ''}, got ${seen}`);
  if (res.body === null || typeof res.body !== 'object') throw new Error(`error body is not JSON: ${seen}`);
  expect(res.headers.get('x-request-id')).toEqual(expect.any(String));
  const body = expectErrorFields(res, status, errorCode ?? expect.any(String), { retryable: expect.any(Boolean) });
  expect(ERROR_CODES_BY_STATUS[status]).toContain(body.errorCode);
  expect(messageWithoutEcho(res, body.message)).not.toMatch(INTERNALS);
  return body;
}

/**
 * Asserts a 400 VALIDATION_ERROR (the whole contract) whose message names one of `fields` (the
 * fields the input got wrong; several may be wrong at once and the service names the first it finds).
 */
export function expectValidationErrorNaming(res: TestResponse, fields: readonly string[]): ErrorBody {
  const body = expectErrorContract(res, 400, 'VALIDATION_ERROR');
  if (!fields.some((field) => body.message.includes(field))) {
    throw new Error(`400 message ${JSON.stringify(body.message)} names none of ${JSON.stringify(fields)}`);
  }
  return body;
}

/** The fields of the attempt JSON (checked against the schema's type: a field it lacks does not compile). */
const ATTEMPT_FIELDS = [
  'answers',
  'attempt_number',
  'completed_at',
  'current_question',
  'expires_at',
  'extra_time_seconds',
  'id',
  'last_updated',
  'paused_at',
  'quiz_id',
  'started_at',
  'status',
  'submitted_by',
  'time_limit_seconds',
  'time_remaining',
  'user_id',
  'version',
] as const satisfies ReadonlyArray<keyof AttemptJson>;

/** Asserts that `body` has exactly the attempt JSON's fields, each of the right type. */
export function expectAttemptShape(body: unknown): asserts body is AttemptJson {
  const timeOrNull = (v: unknown) => v === null || (typeof v === 'string' && ISO_TIME.test(v));
  expect(Object.keys(body as object).sort()).toEqual([...ATTEMPT_FIELDS].sort());
  const a = body as AttemptJson;
  expect(a.id).toMatch(UUID_V4);
  expect(a.started_at).toMatch(ISO_TIME);
  expect(a.last_updated).toMatch(ISO_TIME);
  expect(timeOrNull(a.expires_at)).toBe(true);
  expect(timeOrNull(a.completed_at)).toBe(true);
  expect(timeOrNull(a.paused_at)).toBe(true);
  // paused exactly when paused_at is set
  expect(a.paused_at !== null).toBe(a.status === 'paused');
  expect(Number.isInteger(a.extra_time_seconds) && a.extra_time_seconds >= 0).toBe(true);
  expect(Number.isInteger(a.version)).toBe(true);
  expect(Number.isInteger(a.current_question)).toBe(true);
  expect(Number.isInteger(a.attempt_number) && a.attempt_number >= 1).toBe(true);
  // submitted exactly when completed
  expect(a.submitted_by).toEqual(a.status === 'completed' ? expect.stringMatching(/^(student|timer)$/) : null);
}
