import type { Routes } from '../routeTable';
import type { Context, Middleware } from 'koa';
import { isoTime } from '../../shared/domain/isoTime';
import type { Accommodation, QuizOverride, QuizPolicy } from '../../shared/domain/policy';
import { PolicyNotFoundError, SettingNotFoundError } from '../../shared/errors';
import type { PolicyStore } from '../../shared/store/policyStore';
import { requireAuth, type Authenticator } from '../auth';
import { authorize } from '../permissions';
import { accommodationBody, overrideBody, policyBody, quizIdParam, userIdParam } from '../schemas/quiz';
import { parse } from '../validate';

const iso = (ms: number | null): string | null => (ms === null ? null : isoTime(ms));

/** A policy as the API returns it (snake_case, ISO times). */
function policyJson(p: QuizPolicy) {
  return {
    quiz_id: p.quizId,
    time_limit_seconds: p.timeLimitSeconds,
    max_attempts: p.maxAttempts,
    overdue_handling: p.overdueHandling,
    grace_period_seconds: p.gracePeriodSeconds,
    opens_at: iso(p.opensAt),
    closes_at: iso(p.closesAt),
    updated_at: iso(p.updatedAt),
  };
}

const quizIdOf = (ctx: Context & { params: Record<string, string> }): string => parse(quizIdParam, ctx.params.quiz_id, 'path');
const userIdOf = (ctx: Context & { params: Record<string, string> }): string => parse(userIdParam, ctx.params.user_id, 'path');

const accommodationJson = (a: Accommodation) => ({
  user_id: a.userId,
  time_multiplier: a.timeMultiplier,
  extra_time_seconds: a.extraTimeSeconds,
});
const overrideJson = (o: QuizOverride) => ({
  quiz_id: o.quizId,
  user_id: o.userId,
  time_limit_seconds: o.timeLimitSeconds,
  extra_attempts: o.extraAttempts,
  closes_at: iso(o.closesAt),
});

/**
 * The institution's rules: a quiz's policy (PUT by a service, GET by any role), a user's
 * accommodations, and a user's override of a quiz (both PUT/DELETE by a service, GET by a service
 * or a proctor). A change applies to the next start.
 */
export function registerQuizRoutes(router: Routes, policies: PolicyStore, authenticate: Authenticator | null = null): void {
  const auth: Middleware[] = authenticate ? [requireAuth(authenticate)] : [];

  router.get('/api/quizzes/:quiz_id/policy', ...auth, async (ctx) => {
    authorize(ctx, 'policy:read');
    const quizId = quizIdOf(ctx);
    const policy = await policies.get(quizId);
    if (!policy) throw new PolicyNotFoundError(quizId);
    ctx.body = policyJson(policy);
  });

  router.put('/api/quizzes/:quiz_id/policy', ...auth, async (ctx) => {
    authorize(ctx, 'policy:write');
    const quizId = quizIdOf(ctx);
    const body = parse(policyBody, ctx.request.body);
    const stored = await policies.put({
      quizId,
      timeLimitSeconds: body.time_limit_seconds,
      maxAttempts: body.max_attempts,
      overdueHandling: body.overdue_handling,
      gracePeriodSeconds: body.grace_period_seconds,
      opensAt: body.opens_at === null ? null : Date.parse(body.opens_at),
      closesAt: body.closes_at === null ? null : Date.parse(body.closes_at),
    });
    ctx.body = policyJson(stored);
  });

  router.get('/api/users/:user_id/accommodations', ...auth, async (ctx) => {
    authorize(ctx, 'settings:read');
    const userId = userIdOf(ctx);
    const found = await policies.getAccommodation(userId);
    if (!found) throw new SettingNotFoundError(`User ${userId} has no accommodations`);
    ctx.body = accommodationJson(found);
  });

  router.put('/api/users/:user_id/accommodations', ...auth, async (ctx) => {
    authorize(ctx, 'settings:write');
    const userId = userIdOf(ctx);
    const body = parse(accommodationBody, ctx.request.body);
    ctx.body = accommodationJson(
      await policies.putAccommodation({ userId, timeMultiplier: body.time_multiplier, extraTimeSeconds: body.extra_time_seconds }),
    );
  });

  router.get('/api/quizzes/:quiz_id/overrides/:user_id', ...auth, async (ctx) => {
    authorize(ctx, 'settings:read');
    const quizId = quizIdOf(ctx);
    const userId = userIdOf(ctx);
    const found = await policies.getOverride(quizId, userId);
    if (!found) throw new SettingNotFoundError(`User ${userId} has no override of quiz ${quizId}`);
    ctx.body = overrideJson(found);
  });

  router.put('/api/quizzes/:quiz_id/overrides/:user_id', ...auth, async (ctx) => {
    authorize(ctx, 'settings:write');
    const quizId = quizIdOf(ctx);
    const userId = userIdOf(ctx);
    const body = parse(overrideBody, ctx.request.body);
    ctx.body = overrideJson(
      await policies.putOverride({
        quizId,
        userId,
        timeLimitSeconds: body.time_limit_seconds,
        extraAttempts: body.extra_attempts,
        closesAt: body.closes_at === null ? null : Date.parse(body.closes_at),
      }),
    );
  });

  router.delete('/api/quizzes/:quiz_id/overrides/:user_id', ...auth, async (ctx) => {
    authorize(ctx, 'settings:write');
    const quizId = quizIdOf(ctx);
    const userId = userIdOf(ctx);
    if (!(await policies.deleteOverride(quizId, userId)))
      throw new SettingNotFoundError(`User ${userId} has no override of quiz ${quizId}`);
    ctx.status = 204;
  });
}
