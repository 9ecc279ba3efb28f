import { STATUS_CODES } from 'node:http';
import { type AttemptJson } from './harness';
import { type TestResponse } from './http';

/** A UUID v4, as the service issues attempt ids. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** An ISO 8601 UTC timestamp as JSON renders a Date. */
export const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Asserts the seed-2 error contract: the status, `{error, errorCode, message, statusCode, requestId}`
 * with requestId equal to the x-request-id header. Returns the body for further checks.
 */
export function expectError(res: TestResponse, status: number, errorCode: string): Record<string, unknown> & { session?: AttemptJson } {
  expect({ status: res.status, errorCode: res.body?.errorCode }).toEqual({ status, errorCode });
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.body).toEqual(
    expect.objectContaining({
      error: STATUS_CODES[status],
      errorCode,
      message: expect.any(String),
      statusCode: status,
      requestId: res.headers.get('x-request-id'),
    }),
  );
  expect(res.body.message.length).toBeGreaterThan(0);
  return res.body;
}

/** Asserts a 400 VALIDATION_ERROR whose message names `field`. */
export function expectValidationError(res: TestResponse, field: string): Record<string, unknown> {
  const body = expectError(res, 400, 'VALIDATION_ERROR');
  expect(body.message).toContain(field);
  return body;
}

/** Asserts that `body` has exactly the attempt JSON's fields, each of the right type. */
export function expectAttemptShape(body: unknown): asserts body is AttemptJson {
  const timeOrNull = (v: unknown) => v === null || (typeof v === 'string' && ISO_TIME.test(v));
  expect(Object.keys(body as object).sort()).toEqual(
    [
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
    ].sort(),
  );
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
