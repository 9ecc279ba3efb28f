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

/** How many attempts the user may make in all; null: unlimited. */
export const attemptAllowance = (policy: QuizPolicy | null): number | null => policy?.maxAttempts ?? null;
