import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { QuizPolicy } from '../../shared/domain/policy';
import { PolicyNotFoundError } from '../../shared/errors';
import type { PolicyStore } from '../../shared/store/policyStore';
import { requireAuth, type Authenticator } from '../auth';
import { authorize } from '../permissions';
import { policyBody, quizIdParam } from '../schemas/quiz';
import { parse } from '../validate';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

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

/** The institution's rules per quiz: PUT (a service only) and GET (any role) of its policy. */
export function registerQuizRoutes(router: Router, policies: PolicyStore, authenticate: Authenticator | null = null): void {
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
}
