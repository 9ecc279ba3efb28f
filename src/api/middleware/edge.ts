import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Context, Middleware, Next } from 'koa';
import { UnsupportedMediaTypeError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { renderError } from './errorHandler';

const WELL_FORMED_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const JSON_TYPES = ['application/json', 'application/*+json'];
const EMPTY_BODY = Object.freeze({});
const done = async (): Promise<void> => {};

/**
 * The usual body type, `application/json` exactly, told without type-is (1.5 % of a write's CPU):
 * the edge's check and the body parser's (its detectJSON) both take it so; any other type goes
 * through type-is.
 */
export const isPlainJson = (ctx: Context): boolean => ctx.req.headers['content-type'] === 'application/json';

/** What the edge needs: the log, a latency observer, the clock for error bodies, the JSON body parser. */
export interface EdgeOptions {
  log: Logger;
  /** Called once per request with its duration. */
  observe?: (ctx: Context, seconds: number) => void;
  clock: () => number;
  /** koa-bodyparser's middleware: run only for a request that carries a body. */
  parseBody: Middleware;
}

/**
 * Everything every request passes through, in one middleware (each Koa layer is a promise and a
 * closure per request, so these are not four):
 * - a request id (a well-formed `x-request-id` is echoed, else a new UUID), set on the response;
 * - a body that is not JSON is refused (415); a JSON body is parsed (limits in the parser); a
 *   request without a body gets `{}` without the parser;
 * - every error is rendered as the seed contract (renderError);
 * - one log line per request in the seeds' format, `[session-service] <request-id> <METHOD> <URL>
 *   <STATUS> <duration>ms`, and the latency observation.
 */
export function edge({ log, observe, clock, parseBody }: EdgeOptions): Middleware {
  const logRequests = log.enabled('info');
  return async (ctx: Context, next: Next) => {
    const started = performance.now();
    const incoming = ctx.get('x-request-id');
    const id = WELL_FORMED_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = id;
    ctx.set('x-request-id', id);
    try {
      const headers = ctx.req.headers;
      const length = headers['content-length'];
      if ((length !== undefined && Number(length) > 0) || headers['transfer-encoding'] !== undefined) {
        if (!isPlainJson(ctx) && !ctx.is(JSON_TYPES)) throw new UnsupportedMediaTypeError();
        await parseBody(ctx, done);
      } else {
        ctx.request.body = EMPTY_BODY;
      }
      await next();
    } catch (thrown) {
      renderError(ctx, thrown, log, clock);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      observe?.(ctx, seconds);
      if (logRequests) log.info(`${id} ${ctx.method} ${ctx.originalUrl} ${ctx.status} ${(seconds * 1000).toFixed(1)}ms`);
    }
  };
}
