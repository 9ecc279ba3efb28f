import type { Middleware } from 'koa';
import { UnsupportedMediaTypeError } from '../../shared/errors';

/** 415 for a request that carries a body which is not JSON (an empty body needs no type). */
export const requireJson: Middleware = async (ctx, next) => {
  const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
  if (hasBody && !ctx.is('application/json', 'application/*+json')) throw new UnsupportedMediaTypeError();
  await next();
};
