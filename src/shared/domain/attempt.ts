import { presentAt, timeRemaining } from './deadline';
import { isoTime } from './isoTime';
import type { OverdueHandling } from './policy';
import type { AttemptStatus, RunningStatus } from './status';

/**
 * One quiz attempt, as the service holds it. Times are epoch milliseconds; answers map a question
 * id to the answer's JSON text (kept as text so it is stored and returned without re-encoding).
 */
export interface Attempt {
  id: string;
  userId: string;
  quizId: string | number;
  status: AttemptStatus;
  currentQuestion: number;
  answers: Map<string, string>;
  version: number;
  timeLimitSeconds: number;
  startedAt: number;
  expiresAt: number | null;
  lastUpdated: number;
  completedAt: number | null;
  /** When the attempt closed (completed, expired at its deadline, or abandoned). */
  endedAt: number | null;
  /** Which of the user's attempts at the quiz this is, counting from 1. */
  attemptNumber: number;
  /** Who submitted it: the student (complete), the timer (autosubmit at the deadline); null until then. */
  submittedBy: SubmittedBy | null;
  /** When a proctor paused it; null unless paused. */
  pausedAt: number | null;
  /** The status a resume returns to; null unless paused. */
  pausedFrom: RunningStatus | null;
  /** Seconds granted live by extensions, in total. */
  extraTimeSeconds: number;
  /** What its deadline does (the quiz policy's, when it started). */
  overdueHandling: OverdueHandling;
  /** With graceperiod: the grace after the deadline; else null. */
  gracePeriodSeconds: number | null;
  /** The seq of its latest event (events.ts); not shown in the attempt's JSON. */
  eventSeq: number;
}

/** The fields of an attempt that no proctor has touched, on a quiz whose deadline expires it, with no event yet. */
export const UNCONTROLLED: Pick<
  Attempt,
  'pausedAt' | 'pausedFrom' | 'extraTimeSeconds' | 'overdueHandling' | 'gracePeriodSeconds' | 'eventSeq'
> = {
  pausedAt: null,
  pausedFrom: null,
  extraTimeSeconds: 0,
  overdueHandling: 'expire',
  gracePeriodSeconds: null,
  eventSeq: 0,
};

/** Who submitted a completed attempt. */
export type SubmittedBy = 'student' | 'timer';

/**
 * Answers as the JSON object text Redis rendered them in (the hot path never splits them): a Map
 * whose entries are parsed only if something asks for them.
 */
export class RenderedAnswers extends Map<string, string> {
  private pending: string | null;

  constructor(json: string) {
    super();
    this.pending = json;
  }

  /** The JSON object text, while the entries are untouched; null once they were read or changed. */
  text(): string | null {
    return this.pending;
  }

  private load(): void {
    if (this.pending === null) return;
    const parsed = JSON.parse(this.pending) as Record<string, unknown>;
    this.pending = null;
    for (const questionId of Object.keys(parsed)) super.set(questionId, JSON.stringify(parsed[questionId]));
  }

  override get size(): number {
    this.load();
    return super.size;
  }
  override get(key: string): string | undefined {
    this.load();
    return super.get(key);
  }
  override has(key: string): boolean {
    this.load();
    return super.has(key);
  }
  override set(key: string, value: string): this {
    this.load();
    return super.set(key, value);
  }
  override delete(key: string): boolean {
    this.load();
    return super.delete(key);
  }
  override clear(): void {
    this.pending = null;
    super.clear();
  }
  override forEach(fn: (value: string, key: string, map: Map<string, string>) => void, thisArg?: unknown): void {
    this.load();
    super.forEach(fn, thisArg);
  }
  override entries(): MapIterator<[string, string]> {
    this.load();
    return super.entries();
  }
  override keys(): MapIterator<string> {
    this.load();
    return super.keys();
  }
  override values(): MapIterator<string> {
    this.load();
    return super.values();
  }
  override [Symbol.iterator](): MapIterator<[string, string]> {
    this.load();
    return super[Symbol.iterator]();
  }
}

/** The attempt's answers as one JSON object text, built from the stored answer texts. */
export function answersJson(answers: Map<string, string>): string {
  const rendered = answers instanceof RenderedAnswers ? answers.text() : null;
  if (rendered !== null) return rendered;
  let out = '{';
  let first = true;
  for (const [questionId, answer] of answers) {
    out += (first ? '' : ',') + JSON.stringify(questionId) + ':' + answer;
    first = false;
  }
  return out + '}';
}

const isoOrNull = (ms: number | null): string => (ms === null ? 'null' : `"${isoTime(ms)}"`);

/** Text JSON would write as it is: no quote, backslash, control character or surrogate. */
const PLAIN_TEXT = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** A JSON string or number, as JSON.stringify writes it (plain text, the usual id, without its escaping walk). */
const jsonValue = (v: string | number): string => (typeof v === 'string' && PLAIN_TEXT.test(v) ? `"${v}"` : JSON.stringify(v));

/**
 * The attempt's public JSON (snake_case, as in the seeds) at `now`, as text. Written out by hand:
 * it is on every response, and only user_id and quiz_id need escaping (the id is a UUID, the
 * status an enum, the rest numbers and ISO dates).
 */
export function attemptJson(attempt: Attempt, now: number): string {
  const a = presentAt(attempt, now);
  const remaining = timeRemaining(a, now);
  return (
    `{"id":"${a.id}","user_id":${jsonValue(a.userId)},"quiz_id":${jsonValue(a.quizId)},"status":"${a.status}"` +
    `,"current_question":${a.currentQuestion},"version":${a.version},"time_limit_seconds":${a.timeLimitSeconds}` +
    `,"time_remaining":${remaining === null ? 'null' : remaining},"started_at":${isoOrNull(a.startedAt)}` +
    `,"expires_at":${isoOrNull(a.expiresAt)},"last_updated":${isoOrNull(a.lastUpdated)},"completed_at":${isoOrNull(a.completedAt)}` +
    `,"attempt_number":${a.attemptNumber},"submitted_by":${a.submittedBy === null ? 'null' : `"${a.submittedBy}"`}` +
    `,"paused_at":${isoOrNull(a.pausedAt)},"extra_time_seconds":${a.extraTimeSeconds}` +
    `,"answers":${answersJson(a.answers)}}`
  );
}
