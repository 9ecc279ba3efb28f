import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { ATTEMPT_STATUSES } from '../../shared/domain/status';
import type { ErrorCode } from '../../shared/errors';
import { EVENT_TYPES } from '../../shared/domain/events';

const timestamp = z.iso.datetime();

/** An attempt as every endpoint returns it (documentation and contract tests; the handlers serialise directly). */
export const attemptResponse = z.object({
  id: z.uuid({ version: 'v4' }),
  user_id: z.string(),
  quiz_id: z.union([z.string(), z.number().int()]),
  status: z.enum(ATTEMPT_STATUSES).meta({
    description:
      'started and in_progress take progress; paused (by a proctor: the clock is stopped, writes get 423) and overdue (past the deadline in the grace period: reads and complete only) are still open; completed, expired and abandoned are closed',
  }),
  current_question: z.number().int().min(0),
  version: z.number().int().min(1),
  time_limit_seconds: z.number().int().min(0).meta({ description: '0 means untimed' }),
  time_remaining: z
    .number()
    .int()
    .min(0)
    .nullable()
    .meta({ description: 'Seconds left, computed at response time (frozen while paused, 0 when overdue); null when untimed' }),
  started_at: timestamp,
  expires_at: timestamp.nullable(),
  last_updated: timestamp,
  completed_at: timestamp.nullable(),
  attempt_number: z.number().int().min(1).meta({ description: "Which of the user's attempts at the quiz this is, from 1" }),
  submitted_by: z
    .enum(['student', 'timer'])
    .nullable()
    .meta({ description: 'Who submitted it (complete: student; autosubmit: timer); null until then' }),
  paused_at: timestamp.nullable().meta({ description: 'When a proctor paused it; null unless paused' }),
  extra_time_seconds: z.number().int().min(0).meta({ description: 'Seconds granted live by extensions, in total' }),
  answers: z.record(z.string(), z.unknown()),
});

/*
 * The error contract (seed 2): every error body is `{error, errorCode, message, statusCode,
 * requestId, retryable}` and, where they apply, `retryAfterSeconds`, `sessionId`, `field`,
 * `session` and a code's own fields. Each status has a schema of its own (the OpenAPI document's
 * components), its codes taken from ERROR_CODES, so a generated client knows, say, that a 409 of an
 * attempt's routes always carries the attempt.
 */

/** The error codes of a schema: members of ERROR_CODES (src/shared/errors.ts), the one list. */
const codes = <const C extends readonly [ErrorCode, ...ErrorCode[]]>(...list: C) =>
  list.length === 1 ? z.literal(list[0] as C[0]) : z.enum(list as unknown as readonly [C[number], ...C[number][]]);

/** The fields every error body has, for `status` and its codes. */
function errorFields<C extends z.ZodType>(status: number, errorCode: C, retryable: 'yes' | 'no' | 'by code') {
  return {
    error: z.literal(STATUS_CODES[status] ?? 'Error').meta({ description: 'The HTTP reason phrase' }),
    errorCode,
    message: z.string().min(1).meta({ description: 'For people: clients branch on errorCode' }),
    statusCode: z.literal(status),
    requestId: z.string().meta({
      description: "The request's id (the x-request-id header); a replayed response (Idempotency-Key) keeps the first request's",
    }),
    retryable:
      retryable === 'by code'
        ? z.boolean().meta({ description: 'Whether the same request may succeed later (retryAfterSeconds says when)' })
        : z.literal(retryable === 'yes'),
  };
}

const retryAfterSeconds = z.number().int().min(1).meta({ description: 'Seconds to wait before a retry; also the retry-after header' });
const sessionId = z.uuid({ version: 'v4' }).meta({ description: 'The attempt the error is about' });
/** The attempt as it is now (its version is also the ETag header): the Attempt schema itself, so the document refers to it. */
const session = attemptResponse;

/** 400 */
export const validationErrorResponse = z.strictObject({
  ...errorFields(400, codes('VALIDATION_ERROR'), 'no'),
  field: z.string().meta({
    description:
      'The field, header or part the request got wrong: a body field (`version`, `answers.q1`), `body`, `id`, `If-Match`, `Idempotency-Key`, `Last-Event-ID`, `cursor`, a query parameter',
  }),
});

/** 401 (with a www-authenticate header) */
export const unauthorizedResponse = z.strictObject({ ...errorFields(401, codes('UNAUTHORIZED'), 'no') });

/** 403: the role or the subject may not (FORBIDDEN), or a start outside the quiz's window (QUIZ_NOT_OPEN). */
export const forbiddenResponse = z.discriminatedUnion('errorCode', [
  z.strictObject({ ...errorFields(403, codes('FORBIDDEN'), 'no') }),
  z.strictObject({
    ...errorFields(403, codes('QUIZ_NOT_OPEN'), 'no'),
    opens_at: z.iso.datetime().nullable().meta({ description: 'When the quiz window opens (null: no start time)' }),
    closes_at: z.iso.datetime().nullable().meta({ description: 'When it closes (null: no end)' }),
  }),
]);

/** 404 */
export const notFoundResponse = z.strictObject({
  ...errorFields(404, codes('SESSION_NOT_FOUND', 'ROUTE_NOT_FOUND', 'POLICY_NOT_FOUND', 'SETTING_NOT_FOUND'), 'no'),
  sessionId: sessionId.optional().meta({ description: 'SESSION_NOT_FOUND: the id asked for' }),
});

/** 405: answered for a path that exists for other methods (an `allow` header lists them); no operation of the document answers it. */
export const methodNotAllowedResponse = z.strictObject({ ...errorFields(405, codes('METHOD_NOT_ALLOWED'), 'no') });

/**
 * 409 of an attempt's routes (progress, complete, abandon, the controls): always with the attempt
 * as it is now under `session`, so a client merges and retries without a read.
 */
export const conflictResponse = z.strictObject({
  ...errorFields(409, codes('SESSION_CONFLICT', 'SESSION_COMPLETED', 'ANOTHER_ATTEMPT_OPEN', 'IDEMPOTENCY_KEY_IN_USE'), 'by code'),
  retryAfterSeconds: retryAfterSeconds.optional().meta({ description: 'SESSION_CONFLICT and IDEMPOTENCY_KEY_IN_USE: 1' }),
  sessionId,
  session,
});

/** 409 of a start: no attempt to carry. */
export const startConflictResponse = z.discriminatedUnion('errorCode', [
  z.strictObject({
    ...errorFields(409, codes('ATTEMPT_LIMIT_REACHED'), 'no'),
    attempts_used: z.number().int().min(0).meta({ description: 'Attempts the user made' }),
    max_attempts: z.number().int().min(1).meta({ description: 'Attempts allowed' }),
  }),
  z.strictObject({ ...errorFields(409, codes('IDEMPOTENCY_KEY_IN_USE'), 'yes'), retryAfterSeconds }),
]);

/** 410: with the attempt. */
export const goneResponse = z.strictObject({ ...errorFields(410, codes('SESSION_EXPIRED'), 'no'), sessionId, session });

/** 423: paused by a proctor; with the attempt. */
export const lockedResponse = z.strictObject({
  ...errorFields(423, codes('SESSION_PAUSED'), 'yes'),
  retryAfterSeconds,
  sessionId,
  session,
});

/** 413 */
export const payloadTooLargeResponse = z.strictObject({ ...errorFields(413, codes('PAYLOAD_TOO_LARGE'), 'no') });

/** 415 */
export const unsupportedMediaTypeResponse = z.strictObject({ ...errorFields(415, codes('UNSUPPORTED_MEDIA_TYPE'), 'no') });

/** 422 */
export const idempotencyKeyReusedResponse = z.strictObject({ ...errorFields(422, codes('IDEMPOTENCY_KEY_REUSED'), 'no') });

/** 429: a per-principal limit (writes or client events per minute, streams at once); retryable after `retryAfterSeconds`. */
export const rateLimitedResponse = z.strictObject({ ...errorFields(429, codes('RATE_LIMITED'), 'yes'), retryAfterSeconds });

/** 500: says nothing of the internals (the log has them). */
export const internalErrorResponse = z.strictObject({ ...errorFields(500, codes('INTERNAL_SERVER_ERROR'), 'no') });

/** 503: retryable. */
export const serviceUnavailableResponse = z.strictObject({ ...errorFields(503, codes('SERVICE_UNAVAILABLE'), 'yes'), retryAfterSeconds });

/** One event of an attempt's log. */
export const eventResponse = z.object({
  seq: z.number().int().min(1).meta({ description: 'Increasing per attempt, from 1' }),
  type: z.enum(EVENT_TYPES),
  at: timestamp.meta({ description: 'Server time' }),
  actor: z.object({
    id: z.string().nullable().meta({ description: "The token's subject; null in open mode and for the service's own workers" }),
    role: z.enum(['service', 'proctor', 'student', 'open', 'system']),
  }),
  request_id: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).meta({
    description:
      'answer_saved: {answers, current_question?, version}; write_rejected: {status, error_code, version, attempt_status}; extended/reopened: {seconds, from, expires_at, granted_seconds, reason, version}; paused/resumed_by_proctor: {reason, version}; completed/expired/abandoned/overdue: {by, version, submitted_by?}; a client event: its data and client_time',
  }),
});

/** GET .../:id/events */
export const eventsPageResponse = z.object({
  events: z.array(eventResponse),
  next_after: z.number().int().min(0).meta({ description: 'The `after` of the next page (the last seq returned, or the `after` given)' }),
});

/** GET /api/quizzes/:quiz_id/attempts and /api/users/:user_id/attempts */
export const attemptsPageResponse = z.object({
  attempts: z.array(attemptResponse),
  next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last' }),
});

/** POST .../:id/events: 202 */
export const clientEventsAccepted = z.object({ accepted: z.number().int().min(1), last_seq: z.number().int().min(1) });

/** GET /health */
export const healthResponse = z.object({ status: z.literal('ok'), uptimeSeconds: z.number() });

const checks = z.record(z.string(), z.enum(['up', 'down']));

/** GET /ready: 200 */
export const readyResponse = z.object({ status: z.literal('ready'), checks });

/** GET /ready: 503 names what is down, in the error contract's shape. */
export const notReadyResponse = serviceUnavailableResponse.extend({ status: z.literal('unavailable'), checks });

/** The error schema of each status (the session routes' 409; a start's is startConflictResponse, /ready's 503 notReadyResponse). */
export const ERROR_RESPONSES = {
  400: validationErrorResponse,
  401: unauthorizedResponse,
  403: forbiddenResponse,
  404: notFoundResponse,
  405: methodNotAllowedResponse,
  409: conflictResponse,
  410: goneResponse,
  413: payloadTooLargeResponse,
  415: unsupportedMediaTypeResponse,
  422: idempotencyKeyReusedResponse,
  423: lockedResponse,
  429: rateLimitedResponse,
  500: internalErrorResponse,
  503: serviceUnavailableResponse,
} as const;

/** A stream's `time` event: the seconds left and the server's clock when it was sent. */
export const streamTimeEvent = z.object({
  time_remaining: z.number().int().min(0).nullable().meta({ description: 'Seconds left; null when untimed' }),
  server_time: timestamp.meta({ description: "The server's clock when the event was sent" }),
});

/** A quiz stream's `client_event`: an event a student's page reported (connection lost or restored, page blurred, …). */
export const streamClientEvent = z.object({
  attempt_id: z.uuid({ version: 'v4' }),
  user_id: z.string(),
  seq: z.number().int().min(1),
  type: z.enum(EVENT_TYPES),
  at: timestamp.meta({ description: 'Server time it was recorded' }),
  data: z.record(z.string(), z.unknown()).meta({ description: 'What the client sent, with its client_time' }),
});
