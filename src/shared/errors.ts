import type { Attempt } from './domain/attempt';
import { isoTime } from './domain/isoTime';

/** The stable error codes of the HTTP contract: the one list (the OpenAPI document's enum is this). */
export const ERROR_CODES = [
  'VALIDATION_ERROR',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'SESSION_NOT_FOUND',
  'ROUTE_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'SESSION_CONFLICT',
  'SESSION_COMPLETED',
  'SESSION_EXPIRED',
  'SESSION_PAUSED',
  'ANOTHER_ATTEMPT_OPEN',
  'IDEMPOTENCY_KEY_REUSED',
  'IDEMPOTENCY_KEY_IN_USE',
  'QUIZ_NOT_OPEN',
  'ATTEMPT_LIMIT_REACHED',
  'POLICY_NOT_FOUND',
  'SETTING_NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'INTERNAL_SERVER_ERROR',
  'SERVICE_UNAVAILABLE',
] as const;

/** A stable error code of the HTTP contract. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base of every error the service renders on purpose: a status, a code and a client-safe message. */
export class AppError extends Error {
  readonly retryable: boolean = false;
  /** Seconds a client should wait before retrying, when retryable. */
  readonly retryAfterSeconds?: number;
  /** More fields of the body, beside the contract's (e.g. /ready's `checks`). */
  readonly extra?: Readonly<Record<string, unknown>>;
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    /** The attempt the error is about, rendered under `session` in the body. */
    readonly attempt?: Attempt,
    readonly sessionId?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400: the request is malformed; the message names the field, and so does `field`. */
export class ValidationError extends AppError {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(400, 'VALIDATION_ERROR', message);
  }
}

/** 401: authentication is configured and the request has no valid bearer token. */
export class UnauthorizedError extends AppError {
  constructor(message = 'A valid bearer token is required') {
    super(401, 'UNAUTHORIZED', message);
  }
}

/** 403: the token's subject may not act on this attempt (or for this user). */
export class ForbiddenError extends AppError {
  constructor(message = 'This attempt belongs to another user') {
    super(403, 'FORBIDDEN', message);
  }
}

/** 404: no attempt has this id. */
export class SessionNotFoundError extends AppError {
  constructor(sessionId: string) {
    super(404, 'SESSION_NOT_FOUND', `Session ${sessionId} not found`, undefined, sessionId);
  }
}

/** 404: no route matches. */
export class RouteNotFoundError extends AppError {
  constructor(method: string, path: string) {
    super(404, 'ROUTE_NOT_FOUND', `Route ${method} ${path} not found`);
  }
}

/** 405: the path exists but not for this method. */
export class MethodNotAllowedError extends AppError {
  constructor(method: string, path: string) {
    super(405, 'METHOD_NOT_ALLOWED', `Method ${method} is not allowed on ${path}`);
  }
}

/** 409: the write carried a version that is no longer current; the client merges and retries. */
export class SessionConflictError extends AppError {
  override readonly retryable = true;
  override readonly retryAfterSeconds = 1;
  constructor(attempt: Attempt, expected: number) {
    super(
      409,
      'SESSION_CONFLICT',
      `Version conflict: expected version ${expected}, current version is ${attempt.version}`,
      attempt,
      attempt.id,
    );
  }
}

/** 409: the attempt is completed and takes no more progress. */
export class SessionCompletedError extends AppError {
  constructor(attempt: Attempt) {
    super(409, 'SESSION_COMPLETED', `Session ${attempt.id} is already completed`, attempt, attempt.id);
  }
}

/** 410: the attempt's deadline has passed or it was abandoned. */
export class SessionExpiredError extends AppError {
  constructor(attempt: Attempt, why = SessionExpiredError.why(attempt)) {
    super(410, 'SESSION_EXPIRED', `Session ${attempt.id} ${why}`, attempt, attempt.id);
  }

  private static why(attempt: Attempt): string {
    if (attempt.status === 'abandoned') return 'was abandoned';
    if (attempt.status === 'overdue') return 'is past its deadline: it may still be completed until the grace period ends';
    return 'has expired';
  }
}

/** 423: a proctor paused the attempt; writes are refused until it resumes (retryable). */
export class SessionPausedError extends AppError {
  override readonly retryable = true;
  override readonly retryAfterSeconds = 5;
  constructor(attempt: Attempt) {
    super(423, 'SESSION_PAUSED', `Session ${attempt.id} is paused by a proctor; try again once it resumes`, attempt, attempt.id);
  }
}

/** 409: reopening an attempt while its user has another open attempt at the quiz. */
export class AnotherAttemptOpenError extends AppError {
  constructor(attempt: Attempt, otherId: string) {
    super(409, 'ANOTHER_ATTEMPT_OPEN', `The user has another open attempt at quiz ${attempt.quizId} (${otherId})`, attempt, attempt.id);
  }
}

/** 422: an Idempotency-Key already used for another request (another route, If-Match or body). */
export class IdempotencyKeyReusedError extends AppError {
  constructor() {
    super(422, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for a different request; use a new key for a new request');
  }
}

/**
 * 409: the first request with this Idempotency-Key is still running; retry shortly to get its
 * response. On an attempt's routes it carries the attempt as it is now (under `session`, as every
 * 409 of those routes does); a start's has none.
 */
export class IdempotencyKeyInUseError extends AppError {
  override readonly retryable = true;
  override readonly retryAfterSeconds = 1;
  constructor(attempt?: Attempt) {
    super(409, 'IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still in flight; retry shortly', attempt, attempt?.id);
  }
}

/** 413: the body is over the limit. */
export class PayloadTooLargeError extends AppError {
  constructor(limit: string) {
    super(413, 'PAYLOAD_TOO_LARGE', `Request body is larger than ${limit}`);
  }
}

/** 415: the body is not JSON. */
export class UnsupportedMediaTypeError extends AppError {
  constructor() {
    super(415, 'UNSUPPORTED_MEDIA_TYPE', 'Request body must be JSON (Content-Type: application/json)');
  }
}

/** 503: a backing store is unreachable; safe to retry. */
export class ServiceUnavailableError extends AppError {
  override readonly retryable = true;
  override readonly retryAfterSeconds = 1;
  constructor(readonly dependency: 'redis' | 'postgres') {
    super(503, 'SERVICE_UNAVAILABLE', `Service temporarily unavailable (${dependency}); retry shortly`);
  }
}

/** 503 from /ready: a dependency does not answer; the body also says which (`checks`). */
export class NotReadyError extends AppError {
  override readonly retryable = true;
  override readonly retryAfterSeconds = 1;
  override readonly extra: Readonly<Record<string, unknown>>;
  constructor(checks: Record<string, 'up' | 'down'>) {
    const down = Object.keys(checks).filter((name) => checks[name] === 'down');
    super(503, 'SERVICE_UNAVAILABLE', `not ready: ${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} down`);
    this.extra = { status: 'unavailable', checks };
  }
}

/** 403: the quiz's window is not open: no attempt may start before opens_at or from closes_at on. */
export class QuizNotOpenError extends AppError {
  override readonly extra: Readonly<Record<string, unknown>>;
  constructor(quizId: string, opensAt: number | null, closesAt: number | null, state: 'not-yet-open' | 'closed') {
    super(403, 'QUIZ_NOT_OPEN', `Quiz ${quizId} ${state === 'closed' ? 'is closed' : 'is not open yet'}: no attempt may start now`);
    this.extra = { opens_at: opensAt === null ? null : isoTime(opensAt), closes_at: closesAt === null ? null : isoTime(closesAt) };
  }
}

/** 409: the user has made every attempt the quiz allows and has none open; retrying will not help. */
export class AttemptLimitReachedError extends AppError {
  override readonly extra: Readonly<Record<string, unknown>>;
  constructor(attemptsUsed: number, maxAttempts: number) {
    super(409, 'ATTEMPT_LIMIT_REACHED', `All ${maxAttempts} attempts allowed at this quiz are used`);
    this.extra = { attempts_used: attemptsUsed, max_attempts: maxAttempts };
  }
}

/** 404: the quiz has no policy. */
export class PolicyNotFoundError extends AppError {
  constructor(quizId: string) {
    super(404, 'POLICY_NOT_FOUND', `Quiz ${quizId} has no policy`);
  }
}

/** 404: the user has no such accommodation or override. */
export class SettingNotFoundError extends AppError {
  constructor(message: string) {
    super(404, 'SETTING_NOT_FOUND', message);
  }
}

/** 429: this principal sent more than its limit allows in a window; retry after `retryAfterSeconds`. */
export class RateLimitedError extends AppError {
  override readonly retryable = true;
  override readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(429, 'RATE_LIMITED', message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}
