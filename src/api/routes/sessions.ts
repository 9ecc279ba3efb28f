import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { attemptJson, type Attempt } from '../../shared/domain/attempt';
import { ValidationError } from '../../shared/errors';
import type { SessionService } from '../../shared/sessionService';
import { closeBody, progressBody, sessionIdParam, startBody } from '../schemas/session';
import { parse } from '../validate';

/** The prefixes the session routes are served under: seed 2's and seed 1's. */
export const SESSION_PREFIXES = ['/api/sessions', '/sessions'] as const;

const pathParams = z.object({ id: sessionIdParam });

/** Writes an attempt as the response body, with its version as the ETag. */
function send(ctx: Context, status: number, attempt: Attempt, now: number): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('etag', `"${attempt.version}"`);
  ctx.body = attemptJson(attempt, now);
}

/** The version a write expects: from the body or an If-Match header (`5`, `"5"`, `W/"5"`; `*` is none). */
function expectedVersion(ctx: Context, fromBody: number | undefined): number | undefined {
  const header = ctx.get('if-match').trim();
  if (header === '' || header === '*') return fromBody;
  const match = /^(?:W\/)?"?([0-9]{1,10})"?$/.exec(header);
  const fromHeader = match ? Number(match[1]) : NaN;
  if (!Number.isInteger(fromHeader) || fromHeader < 1 || fromHeader > 2_147_483_647) {
    throw new ValidationError('If-Match: must be a version number, such as "5"', 'If-Match');
  }
  if (fromBody !== undefined && fromBody !== fromHeader) {
    throw new ValidationError(`version: the body says ${fromBody} but If-Match says ${fromHeader}`, 'version');
  }
  return fromHeader;
}

/** Registers start, read, progress, complete and abandon under every prefix. */
export function registerSessionRoutes(router: Router, service: SessionService): void {
  const now = service.clock;
  for (const prefix of SESSION_PREFIXES) {
    router.post(`${prefix}/start`, async (ctx) => {
      const body = parse(startBody, ctx.request.body);
      const { attempt, created } = await service.start({
        userId: body.user_id,
        quizId: body.quiz_id,
        timeLimitSeconds: body.time_limit_seconds,
      });
      ctx.set('location', `${prefix}/${attempt.id}`);
      send(ctx, created ? 201 : 200, attempt, now());
    });

    router.get(`${prefix}/:id`, async (ctx) => {
      const { id } = parse(pathParams, ctx.params, 'path');
      send(ctx, 200, await service.get(id), now());
    });

    const progress = async (ctx: Context & { params: Record<string, string> }) => {
      const { id } = parse(pathParams, ctx.params, 'path');
      const body = parse(progressBody, ctx.request.body);
      const attempt = await service.progress(id, {
        expectedVersion: expectedVersion(ctx, body.version),
        currentQuestion: body.currentQuestion,
        answers: body.answers,
      });
      send(ctx, 200, attempt, now());
    };
    router.patch(`${prefix}/:id/progress`, progress);
    router.put(`${prefix}/:id/progress`, progress);

    router.post(`${prefix}/:id/complete`, async (ctx) => {
      const { id } = parse(pathParams, ctx.params, 'path');
      const body = parse(closeBody, ctx.request.body);
      send(ctx, 200, await service.complete(id, expectedVersion(ctx, body.version)), now());
    });

    router.post(`${prefix}/:id/abandon`, async (ctx) => {
      const { id } = parse(pathParams, ctx.params, 'path');
      const body = parse(closeBody, ctx.request.body);
      send(ctx, 200, await service.abandon(id, expectedVersion(ctx, body.version)), now());
    });
  }
}
