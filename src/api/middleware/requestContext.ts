import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../../shared/logger';

const WELL_FORMED_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives every request an id (echoing a well-formed `x-request-id`, else a new UUID), sets it on the
 * response, and logs one line per request in the seeds' format:
 * `[session-service] <request-id> <METHOD> <URL> <STATUS> <duration>ms`.
 */
export function requestContext(log: Logger, observe?: (ctx: Parameters<Middleware>[0], seconds: number) => void): Middleware {
  const logRequests = log.enabled('info');
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('x-request-id');
    const id = WELL_FORMED_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = id;
    ctx.set('x-request-id', id);
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      observe?.(ctx, seconds);
      if (logRequests) log.info(`${id} ${ctx.method} ${ctx.originalUrl} ${ctx.status} ${(seconds * 1000).toFixed(1)}ms`);
    }
  };
}
