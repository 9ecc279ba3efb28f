import fc from 'fast-check';
import { assertProperty } from './support/property';
import { fastProgressBody, progressBody } from '../src/api/schemas/session';
import { parse } from '../src/api/validate';
import { answerText, answersMapText, hostileValueText, idText, numberToken, objectText, validIdText } from './support/hostileArbitraries';

/*
 * fastProgressBody is the progress route's way around zod for the common body. It must never take a
 * body progressBody refuses, and must give exactly progressBody's result for every body it takes.
 */

/** progressBody's result, or 'refused'. */
function viaZod(body: unknown): unknown {
  try {
    return parse(progressBody, body);
  } catch {
    return 'refused';
  }
}

const field = (name: string, value: fc.Arbitrary<string>) => fc.option(value.map((v) => [name, v] as const), { nil: undefined, freq: 2 });

/** Progress bodies as JSON text: the fields with valid and hostile values, sometimes an alias or an unknown field. */
const bodyText: fc.Arbitrary<string> = fc
  .tuple(
    field('question_id', fc.oneof(validIdText().map((s) => JSON.stringify(s)), idText.map((s) => JSON.stringify(s)), numberToken, hostileValueText)),
    field('answer', answerText),
    field('answers', fc.oneof({ weight: 3, arbitrary: answersMapText }, { weight: 1, arbitrary: hostileValueText })),
    field('current_question', fc.oneof(fc.integer({ min: -2, max: 10_002 }).map(String), numberToken, hostileValueText)),
    field('version', fc.oneof(fc.integer({ min: -2, max: 50 }).map(String), numberToken, hostileValueText)),
    fc.option(fc.constantFrom(['questionId', '"q1"'], ['currentQuestion', '3'], ['expectedVersion', '2'], ['extra', '1'], ['constructor', '{}']) as fc.Arbitrary<readonly [string, string]>, { nil: undefined, freq: 4 }),
  )
  .map((entries) => objectText(entries.filter((e): e is readonly [string, string] => e !== undefined)));

/** Bodies the contract accepts, in every combination of fields, usually with answers it takes. */
const validBodyText: fc.Arbitrary<string> = fc
  .record(
    {
      question_id: fc.oneof(validIdText(), fc.integer({ min: 0, max: 1000 })),
      answer: fc.jsonValue({ maxDepth: 3 }),
      answers: fc.dictionary(validIdText(20), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }),
      current_question: fc.integer({ min: 0, max: 10_000 }),
      version: fc.integer({ min: 1, max: 2_147_483_647 }),
    },
    { requiredKeys: [] },
  )
  .map((body) => JSON.stringify(body));

test('on arbitrary progress bodies the fast path takes only what progressBody takes, with the same result', () => {
  let taken = 0;
  assertProperty(
    fc.property(fc.oneof(bodyText, validBodyText), (text) => {
      const body: unknown = JSON.parse(text);
      const fast = fastProgressBody(body);
      const zod = viaZod(body);
      if (fast !== null) {
        taken++;
        expect(zod).not.toBe('refused');
        expect(fast).toEqual(zod);
        expect([...fast.answers]).toEqual([...(zod as { answers: Map<string, string> }).answers]); // same order too
      }
    }),
    { numRuns: 5000 },
  );
  expect(taken).toBeGreaterThan(1000); // the arbitraries do reach the fast path, often
});

test('the shapes clients send are taken by the fast path', () => {
  const cases: unknown[] = [
    { question_id: 'q1', answer: { choice: 2 }, version: 3 },
    { question_id: 7, answer: 'B', current_question: 8 },
    { answers: { q1: 'A', q2: [1, 2] }, current_question: 2, version: 1 },
    { current_question: 0 },
    { question_id: 'q1', answer: null },
  ];
  for (const body of cases) {
    expect(fastProgressBody(body)).not.toBeNull();
    expect(fastProgressBody(body)).toEqual(viaZod(body));
  }
});

test('everything else goes to progressBody, which names the field', () => {
  const refused: unknown[] = [
    null, [], 'x', {},
    { question_id: 'q1' }, { answer: 1 }, { question_id: '', answer: 1 }, { question_id: 'a\u0000', answer: 1 },
    { question_id: '\ud800', answer: 1 }, { question_id: 'q'.repeat(129), answer: 1 }, { question_id: -1, answer: 1 },
    { question_id: 1.5, answer: 1 }, { current_question: 10_001 }, { current_question: -1 }, { version: 0 }, { version: 2 ** 31 },
    { answers: [] }, { answers: null }, { answers: { 'a\u0001': 1 } }, { answers: { q: 'x'.repeat(5000) } },
    { question_id: 'q', answer: '\u0000' }, { answers: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])) },
  ];
  for (const body of refused) {
    expect(fastProgressBody(body)).toBeNull();
    expect(viaZod(body)).toBe('refused');
  }
  // taken by progressBody (aliases, unknown fields stripped), not by the fast path
  for (const body of [{ questionId: 'q1', answer: 1 }, { current_question: 1, note: 'x' }]) {
    expect(fastProgressBody(body)).toBeNull();
    expect(viaZod(body)).not.toBe('refused');
  }
});
