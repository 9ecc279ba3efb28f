import { z } from 'zod';
import { encodeAnswer, progressBodyShape } from '../../src/api/schemas/session';
import { LIMITS } from '../../src/shared/limits';

/*
 * The progress validator as it was before it became one hand-written function: zod's
 * progressBodyShape and this transform (src/api/schemas/session.ts up to 2026-12-01). Kept here as
 * the reference the validator is checked against (test/progressValidator.test.ts), so the move
 * changed no verdict and no named field.
 */

/** Question id text, as the schema refused it. */
const questionIdText = z
  .string()
  .min(1)
  .max(LIMITS.idLength)
  .regex(/^[^\u0000-\u001f\u007f]+$/)
  .refine((s) => (s as string & { isWellFormed(): boolean }).isWellFormed())
  .refine((s) => s !== '__proto__');

/** PATCH/PUT .../progress: answers encoded to a question id -> JSON text map, every limit checked. */
export const referenceProgressBody = progressBodyShape.transform((body, ctx) => {
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
  if (body.question_id !== undefined && !hasAnswer)
    ctx.addIssue({ code: 'custom', path: ['answer'], message: 'answer is required with question_id' });
  if (hasAnswer && body.question_id === undefined)
    ctx.addIssue({ code: 'custom', path: ['question_id'], message: 'question_id is required with answer' });
  if (body.answers !== undefined) {
    const keys = Object.keys(body.answers);
    if (keys.length > LIMITS.answersPerRequest) {
      ctx.addIssue({
        code: 'custom',
        path: ['answers'],
        message: `answers may hold at most ${LIMITS.answersPerRequest} entries per request`,
      });
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
