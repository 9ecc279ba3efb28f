import type { Context } from 'koa';
import type { Attempt } from '../shared/domain/attempt';
import { AppError, IdempotencyKeyInUseError, IdempotencyKeyReusedError, ValidationError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { IdempotentReplay, type SessionService } from '../shared/sessionService';
import { decodeRendered } from '../shared/store/sessionCodec';
import { fingerprint, type IdempotencyClaim, type IdempotencyRecord, type IdempotencyStore } from '../shared/store/idempotencyStore';
import { IDEMPOTENCY_KEY_PATTERN } from '../shared/domain/idempotency';
import { principalOf } from './auth';
import { renderError } from './middleware/errorHandler';

/** The header a client names its request with, and the one a replayed response carries. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'idempotent-replayed';

/** The response headers a kept response keeps (the rest are the connection's or the request's). */
const KEPT_HEADERS = ['etag', 'location', 'retry-after'] as const;

/** The request's Idempotency-Key, or undefined without one; a malformed key is 400. */
export function idempotencyKeyOf(ctx: Context): string | undefined {
  const key = ctx.get(IDEMPOTENCY_KEY_HEADER);
  if (key === '') return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key))
    throw new ValidationError('Idempotency-Key: 1 to 255 printable ASCII characters (a UUID is a good key)', 'Idempotency-Key');
  return key;
}

/** Who a key belongs to: the token's role and subject, or everyone alike when the API runs open. */
export function callerOf(ctx: Context): string {
  const principal = principalOf(ctx);
  return principal ? `${principal.role}:${principal.subject}` : 'open';
}

/** The claim of this request on its key (`recordKey` from the caller and key), or undefined without a key. */
export function claimOf(ctx: Context, route: string, recordKey: (caller: string, key: string) => string): IdempotencyClaim | undefined {
  const key = idempotencyKeyOf(ctx);
  if (key === undefined) return undefined;
  return { recordKey: recordKey(callerOf(ctx), key), fingerprint: fingerprint(route, ctx.get('if-match').trim(), ctx.request.body) };
}

/** The attempt a refusal carries: on an attempt's routes, the attempt as it is now (read only on that error path). */
export type CurrentAttempt = () => Promise<Attempt>;

/**
 * Refuses a record of another request (422) or one still running (409, with the attempt as it is
 * now when `current` reads it: every 409 of an attempt's routes carries it); otherwise it is this
 * request's done record.
 */
async function checkRecord(
  record: IdempotencyRecord,
  claim: IdempotencyClaim,
  current: CurrentAttempt | undefined,
): Promise<Exclude<IdempotencyRecord, { state: 'pending' }>> {
  if (record.fp !== claim.fingerprint) throw new IdempotencyKeyReusedError();
  if (record.state === 'pending') throw new IdempotencyKeyInUseError(current && (await current()));
  return record;
}

/** Answers again with a kept response. */
function replayResponse(ctx: Context, record: Extract<IdempotencyRecord, { body: string }>): void {
  ctx.status = record.status;
  ctx.type = 'application/json';
  for (const [name, value] of Object.entries(record.headers)) ctx.set(name, value);
  ctx.set(REPLAYED_HEADER, 'true');
  ctx.body = record.body;
}

/**
 * Runs `handler` at most once per caller and key (start, complete, abandon, the controls): the key
 * is claimed first; a retry gets the kept response; the same key with another request 422; while
 * the first runs, 409 (retryable; on an attempt's routes with the attempt from `current`). A 5xx is
 * not kept: the retry runs again.
 */
export async function runIdempotent(
  ctx: Context,
  claim: IdempotencyClaim | undefined,
  store: IdempotencyStore,
  log: Logger,
  clock: () => number,
  handler: () => Promise<void>,
  current?: CurrentAttempt,
): Promise<void> {
  if (!claim) return handler();
  const held = await store.claim(claim);
  if (held) {
    const record = await checkRecord(held, claim, current);
    if ('body' in record) return replayResponse(ctx, record);
    throw new IdempotencyKeyReusedError(); // a progress write's record: another route
  }
  try {
    await handler();
  } catch (err) {
    renderError(ctx, err, log, clock);
  }
  if (ctx.status >= 500) {
    await store.release(claim).catch(() => undefined);
    return;
  }
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = ctx.response.get(name);
    if (value) headers[name] = value;
  }
  const body = typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body ?? null);
  await store.save(claim, { status: ctx.status, headers, body });
}

/**
 * A progress write's answer from its idempotency record (the script found it): the same outcome,
 * rendered as it was the first time (at its time, with its request id), marked replayed. A record
 * still pending is a 409 with the attempt from `current`.
 */
export async function replayProgress(
  ctx: Context,
  replay: IdempotentReplay,
  claim: IdempotencyClaim,
  service: SessionService,
  expectedVersion: number | undefined,
  log: Logger,
  send: (attempt: ReturnType<SessionService['progressOutcome']>, at: number) => void,
  current: CurrentAttempt,
): Promise<void> {
  const record = await checkRecord(JSON.parse(replay.record) as IdempotencyRecord, claim, current);
  if ('body' in record) return replayResponse(ctx, record);
  const requestId = ctx.state.requestId;
  ctx.set(REPLAYED_HEADER, 'true');
  try {
    send(service.progressOutcome(record.code, decodeRendered(record.r), expectedVersion, true), record.at);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    ctx.state.requestId = record.rid ?? requestId;
    renderError(ctx, err, log, () => record.at);
    ctx.state.requestId = requestId;
  }
}

export { IdempotentReplay };
