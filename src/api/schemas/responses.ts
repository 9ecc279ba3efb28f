import { z } from 'zod';
import { ATTEMPT_STATUSES } from '../../shared/domain/status';
import { ERROR_CODES } from '../../shared/errors';
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

/** The error contract (seed 2), with the attempt under `session` for 409 and 410. */
export const errorResponse = z.object({
  error: z.string(),
  errorCode: z.enum(ERROR_CODES),
  message: z.string(),
  statusCode: z.number().int(),
  requestId: z.string(),
  retryable: z.boolean(),
  retryAfterSeconds: z.number().int().optional(),
  sessionId: z.string().optional(),
  field: z.string().optional(),
  session: attemptResponse.optional(),
  opens_at: z.iso.datetime().nullable().optional().meta({ description: 'QUIZ_NOT_OPEN: when the quiz window opens' }),
  closes_at: z.iso.datetime().nullable().optional().meta({ description: 'QUIZ_NOT_OPEN: when it closes' }),
  attempts_used: z.number().int().min(0).optional().meta({ description: 'ATTEMPT_LIMIT_REACHED: attempts the user made' }),
  max_attempts: z.number().int().min(1).optional().meta({ description: 'ATTEMPT_LIMIT_REACHED: attempts allowed' }),
});

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
export const notReadyResponse = errorResponse.extend({ status: z.literal('unavailable'), checks });

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
