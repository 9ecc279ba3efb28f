import { z } from 'zod';
import { LIMITS } from '../../shared/limits';

/** False for text with a lone UTF-16 surrogate, which has no UTF-8 form (PostgreSQL refuses it). */
const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Non-empty text without control characters (PostgreSQL cannot store NUL): ids are opaque but printable. */
const PRINTABLE = /^[^\u0000-\u001f\u007f]+$/;

// ids are opaque text: printable, bounded, no control characters
const text = (name: string) =>
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

/** An attempt id in a path: a UUID v4 (the schema the OpenAPI document shows; see parseSessionId). */
export const sessionIdParam = z.string().regex(UUID_V4, SESSION_ID_MESSAGE).transform((s) => s.toLowerCase());

/** A version a client expects the attempt to be at. */
export const versionSchema = z.number().int().min(1).max(LIMITS.version);

/** POST .../start */
export const startBody = z.object({
  user_id: text('user_id')
    .optional()
    .meta({ description: 'Required unless the request carries a student token, whose subject is then the user (a different user_id is refused with 403)' }),
  quiz_id: z.union([text('quiz_id'), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]),
  time_limit_seconds: z.number().int().min(0).max(LIMITS.timeLimitSeconds).optional(),
});

/** Question id text: `__proto__` is refused here as the body parser refuses it as a key. */
const questionIdText = text('question_id').refine((s) => s !== '__proto__', 'question_id must not be "__proto__"');

/** A question id: text, or a non-negative integer (stored as its decimal text). */
const questionId = z.union([questionIdText, z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]).transform(String);

/** Any JSON value; its size, depth and content are checked (iteratively) when it is encoded. */
const answerValue = z.unknown().meta({ description: `Any JSON value, at most ${LIMITS.answerBytes} bytes and ${LIMITS.answerDepth} levels deep` });

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

/** PATCH/PUT .../progress, before its answers are encoded. */
export const progressBodyShape = z.object({
  question_id: questionId.optional(),
  answer: answerValue.optional(),
  answers: answersMap.optional(),
  current_question: z.number().int().min(0).max(LIMITS.currentQuestion).optional(),
  version: versionSchema.optional(),
});

/** PATCH/PUT .../progress: answers encoded to a question id -> JSON text map, every limit checked. */
export const progressBody = progressBodyShape.transform((body, ctx) => {
  const answers = new Map<string, string>();
  const add = (path: (string | number)[], questionId: string, value: unknown) => {
    const encoded = encodeAnswer(value);
    if ('error' in encoded) {
      ctx.addIssue({ code: 'custom', path, message: `answer ${encoded.error}` });
      return;
    }
    answers.set(questionId, encoded.text);
  };
  const hasAnswer = Object.prototype.hasOwnProperty.call(body, 'answer');
  if (body.question_id !== undefined && !hasAnswer) ctx.addIssue({ code: 'custom', path: ['answer'], message: 'answer is required with question_id' });
  if (hasAnswer && body.question_id === undefined) ctx.addIssue({ code: 'custom', path: ['question_id'], message: 'question_id is required with answer' });
  if (body.answers !== undefined) {
    const keys = Object.keys(body.answers);
    if (keys.length > LIMITS.answersPerRequest) {
      ctx.addIssue({ code: 'custom', path: ['answers'], message: `answers may hold at most ${LIMITS.answersPerRequest} entries per request` });
      return z.NEVER;
    }
    for (const key of keys) {
      const parsed = questionIdText.safeParse(key);
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', path: ['answers', key], message: parsed.error.issues[0].message });
        continue;
      }
      add(['answers', key], key, body.answers[key]);
    }
  }
  if (body.question_id !== undefined && hasAnswer) add(['answer'], body.question_id, body.answer);
  if (answers.size > LIMITS.answersPerRequest) {
    ctx.addIssue({ code: 'custom', path: ['answers'], message: `a request may carry at most ${LIMITS.answersPerRequest} answers` });
  }
  if (answers.size === 0 && body.current_question === undefined && body.question_id === undefined) {
    ctx.addIssue({ code: 'custom', path: [], message: 'progress needs question_id and answer, answers, or current_question' });
  }
  return { answers, currentQuestion: body.current_question, version: body.version };
});

const PROGRESS_FIELDS = new Set(['question_id', 'answer', 'answers', 'current_question', 'version']);
/** True for text questionIdText takes: 1..idLength characters, PRINTABLE, well-formed, not `__proto__`. */
function plainQuestionId(s: string): boolean {
  return s.length <= LIMITS.idLength && PRINTABLE.test(s) && wellFormed(s) && s !== '__proto__';
}

const isIntIn = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/**
 * progressBody's result for a body every check of it passes, computed without zod; null for
 * anything else (another field, an alias, a value out of range, an answer refused), which then
 * goes through progressBody itself for the 400 that names the field. Nearly every progress write
 * is the common shape, and zod's parse was most of what a write costs above the baseline's.
 * test/progressFastPath.test.ts checks that both agree on arbitrary input.
 */
export function fastProgressBody(input: unknown): ProgressBody | null {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return null;
  const body = input as Record<string, unknown>;
  for (const key in body) if (!PROGRESS_FIELDS.has(key) || !Object.prototype.hasOwnProperty.call(body, key)) return null;
  const { question_id: questionIdInput, current_question: currentQuestion, version } = body;
  if (currentQuestion !== undefined && !isIntIn(currentQuestion, 0, LIMITS.currentQuestion)) return null;
  if (version !== undefined && !isIntIn(version, 1, LIMITS.version)) return null;
  const hasAnswer = Object.prototype.hasOwnProperty.call(body, 'answer');
  let questionId: string | undefined;
  if (questionIdInput !== undefined) {
    if (typeof questionIdInput === 'string') {
      if (!plainQuestionId(questionIdInput)) return null;
      questionId = questionIdInput;
    } else if (isIntIn(questionIdInput, 0, Number.MAX_SAFE_INTEGER)) questionId = String(questionIdInput);
    else return null;
  }
  if ((questionId !== undefined) !== hasAnswer) return null;
  const answers = new Map<string, string>();
  if (body.answers !== undefined) {
    const map = body.answers;
    if (map === null || typeof map !== 'object' || Array.isArray(map)) return null;
    const keys = Object.keys(map);
    if (keys.length > LIMITS.answersPerRequest) return null;
    for (const key of keys) {
      if (!plainQuestionId(key)) return null;
      const encoded = encodeAnswer((map as Record<string, unknown>)[key]);
      if ('error' in encoded) return null;
      answers.set(key, encoded.text);
    }
  }
  if (questionId !== undefined) {
    const encoded = encodeAnswer(body.answer);
    if ('error' in encoded) return null;
    answers.set(questionId, encoded.text);
  }
  if (answers.size > LIMITS.answersPerRequest) return null;
  if (answers.size === 0 && currentQuestion === undefined && questionId === undefined) return null;
  return { answers, currentQuestion: currentQuestion as number | undefined, version: version as number | undefined };
}

/** POST .../complete and .../abandon */
export const closeBody = z.object({ version: versionSchema.optional() });

/** Parsed request types, inferred from the schemas above. */
export type StartBody = z.infer<typeof startBody>;
export type ProgressBody = z.infer<typeof progressBody>;
export type CloseBody = z.infer<typeof closeBody>;
