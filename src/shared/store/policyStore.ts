import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { OverdueHandling, QuizPolicy } from '../domain/policy';
import { ServiceUnavailableError } from '../errors';
import { pgUnavailable } from './sessionRepository';

/** The policies' table. */
export const POLICY_TABLE = 'quiz_policies';
/** Redis key of a quiz's cached policy (JSON, or NO_POLICY). */
export const policyKey = (quizId: string): string => `quiz_policy:${quizId}`;
/** What the cache holds for a quiz without a policy, so starts of such quizzes skip PostgreSQL too. */
const NO_POLICY = 'none';
/** How long a cached policy (or its absence) lives; a change replaces it at once. */
const POLICY_CACHE_TTL_SECONDS = 300;

interface PolicyRow {
  quiz_id: string;
  time_limit_seconds: number;
  max_attempts: number | null;
  overdue_handling: OverdueHandling;
  grace_period_seconds: number | null;
  opens_at: Date | null;
  closes_at: Date | null;
  updated_at: Date;
}

const ms = (d: Date | null): number | null => (d === null ? null : d.getTime());
const date = (n: number | null): Date | null => (n === null ? null : new Date(n));

function fromRow(r: PolicyRow): QuizPolicy {
  return {
    quizId: r.quiz_id,
    timeLimitSeconds: r.time_limit_seconds,
    maxAttempts: r.max_attempts,
    overdueHandling: r.overdue_handling,
    gracePeriodSeconds: r.grace_period_seconds,
    opensAt: ms(r.opens_at),
    closesAt: ms(r.closes_at),
    updatedAt: r.updated_at.getTime(),
  };
}

const redisUnavailable = (): never => {
  throw new ServiceUnavailableError('redis');
};

/**
 * Quiz policies: durable in PostgreSQL, cached in Redis (so every API process sees a change at
 * once). A change deletes the cached copy before it writes PostgreSQL and caches the new one
 * after; a cache fill never overwrites (SET NX), so a fill that read the old row loses to the change.
 */
export class PolicyStore {
  constructor(
    private readonly knex: Knex,
    private readonly redis: Redis,
  ) {}

  /** The quiz's policy, or null when it has none. */
  async get(quizId: string): Promise<QuizPolicy | null> {
    const cached = await this.redis.get(policyKey(quizId)).catch(() => undefined);
    if (cached === NO_POLICY) return null;
    if (cached) return JSON.parse(cached) as QuizPolicy;
    const row = await this.knex<PolicyRow>(POLICY_TABLE).where({ quiz_id: quizId }).first().catch(pgUnavailable);
    const policy = row ? fromRow(row) : null;
    // a Redis that is away (cached === undefined) only costs the next start a query
    if (cached === null) {
      await this.redis
        .set(policyKey(quizId), policy ? JSON.stringify(policy) : NO_POLICY, 'EX', POLICY_CACHE_TTL_SECONDS, 'NX')
        .catch(() => undefined);
    }
    return policy;
  }

  /** Creates or replaces the quiz's policy; returns it as stored. */
  async put(policy: Omit<QuizPolicy, 'updatedAt'>): Promise<QuizPolicy> {
    const key = policyKey(policy.quizId);
    // gone from the cache before PostgreSQL changes, so no process keeps serving the old one
    await this.redis.del(key).catch(redisUnavailable);
    const [row] = await this.knex<PolicyRow>(POLICY_TABLE)
      .insert({
        quiz_id: policy.quizId,
        time_limit_seconds: policy.timeLimitSeconds,
        max_attempts: policy.maxAttempts,
        overdue_handling: policy.overdueHandling,
        grace_period_seconds: policy.gracePeriodSeconds,
        opens_at: date(policy.opensAt),
        closes_at: date(policy.closesAt),
        updated_at: this.knex.fn.now() as unknown as Date,
      })
      .onConflict('quiz_id')
      .merge()
      .returning('*')
      .catch(pgUnavailable);
    const stored = fromRow(row as PolicyRow);
    await this.redis.set(key, JSON.stringify(stored), 'EX', POLICY_CACHE_TTL_SECONDS).catch(() => undefined);
    return stored;
  }
}
