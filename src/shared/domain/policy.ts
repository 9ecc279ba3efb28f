/*
 * The institution's rules for a quiz: its time limit, how many attempts a user may make, what
 * happens at the deadline, and the window in which attempts may start. A quiz without a policy
 * runs on the service's defaults (DEFAULT_TIME_LIMIT_SECONDS, unlimited attempts, `expire`, no
 * window). The time-limit and window rules of a start are here; the deadline rule is deadline.ts.
 */

/** What happens to an attempt at its deadline (Moodle's overdue handling). */
export const OVERDUE_HANDLINGS = ['expire', 'autosubmit', 'graceperiod', 'autoabandon'] as const;
/** One of OVERDUE_HANDLINGS. */
export type OverdueHandling = (typeof OVERDUE_HANDLINGS)[number];

/** A quiz's policy. Times are epoch ms. */
export interface QuizPolicy {
  quizId: string;
  /** 0: untimed. */
  timeLimitSeconds: number;
  /** null: unlimited. */
  maxAttempts: number | null;
  overdueHandling: OverdueHandling;
  /** Set exactly when overdueHandling is `graceperiod`. */
  gracePeriodSeconds: number | null;
  opensAt: number | null;
  closesAt: number | null;
  updatedAt: number;
}

/** A user's accommodation: more time on every timed quiz. */
export interface Accommodation {
  userId: string;
  /** 1..5 */
  timeMultiplier: number;
  extraTimeSeconds: number;
}

/** A user's override of one quiz's policy; each field null when not overridden. */
export interface QuizOverride {
  quizId: string;
  userId: string;
  timeLimitSeconds: number | null;
  extraAttempts: number | null;
  closesAt: number | null;
}

/** Everything that decides a user's new attempt at a quiz. */
export interface StartRules {
  policy: QuizPolicy | null;
  override: QuizOverride | null;
  accommodation: Accommodation | null;
}

/** The rules a start applies, once policy, override and accommodation are combined. */
export interface EffectiveRules {
  timeLimitSeconds: number;
  /** null: unlimited. */
  maxAttempts: number | null;
  opensAt: number | null;
  closesAt: number | null;
  /** What the deadline does to the attempt. */
  overdueHandling: OverdueHandling;
  /** With graceperiod, its grace; else null. */
  gracePeriodSeconds: number | null;
}

/**
 * Combines the rules: the time limit is the first of the override's, the policy's, the one the
 * start asked for (a service, or open mode without a policy) and the default; then the
 * accommodation applies (round(limit × multiplier) + extra; an untimed quiz stays untimed). The
 * attempts allowed are the policy's plus the override's extra ones; the override's closes_at
 * replaces the policy's. What the deadline does is the policy's (expire without one).
 */
export function effectiveRules(rules: StartRules, requested: number | undefined, defaultSeconds: number): EffectiveRules {
  const { policy, override, accommodation } = rules;
  const base = override?.timeLimitSeconds ?? timeLimitFor(policy, requested, defaultSeconds);
  const timeLimitSeconds =
    base === 0 || !accommodation ? base : Math.round(base * accommodation.timeMultiplier) + accommodation.extraTimeSeconds;
  const allowed = policy?.maxAttempts ?? null;
  const maxAttempts = allowed === null ? null : allowed + (override?.extraAttempts ?? 0);
  const overdueHandling = policy?.overdueHandling ?? 'expire';
  return {
    timeLimitSeconds,
    maxAttempts,
    opensAt: policy?.opensAt ?? null,
    closesAt: override?.closesAt ?? policy?.closesAt ?? null,
    overdueHandling,
    gracePeriodSeconds: overdueHandling === 'graceperiod' ? (policy?.gracePeriodSeconds ?? null) : null,
  };
}

/** Where `now` is relative to the policy's window. */
export type WindowState = 'open' | 'not-yet-open' | 'closed';

/** Whether attempts may start at `now`: from opens_at (inclusive) until closes_at (exclusive). */
export function windowAt(policy: Pick<QuizPolicy, 'opensAt' | 'closesAt'> | null, now: number): WindowState {
  const opensAt = policy?.opensAt ?? null;
  const closesAt = policy?.closesAt ?? null;
  if (opensAt !== null && now < opensAt) return 'not-yet-open';
  if (closesAt !== null && now >= closesAt) return 'closed';
  return 'open';
}

/**
 * The time limit of a new attempt: the policy's when the quiz has one, else the one the start
 * asked for (only a service, or open mode, may ask), else the default.
 */
export function timeLimitFor(policy: QuizPolicy | null, requested: number | undefined, defaultSeconds: number): number {
  return policy?.timeLimitSeconds ?? requested ?? defaultSeconds;
}

/** The deadline capped by the window's end: never later than closes_at (an untimed attempt ends there too). */
export function cappedDeadline(deadline: number | null, policy: Pick<QuizPolicy, 'closesAt'> | null): number | null {
  const closesAt = policy?.closesAt ?? null;
  if (closesAt === null) return deadline;
  return deadline === null ? closesAt : Math.min(deadline, closesAt);
}
