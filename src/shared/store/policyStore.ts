import type { RedisClient } from '../redis';
import type { Knex } from 'knex';
import type { Accommodation, OverdueHandling, QuizOverride, QuizPolicy, StartRules } from '../domain/policy';
import { ServiceUnavailableError } from '../errors';
import { date, ms, pgUnavailable } from './sessionRepository';

/** The policies' table. */
export const POLICY_TABLE = 'quiz_policies';
/** Accommodations, by user. */
export const ACCOMMODATION_TABLE = 'user_accommodations';
/** Overrides, by quiz and user. */
export const OVERRIDE_TABLE = 'quiz_overrides';
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
    private readonly redis: RedisClient,
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

  /**
   * Everything that decides a user's new attempt at a quiz: the policy (cached), and the user's
   * accommodation and override for the quiz, both in one PostgreSQL round trip.
   */
  async rulesFor(quizId: string, userId: string): Promise<StartRules> {
    const [policy, personal] = await Promise.all([
      this.get(quizId),
      this.knex
        .raw(
          `select (select row_to_json(a) from ${ACCOMMODATION_TABLE} a where a.user_id = ?) as accommodation,
                  (select row_to_json(o) from ${OVERRIDE_TABLE} o where o.quiz_id = ? and o.user_id = ?) as override`,
          [userId, quizId, userId],
        )
        .catch(pgUnavailable),
    ]);
    const row = personal.rows[0] as { accommodation: AccommodationJson | null; override: OverrideJson | null };
    return {
      policy,
      accommodation: row.accommodation ? accommodationOf(row.accommodation) : null,
      override: row.override ? overrideOf(row.override) : null,
    };
  }

  /** The user's accommodation, or null. */
  async getAccommodation(userId: string): Promise<Accommodation | null> {
    const row = await this.knex(ACCOMMODATION_TABLE).where({ user_id: userId }).first().catch(pgUnavailable);
    return row ? accommodationOf(row) : null;
  }

  /** Creates or replaces the user's accommodation. */
  async putAccommodation(a: Accommodation): Promise<Accommodation> {
    const row = { user_id: a.userId, time_multiplier: a.timeMultiplier, extra_time_seconds: a.extraTimeSeconds };
    return accommodationOf(await this.upsert<AccommodationJson>(ACCOMMODATION_TABLE, ['user_id'], row));
  }

  /** The user's override of the quiz, or null. */
  async getOverride(quizId: string, userId: string): Promise<QuizOverride | null> {
    const row = await this.knex(OVERRIDE_TABLE).where({ quiz_id: quizId, user_id: userId }).first().catch(pgUnavailable);
    return row ? overrideOf(row) : null;
  }

  /** Creates or replaces the user's override of the quiz. */
  async putOverride(o: QuizOverride): Promise<QuizOverride> {
    const row = {
      quiz_id: o.quizId,
      user_id: o.userId,
      time_limit_seconds: o.timeLimitSeconds,
      extra_attempts: o.extraAttempts,
      closes_at: date(o.closesAt),
    };
    return overrideOf(await this.upsert<OverrideJson>(OVERRIDE_TABLE, ['quiz_id', 'user_id'], row));
  }

  /** Inserts or replaces a settings row (stamped updated_at now) and returns it as stored. */
  private async upsert<R>(table: string, key: string[], row: Record<string, unknown>): Promise<R> {
    const [stored] = await this.knex(table)
      .insert({ ...row, updated_at: this.knex.fn.now() })
      .onConflict(key)
      .merge()
      .returning('*')
      .catch(pgUnavailable);
    return stored as R;
  }

  /** Removes the user's override of the quiz; true when there was one. */
  async deleteOverride(quizId: string, userId: string): Promise<boolean> {
    const n = await this.knex(OVERRIDE_TABLE).where({ quiz_id: quizId, user_id: userId }).delete().catch(pgUnavailable);
    return n > 0;
  }
}

interface AccommodationJson {
  user_id: string;
  time_multiplier: string | number;
  extra_time_seconds: number;
}
interface OverrideJson {
  quiz_id: string;
  user_id: string;
  time_limit_seconds: number | null;
  extra_attempts: number | null;
  closes_at: string | Date | null;
}

const accommodationOf = (r: AccommodationJson): Accommodation => ({
  userId: r.user_id,
  timeMultiplier: Number(r.time_multiplier),
  extraTimeSeconds: r.extra_time_seconds,
});

const overrideOf = (r: OverrideJson): QuizOverride => ({
  quizId: r.quiz_id,
  userId: r.user_id,
  timeLimitSeconds: r.time_limit_seconds,
  extraAttempts: r.extra_attempts,
  closesAt: r.closes_at === null ? null : new Date(r.closes_at).getTime(),
});
