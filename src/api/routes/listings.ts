import type { Routes } from '../routeTable';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { attemptJson } from '../../shared/domain/attempt';
import { ATTEMPT_STATUSES } from '../../shared/domain/status';
import { ForbiddenError, ValidationError } from '../../shared/errors';
import type { SessionService } from '../../shared/sessionService';
import { principalOf, requireAuth, type Authenticator } from '../auth';
import { authorize, quizScopeOf } from '../permissions';
import { quizIdParam, userIdParam } from '../schemas/quiz';
import { text, UUID_V4 } from '../schemas/session';
import { parse } from '../validate';

/** The most attempts one page holds. */
export const MAX_PAGE = 200;

/** GET /api/quizzes/:quiz_id/attempts query; unknown parameters are refused. */
export const quizAttemptsQuery = z.strictObject({
  status: z.enum(ATTEMPT_STATUSES).optional(),
  user_id: text('user_id').optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50),
  cursor: z.string().max(200).optional().meta({ description: 'next_cursor of the previous page' }),
});

/** GET /api/users/:user_id/attempts query. */
export const userAttemptsQuery = z.strictObject({
  quiz_id: text('quiz_id').optional(),
  status: z.enum(ATTEMPT_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50),
  cursor: z.string().max(200).optional(),
});

/** A keyset position as an opaque cursor: base64url of `<started_at ms>.<id>`. */
const encodeCursor = (p: { startedAt: number; id: string }): string => Buffer.from(`${p.startedAt}.${p.id}`).toString('base64url');

function decodeCursor(cursor: string | undefined): { startedAt: number; id: string } | undefined {
  if (cursor === undefined) return undefined;
  const [ms, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('.');
  const startedAt = Number(ms);
  if (!/^[0-9]{1,15}$/.test(ms ?? '') || !Number.isSafeInteger(startedAt) || !UUID_V4.test(id ?? ''))
    throw new ValidationError('cursor: not a cursor this service gave out (use next_cursor as it is)', 'cursor');
  return { startedAt, id };
}

/** Staff listings: a quiz's attempts (a proctor or a service) and a user's (a service, or the student themselves). */
export function registerListingRoutes(router: Routes, service: SessionService, authenticate: Authenticator | null = null): void {
  const auth: Middleware[] = authenticate ? [requireAuth(authenticate)] : [];
  const respond = async (ctx: Context, filter: Parameters<SessionService['list']>[0]) => {
    const { attempts, next } = await service.list(filter);
    const now = service.clock();
    ctx.type = 'application/json';
    ctx.body = `{"attempts":[${attempts.map((a) => attemptJson(a, now)).join(',')}],"next_cursor":${next ? JSON.stringify(encodeCursor(next)) : 'null'}}`;
  };

  router.get('/api/quizzes/:quiz_id/attempts', ...auth, async (ctx) => {
    authorize(ctx, 'list:quiz');
    const quizId = parse(quizIdParam, ctx.params.quiz_id, 'path');
    const scope = quizScopeOf(ctx);
    if (scope !== undefined && !scope.includes(quizId)) throw new ForbiddenError('This quiz is outside the token’s quiz_ids');
    const q = parse(quizAttemptsQuery, ctx.query, 'query');
    await respond(ctx, { quizId, userId: q.user_id, status: q.status, limit: q.limit, after: decodeCursor(q.cursor) });
  });

  router.get('/api/users/:user_id/attempts', ...auth, async (ctx) => {
    authorize(ctx, 'list:user');
    const userId = parse(userIdParam, ctx.params.user_id, 'path');
    const principal = principalOf(ctx);
    if (principal?.role === 'student' && principal.subject !== userId)
      throw new ForbiddenError('A student may list only their own attempts');
    const q = parse(userAttemptsQuery, ctx.query, 'query');
    await respond(ctx, { userId, quizId: q.quiz_id, status: q.status, limit: q.limit, after: decodeCursor(q.cursor) });
  });
}
