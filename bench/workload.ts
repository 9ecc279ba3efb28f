import { randomUUID } from 'node:crypto';
import { UNCONTROLLED, type Attempt } from '../src/shared/domain/attempt';
import { mapConcurrent, type JsonClient } from '../test/support/http';

/** Questions per quiz: every attempt holds this many answers once prefilled (the scale figure's 20). */
export const QUESTIONS = 20;

/** A small multiple-choice answer, as a quiz front end would save it (~30 bytes of JSON). */
export function answerFor(question: number, seq: number): { choice: number; flagged: boolean } {
  return { choice: (question + seq) % 4, flagged: seq % 7 === 0 };
}

/** All QUESTIONS answers, keyed `q1`..`q20`. */
export function allAnswers(seq = 0): Record<string, { choice: number; flagged: boolean }> {
  const out: Record<string, { choice: number; flagged: boolean }> = {};
  for (let q = 0; q < QUESTIONS; q++) out[`q${q + 1}`] = answerFor(q, seq);
  return out;
}

/** An attempt as the service would hold it after a student answered every question (for direct seeding). */
export function seededAttempt(userId: string, now: number, timeLimitSeconds = 1800): Attempt {
  const answers = new Map<string, string>();
  for (const [q, a] of Object.entries(allAnswers())) answers.set(q, JSON.stringify(a));
  return {
    id: randomUUID(),
    userId,
    quizId: 'bench-quiz',
    status: 'in_progress',
    currentQuestion: QUESTIONS,
    answers,
    version: 2,
    timeLimitSeconds,
    startedAt: now,
    expiresAt: timeLimitSeconds === 0 ? null : now + timeLimitSeconds * 1000,
    lastUpdated: now,
    completedAt: null,
    endedAt: null,
    attemptNumber: 1,
    submittedBy: null,
    ...UNCONTROLLED,
  };
}

/** Counts of what a setup step got back, by status. */
export type StatusCounts = Record<string, number>;

/**
 * Starts `count` attempts through the API (POST /api/sessions/start), `concurrency` at a time,
 * each for its own user; returns their ids and versions. Throws when any start fails.
 */
export async function startAttempts(
  client: JsonClient,
  count: number,
  concurrency: number,
  userPrefix: string,
  timeLimitSeconds?: (i: number) => number,
  quizId = 'bench-quiz',
): Promise<{ ids: string[]; versions: number[] }> {
  const responses = await mapConcurrent(count, concurrency, (i) =>
    client.send('POST', '/api/sessions/start', {
      user_id: `${userPrefix}-${i}`,
      quiz_id: quizId,
      ...(timeLimitSeconds ? { time_limit_seconds: timeLimitSeconds(i) } : {}),
    }),
  );
  const failed = responses.filter((r) => r.status !== 201);
  if (failed.length > 0)
    throw new Error(`${failed.length} of ${count} starts failed (first: ${failed[0].status} ${JSON.stringify(failed[0].body)})`);
  return { ids: responses.map((r) => String(r.body!.id)), versions: responses.map((r) => r.version ?? 1) };
}

/** The quiz the HTTP phase's attempts start at when it runs with policies in use (--policy). */
export const POLICY_QUIZ = 'bench-policy-quiz';

/**
 * Puts POLICY_QUIZ under a policy with this overdue handling (30 minutes, at most 3 attempts) and
 * gives each of the `count` users an accommodation (time and a quarter plus a minute), through the
 * API, as an institution would before an exam.
 */
export async function applyPolicies(client: JsonClient, handling: string, userPrefix: string, count: number): Promise<void> {
  const policy = await client.send('PUT', `/api/quizzes/${POLICY_QUIZ}/policy`, {
    time_limit_seconds: 1800,
    max_attempts: 3,
    overdue_handling: handling,
    grace_period_seconds: handling === 'graceperiod' ? 300 : null,
  });
  if (policy.status !== 200) throw new Error(`the bench policy was refused: ${policy.status} ${JSON.stringify(policy.body)}`);
  const responses = await mapConcurrent(count, 64, (i) =>
    client.send('PUT', `/api/users/${userPrefix}-${i}/accommodations`, { time_multiplier: 1.25, extra_time_seconds: 60 }),
  );
  const failed = responses.filter((r) => r.status !== 200);
  if (failed.length > 0) throw new Error(`${failed.length} of ${count} accommodations were refused (first: ${failed[0].status})`);
}

/** Writes all QUESTIONS answers to each attempt in one versioned progress write; updates `versions`. */
export async function prefillAnswers(client: JsonClient, ids: string[], versions: number[], concurrency: number): Promise<void> {
  const responses = await mapConcurrent(ids.length, concurrency, (i) =>
    client.send('PATCH', `/api/sessions/${ids[i]}/progress`, { version: versions[i], answers: allAnswers(), current_question: 1 }),
  );
  const failed = responses.filter((r) => r.status !== 200);
  if (failed.length > 0)
    throw new Error(
      `${failed.length} of ${ids.length} prefill writes failed (first: ${failed[0].status} ${JSON.stringify(failed[0].body)})`,
    );
  responses.forEach((r, i) => (versions[i] = r.version ?? versions[i] + 1));
}
