import { LIMITS } from '../../src/shared/limits';

/*
 * What the HTTP contract accepts, written from issue 2, the README's limits and the documented
 * aliases, independently of the zod schemas: the hostile-input tests derive every expected status
 * from these rules instead of accepting whatever the service answers.
 */

/** C0 controls and DEL: never allowed in ids (the schema's "printable"). */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** A UTF-16 surrogate without its partner: not Unicode text, and not storable as UTF-8. */
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** An attempt id as the service issues them (a UUID v4); case does not matter in a path. */
export const UUID_V4_ANY_CASE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
/** A request id the service echoes; anything else is replaced by a fresh one. */
export const WELL_FORMED_REQUEST_ID = /^[A-Za-z0-9-]{1,64}$/;

/** camelCase spellings the service accepts for its snake_case fields (src/api/validate.ts). */
export const FIELD_ALIASES: ReadonlyArray<readonly [alias: string, name: string]> = [
  ['userId', 'user_id'],
  ['quizId', 'quiz_id'],
  ['timeLimitSeconds', 'time_limit_seconds'],
  ['questionId', 'question_id'],
  ['currentQuestion', 'current_question'],
  ['expectedVersion', 'version'],
];

/** The contract's verdict on an input: accepted with what it means, or refused naming the fields at fault. */
export type Verdict<T> = { ok: true; value: T } | { ok: false; fields: string[] };

const refuse = (...fields: string[]): { ok: false; fields: string[] } => ({ ok: false, fields });
const has = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

/** True for a JSON object (not an array, not null). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** An integer in [min, max]. */
export function isIntIn(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/**
 * Characters as the README's limits count them: Unicode code points (as PostgreSQL's varchar(128)
 * columns do), not UTF-16 units, so an astral character such as an emoji is one.
 */
export function characters(s: string): number {
  return [...s].length;
}

/** Opaque id text: 1..128 characters (code points) of well-formed Unicode, no control characters. */
export function isIdText(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 1 && characters(v) <= LIMITS.idLength && !CONTROL.test(v) && !LONE_SURROGATE.test(v);
}

/** A quiz id: id text, or a non-negative safe integer. */
export function isIdOrIndex(v: unknown): v is string | number {
  return isIdText(v) || isIntIn(v, 0, Number.MAX_SAFE_INTEGER);
}

/**
 * Question id text: id text other than `__proto__`, which is refused as a question id however it
 * comes (as question_id, or as a key of answers, which the body parser refuses), so that an
 * attempt never renders answers a client cannot send back.
 */
export function isQuestionIdText(v: unknown): v is string {
  return isIdText(v) && v !== '__proto__';
}

/** A question id: question id text, or a non-negative safe integer. */
export function isQuestionId(v: unknown): v is string | number {
  return isQuestionIdText(v) || isIntIn(v, 0, Number.MAX_SAFE_INTEGER);
}

/** True when some object in `value` has an own `__proto__` key (as JSON.parse makes them). */
export function hasProtoKey(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (has(v, '__proto__')) return true;
    for (const key of Object.keys(v)) stack.push((v as Record<string, unknown>)[key]);
  }
  return false;
}

/** Nesting levels of arrays and objects in `value` (a scalar is 0, `[]` is 1). */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    for (const key of Object.keys(v)) stack.push([(v as Record<string, unknown>)[key], depth + 1]);
  }
  return deepest;
}

/** Text an answer may not hold: a NUL (PostgreSQL cannot store it) or a lone surrogate (not Unicode). */
const unstorable = (s: string): boolean => s.includes('\u0000') || LONE_SURROGATE.test(s);

/**
 * Why the contract refuses an answer (too deep, a NUL or a lone surrogate in a string or key, too
 * large as JSON text), or null.
 */
export function answerProblem(value: unknown): 'deep' | 'text' | 'big' | null {
  if (nestingDepth(value) > LIMITS.answerDepth) return 'deep';
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string' && unstorable(v)) return 'text';
    if (v === null || typeof v !== 'object') continue;
    for (const key of Object.keys(v)) {
      if (unstorable(key)) return 'text';
      stack.push((v as Record<string, unknown>)[key]);
    }
  }
  return Buffer.byteLength(JSON.stringify(value)) > LIMITS.answerBytes ? 'big' : null;
}

/** The value JSON round-trips to (what the service stores): -0 becomes 0, 1e999 becomes null. */
export function jsonNormal(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value) ?? 'null');
}

/**
 * The body with camelCase aliases renamed to snake_case, or the fields given both ways with
 * different values (refused).
 */
function unalias(body: Record<string, unknown>): Verdict<Record<string, unknown>> {
  const out: Record<string, unknown> = { ...body };
  const clashes: string[] = [];
  for (const [alias, name] of FIELD_ALIASES) {
    if (!has(body, alias)) continue;
    if (has(body, name) && JSON.stringify(body[name]) !== JSON.stringify(body[alias])) clashes.push(name);
    out[name] = body[alias];
    delete out[alias];
  }
  return clashes.length > 0 ? refuse(...clashes) : { ok: true, value: out };
}

/** A parsed request body before field rules: a JSON object with no `__proto__` key, aliases resolved. */
function bodyObject(body: unknown): Verdict<Record<string, unknown>> {
  if (hasProtoKey(body) || !isJsonObject(body)) return refuse('body');
  return unalias(body);
}

/** The fields each body takes (issue 16: any other is refused, by name); aliases are renamed first. */
export const BODY_FIELDS = {
  start: ['user_id', 'quiz_id', 'time_limit_seconds'],
  progress: ['question_id', 'answer', 'answers', 'current_question', 'version'],
  close: ['version'],
} as const;

/** The keys of an (unaliased) body that are none of `fields`. */
function unknownKeys(b: Record<string, unknown>, fields: readonly string[]): string[] {
  return Object.keys(b).filter((k) => !fields.includes(k));
}

/** A verdict with the body's unknown fields refused too (the service names one of them, or of the others). */
function withUnknown<T>(verdict: Verdict<T>, unknown: string[]): Verdict<T> {
  if (unknown.length === 0) return verdict;
  return refuse(...unknown, ...(verdict.ok ? [] : verdict.fields));
}

/** What an accepted start means. */
export interface StartInput {
  userId: string;
  quizId: string | number;
  timeLimitSeconds?: number;
}

/** POST .../start (no token): user_id and quiz_id required, time_limit_seconds optional. */
export function startVerdict(parsedBody: unknown): Verdict<StartInput> {
  const object = bodyObject(parsedBody);
  if (!object.ok) return object;
  return withUnknown(startFields(object.value), unknownKeys(object.value, BODY_FIELDS.start));
}

function startFields(b: Record<string, unknown>): Verdict<StartInput> {
  const wrong: string[] = [];
  if (has(b, 'user_id') && !isIdText(b.user_id)) wrong.push('user_id');
  if (!has(b, 'quiz_id') || !isIdOrIndex(b.quiz_id)) wrong.push('quiz_id');
  if (has(b, 'time_limit_seconds') && !isIntIn(b.time_limit_seconds, 0, LIMITS.timeLimitSeconds)) wrong.push('time_limit_seconds');
  if (wrong.length > 0) return refuse(...wrong);
  if (!has(b, 'user_id')) return refuse('user_id');
  return {
    ok: true,
    value: {
      userId: b.user_id as string,
      quizId: b.quiz_id as string | number,
      timeLimitSeconds: b.time_limit_seconds as number | undefined,
    },
  };
}

/** What an accepted progress write means: answers in the order they apply, current question, version. */
export interface ProgressInput {
  answers: Array<[questionId: string, answer: unknown]>;
  currentQuestion?: number;
  version?: number;
}

/**
 * PATCH/PUT .../progress: any of question_id + answer (together), answers (an object of at most 100
 * entries, each question id text -> an answer within the limits), current_question, at least one answer or
 * current_question in all; optional version.
 */
export function progressVerdict(parsedBody: unknown): Verdict<ProgressInput> {
  const object = bodyObject(parsedBody);
  if (!object.ok) return object;
  return withUnknown(progressFields(object.value), unknownKeys(object.value, BODY_FIELDS.progress));
}

function progressFields(b: Record<string, unknown>): Verdict<ProgressInput> {
  const wrong: string[] = [];
  if (has(b, 'question_id') && !isQuestionId(b.question_id)) wrong.push('question_id');
  if (has(b, 'answers') && !isJsonObject(b.answers)) wrong.push('answers');
  if (has(b, 'current_question') && !isIntIn(b.current_question, 0, LIMITS.currentQuestion)) wrong.push('current_question');
  if (has(b, 'version') && !isIntIn(b.version, 1, LIMITS.version)) wrong.push('version');
  if (wrong.length > 0) return refuse(...wrong);

  if (has(b, 'question_id') && !has(b, 'answer')) wrong.push('answer');
  if (has(b, 'answer') && !has(b, 'question_id')) wrong.push('question_id');
  const answers: Array<[string, unknown]> = [];
  if (has(b, 'answers')) {
    const entries = Object.entries(b.answers as Record<string, unknown>);
    if (entries.length > LIMITS.answersPerRequest) return refuse(...wrong, 'answers');
    for (const [questionId, answer] of entries) {
      if (!isQuestionIdText(questionId) || answerProblem(answer) !== null) wrong.push('answers');
      else answers.push([questionId, answer]);
    }
  }
  if (has(b, 'question_id') && has(b, 'answer')) {
    if (answerProblem(b.answer) !== null) wrong.push('answer');
    else answers.push([String(b.question_id), b.answer]);
  }
  // the per-request limit counts every answer the request carries: the map's and the single one
  // (distinct question ids, as a later one for the same id replaces the earlier)
  if (new Set(answers.map(([questionId]) => questionId)).size > LIMITS.answersPerRequest) wrong.push('answers');
  // a write must change something: an empty answers map alone is not a write
  if (!has(b, 'question_id') && !has(b, 'current_question') && answers.length === 0) wrong.push('body');
  if (wrong.length > 0) return refuse(...wrong);
  return {
    ok: true,
    value: { answers, currentQuestion: b.current_question as number | undefined, version: b.version as number | undefined },
  };
}

/** POST .../complete and .../abandon: an optional version. */
export function closeVerdict(parsedBody: unknown): Verdict<{ version?: number }> {
  const object = bodyObject(parsedBody);
  if (!object.ok) return object;
  const b = object.value;
  const verdict: Verdict<{ version?: number }> =
    has(b, 'version') && !isIntIn(b.version, 1, LIMITS.version)
      ? refuse('version')
      : { ok: true, value: { version: b.version as number | undefined } };
  return withUnknown(verdict, unknownKeys(b, BODY_FIELDS.close));
}

/**
 * An If-Match header: absent, empty or `*` expect nothing; `5`, `"5"` and `W/"5"` expect version 5;
 * anything else is refused.
 */
export function ifMatchVerdict(header: string | undefined): Verdict<number | undefined> {
  const value = (header ?? '').trim();
  if (value === '' || value === '*') return { ok: true, value: undefined };
  const match = /^(?:W\/"(\d+)"|"(\d+)"|(\d+))$/.exec(value);
  const version = match ? Number(match[1] ?? match[2] ?? match[3]) : NaN;
  return isIntIn(version, 1, LIMITS.version) ? { ok: true, value: version } : refuse('If-Match');
}

/** The version a write expects from its body and If-Match together; both given and different is refused. */
export function expectedVersionVerdict(fromBody: number | undefined, header: string | undefined): Verdict<number | undefined> {
  const fromHeader = ifMatchVerdict(header);
  if (!fromHeader.ok) return fromHeader;
  if (fromBody !== undefined && fromHeader.value !== undefined && fromBody !== fromHeader.value) return refuse('version');
  return { ok: true, value: fromHeader.value ?? fromBody };
}
