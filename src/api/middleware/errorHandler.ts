import { STATUS_CODES } from 'node:http';
import type { Context } from 'koa';
import { attemptJson } from '../../shared/domain/attempt';
import { AppError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { LIMITS } from '../../shared/limits';

/** Maps errors thrown by the body parser (co-body / raw-body) to the contract. */
function fromBodyParser(err: Error & { status?: number; type?: string; code?: unknown }): AppError | null {
  if (err.type === 'entity.too.large' || err.status === 413) return new PayloadTooLargeError(`${LIMITS.bodyBytes / 1024}kb`);
  if (err instanceof SyntaxError && err.status === 400) {
    if (/prototype property/.test(err.message)) return new ValidationError('body: "__proto__" is not allowed as a key', 'body');
    if (/only supports object and array/.test(err.message)) return new ValidationError('body: must be a JSON object', 'body');
    return new ValidationError('body: malformed JSON', 'body');
  }
  if (err.type === 'encoding.unsupported' || err.status === 415) return new UnsupportedMediaTypeError();
  if (err.type === 'request.aborted') return new ValidationError('body: request aborted', 'body');
  // zlib/brotli failures of a body sent with Content-Encoding gzip/deflate/br that is not what it says
  if (typeof err.code === 'string' && /^(Z_|ERR__|ERR_BROTLI)/.test(err.code)) {
    return new ValidationError('body: Content-Encoding does not match the body', 'body');
  }
  if (err.status === 400) return new ValidationError('body: malformed request body', 'body');
  return null;
}

/**
 * Renders an error as the seed contract: `{error, errorCode, message, statusCode, requestId,
 * sessionId?, retryable, retryAfterSeconds?, session?}`. Unknown errors become a 500 that says
 * nothing of the internals (the log has them).
 */
export function renderError(ctx: Context, thrown: unknown, log: Logger, clock: () => number): void {
  let err: AppError;
  if (thrown instanceof AppError) err = thrown;
  else {
    const mapped = fromBodyParser(thrown as Error & { status?: number; type?: string });
    if (mapped) err = mapped;
    else {
      log.error(`${ctx.state.requestId} ${ctx.method} ${ctx.path} unhandled: ${(thrown as Error)?.stack ?? String(thrown)}`);
      err = new AppError(500, 'INTERNAL_SERVER_ERROR', 'An unexpected error occurred');
    }
  }
  const body: Record<string, unknown> = {
    ...err.extra,
    error: STATUS_CODES[err.status] ?? 'Error',
    errorCode: err.code,
    message: err.message,
    statusCode: err.status,
    requestId: ctx.state.requestId,
    retryable: err.retryable,
  };
  if (err.sessionId) body.sessionId = err.sessionId;
  if (err.retryAfterSeconds !== undefined) {
    body.retryAfterSeconds = err.retryAfterSeconds;
    ctx.set('retry-after', String(err.retryAfterSeconds));
  }
  if (err instanceof ValidationError) body.field = err.field;
  let json = JSON.stringify(body);
  if (err.attempt) {
    json = json.slice(0, -1) + ',"session":' + attemptJson(err.attempt, clock()) + '}';
    ctx.set('etag', `"${err.attempt.version}"`);
  }
  // a body refused before it was read to the end must not leave its bytes on a kept-alive connection
  if (err.status === 413 || err.status === 415) ctx.set('connection', 'close');
  ctx.status = err.status;
  ctx.type = 'application/json';
  ctx.body = json;
}
