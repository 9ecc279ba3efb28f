import { randomUUID } from 'node:crypto';

/** A question id no other test uses. */
export const questionId = (): string => `q-${randomUUID().slice(0, 8)}`;

/** An answers map of `count` distinct questions; answer values differ per question. */
export function buildAnswers(count: number, prefix = questionId()): Record<string, string> {
  const answers: Record<string, string> = {};
  for (let i = 0; i < count; i++) answers[`${prefix}-${i}`] = `answer-${i}`;
  return answers;
}

/** A string answer whose JSON text (quotes included) is exactly `bytes` bytes. */
export const answerOfBytes = (bytes: number): string => 'x'.repeat(bytes - 2);

/** An answer of `levels` nested arrays around a string: levels 8 is the deepest allowed. */
export function nestedAnswer(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

/** `base` padded with a filler character to exactly `length` characters (base kept as the prefix). */
export const padTo = (base: string, length: number): string => base + 'p'.repeat(length - base.length);
