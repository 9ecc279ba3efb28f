import { z } from 'zod';
import { ValidationError } from '../../shared/errors';
import { LIMITS } from '../../shared/limits';
import { refuseUnknownFields, withSeedNames } from '../validate';

/** False for text with a lone UTF-16 surrogate, which has no UTF-8 form (PostgreSQL refuses it). */
const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Non-empty text without control characters (PostgreSQL cannot store NUL): ids are opaque but printable. */
const PRINTABLE = /^[^\u0000-\u001f\u007f]+$/;

// ids are opaque text: printable, bounded, no control characters
export const text = (name: string) =>
  z
    .string()
    .min(1, `${name} must not be empty`)
    .max(LIMITS.idLength, `${name} must be at most ${LIMITS.idLength} characters`)
    .regex(PRINTABLE, `${name} must not contain control characters`)
    .refine(wellFormed, `${name} must be valid Unicode (no lone surrogates)`);

/** A UUID v4, any case. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The message of an invalid path id. */
export const SESSION_ID_MESSAGE = 'id must be a UUID v4';

/** An attempt id in a path: a UUID v4 (the schema the OpenAPI document shows; the route checks UUID_V4). */
export const sessionIdParam = z
  .string()
  .regex(UUID_V4, SESSION_ID_MESSAGE)
  .transform((s) => s.toLowerCase());

/** A version a client expects the attempt to be at. */
export const versionSchema = z.number().int().min(1).max(LIMITS.version);

/** POST .../start */
export const startBody = z.strictObject({
  user_id: text('user_id').optional().meta({
    description:
      'Required unless the request carries a student token, whose subject is then the user (a different user_id is refused with 403)',
  }),
  quiz_id: z.union([text('quiz_id'), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]),
  time_limit_seconds: z.number().int().min(0).max(LIMITS.timeLimitSeconds).optional(),
});

/** Question id text: `__proto__` is refused here as the body parser refuses it as a key. */
const questionIdText = text('question_id').refine((s) => s !== '__proto__', 'question_id must not be "__proto__"');

/** A question id: text, or a non-negative integer (stored as its decimal text). */
const questionId = z.union([questionIdText, z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]).transform(String);

/** Any JSON value; its size, depth and content are checked (iteratively) when it is encoded. */
const answerValue = z
  .unknown()
  .meta({ description: `Any JSON value, at most ${LIMITS.answerBytes} bytes and ${LIMITS.answerDepth} levels deep` });

/**
 * The JSON text of an answer, or why it is refused: too large, too deep, or holding a NUL
 * character (which PostgreSQL's jsonb cannot store). The walk is iterative, so no input can
 * exhaust the stack.
 */
export function encodeAnswer(value: unknown): { text: string } | { error: string } {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++nodes > LIMITS.answerBytes) return { error: `is larger than ${LIMITS.answerBytes} bytes` };
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return { error: 'must not contain NUL characters' };
      if (!wellFormed(v)) return { error: 'must be valid Unicode (no lone surrogates)' };
    } else if (v !== null && typeof v === 'object') {
      if (depth >= LIMITS.answerDepth) return { error: `is nested deeper than ${LIMITS.answerDepth} levels` };
      if (Array.isArray(v)) for (const item of v) stack.push([item, depth + 1]);
      else
        for (const key of Object.keys(v)) {
          if (key.includes('\u0000')) return { error: 'must not contain NUL characters' };
          if (!wellFormed(key)) return { error: 'must be valid Unicode (no lone surrogates)' };
          stack.push([(v as Record<string, unknown>)[key], depth + 1]);
        }
    }
  }
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text) > LIMITS.answerBytes) return { error: `is larger than ${LIMITS.answerBytes} bytes` };
  return { text };
}

/** A map of question id to answer; keys are checked one by one, `__proto__` included, as data. */
const answersMap = z
  .custom<Record<string, unknown>>(
    (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
    'answers must be an object mapping question ids to answers',
  )
  .meta({
    type: 'object',
    additionalProperties: {},
    maxProperties: LIMITS.answersPerRequest,
    propertyNames: { minLength: 1, maxLength: LIMITS.idLength },
    description: `Question id -> answer (any JSON, at most ${LIMITS.answerBytes} bytes, ${LIMITS.answerDepth} levels deep); merged per question`,
  });

/** PATCH/PUT .../progress as documented (the OpenAPI document); parseProgressBody checks it. */
export const progressBodyShape = z.strictObject({
  question_id: questionId.optional(),
  answer: answerValue.optional(),
  answers: answersMap.optional(),
  current_question: z.number().int().min(0).max(LIMITS.currentQuestion).optional(),
  version: versionSchema.optional(),
});

/** The fields a progress body may carry (and their camelCase aliases, renamed first). */
const PROGRESS_FIELDS: ReadonlySet<string> = new Set(Object.keys(progressBodyShape.shape));

/** A progress write as the route hands it to the service: answers encoded, every limit checked. */
export interface ProgressBody {
  /** Question id -> the answer's JSON text, in the order the body gave them (the single answer last). */
  answers: Map<string, string>;
  currentQuestion: number | undefined;
  version: number | undefined;
}

/** At most `max` characters (code points, as zod and PostgreSQL's varchar count), counted only when it matters. */
function atMostCharacters(s: string, max: number): boolean {
  if (s.length <= max) return true;
  return s.length <= 2 * max && [...s].length <= max;
}

/** True for text questionIdText takes: 1..idLength characters, PRINTABLE, well-formed, not `__proto__`. */
function plainQuestionId(s: string): boolean {
  return atMostCharacters(s, LIMITS.idLength) && PRINTABLE.test(s) && wellFormed(s) && s !== '__proto__';
}

const isIntIn = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const hasOwn = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

/** A refusal naming the field: `<field>: <why>`. */
function refuse(field: string, why: string): never {
  throw new ValidationError(`${field}: ${why}`, field);
}

/** Why question id text is refused, as questionIdText words it. */
function questionIdProblem(s: string): string {
  const parsed = questionIdText.safeParse(s);
  return parsed.success ? 'is not a valid question id' : parsed.error.issues[0].message;
}

/** The answer's JSON text, or a refusal naming `field`. */
function encodedAnswer(field: string, value: unknown): string {
  const encoded = encodeAnswer(value);
  if ('error' in encoded) refuse(field, `answer ${encoded.error}`);
  return encoded.text;
}

/**
 * PATCH/PUT .../progress: the one progress validator, on every progress write (hand-written: zod's
 * parse was most of what a write cost above the baseline's). Checks, in this order, naming the
 * first field it finds wrong: each field's type and range (question_id, answers, current_question,
 * version); then question_id and answer together; each entry of answers; the single answer; the
 * per-request answer count; and that the write changes something. A field it does not know is
 * refused by name after the known fields' types and ranges (as zod's strictObject orders it);
 * camelCase aliases are taken (validate.ts).
 */
export function parseProgressBody(input: unknown): ProgressBody {
  const body = withSeedNames(input);
  if (!isMap(body)) refuse('body', 'must be a JSON object');
  const { question_id: questionIdInput, answers: answersInput, current_question: currentQuestion, version } = body;

  let questionId: string | undefined;
  if (questionIdInput !== undefined) {
    if (typeof questionIdInput === 'string') {
      if (!plainQuestionId(questionIdInput)) refuse('question_id', questionIdProblem(questionIdInput));
      questionId = questionIdInput;
    } else if (isIntIn(questionIdInput, 0, Number.MAX_SAFE_INTEGER)) questionId = String(questionIdInput);
    else refuse('question_id', 'must be text or a non-negative integer');
  }
  if (answersInput !== undefined && !isMap(answersInput)) refuse('answers', 'must be an object mapping question ids to answers');
  if (currentQuestion !== undefined && !isIntIn(currentQuestion, 0, LIMITS.currentQuestion)) {
    refuse('current_question', `must be an integer from 0 to ${LIMITS.currentQuestion}`);
  }
  if (version !== undefined && !isIntIn(version, 1, LIMITS.version)) refuse('version', `must be an integer from 1 to ${LIMITS.version}`);
  // then a field it does not know (a typo such as `versoin` would otherwise turn the version check off)
  refuseUnknownFields(body, PROGRESS_FIELDS);

  const hasAnswer = hasOwn(body, 'answer');
  if (questionId !== undefined && !hasAnswer) refuse('answer', 'is required with question_id');
  if (hasAnswer && questionId === undefined) refuse('question_id', 'is required with answer');
  const answers = new Map<string, string>();
  if (answersInput !== undefined) {
    const keys = Object.keys(answersInput);
    if (keys.length > LIMITS.answersPerRequest) refuse('answers', `may hold at most ${LIMITS.answersPerRequest} entries per request`);
    for (const key of keys) {
      if (!plainQuestionId(key)) refuse(`answers.${key}`, questionIdProblem(key));
      answers.set(key, encodedAnswer(`answers.${key}`, answersInput[key]));
    }
  }
  if (questionId !== undefined) answers.set(questionId, encodedAnswer('answer', body.answer));
  if (answers.size > LIMITS.answersPerRequest) refuse('answers', `a request may carry at most ${LIMITS.answersPerRequest} answers`);
  if (answers.size === 0 && currentQuestion === undefined && questionId === undefined) {
    refuse('body', 'progress needs question_id and answer, answers, or current_question');
  }
  return { answers, currentQuestion, version };
}

/** POST .../complete and .../abandon */
export const closeBody = z.strictObject({ version: versionSchema.optional() });

/** The start request, as parsed. */
export type StartBody = z.infer<typeof startBody>;
