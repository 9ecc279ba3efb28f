import fc from 'fast-check';
import { assertProperty } from './support/property';
import { parseProgressBody, progressBodyShape } from '../src/api/schemas/session';
import { parse, withSeedNames } from '../src/api/validate';
import { ValidationError } from '../src/shared/errors';
import { answerText, answersMapText, hostileValueText, idText, numberToken, objectText, validIdText } from './support/hostileArbitraries';
import { referenceProgressBody } from './support/progressReference';

/*
 * parseProgressBody is the one progress validator. Over arbitrary bodies it gives exactly what the
 * zod pipeline it replaced gave (test/support/progressReference.ts): the same result, answers in
 * the same order, or a refusal naming the same field. And the documented shape (progressBodyShape,
 * the OpenAPI document) takes every body it takes.
 */

/** A validator's result, or the field its refusal names. */
function verdict(run: () => unknown): unknown {
  try {
    return run();
  } catch (err) {
    if (err instanceof ValidationError) return { refused: err.field };
    throw err;
  }
}
const viaValidator = (body: unknown) => verdict(() => parseProgressBody(body));
const viaReference = (body: unknown) => verdict(() => parse(referenceProgressBody, body));
const refused = (v: unknown): boolean => typeof v === 'object' && v !== null && 'refused' in v;

const field = (name: string, value: fc.Arbitrary<string>) =>
  fc.option(
    value.map((v) => [name, v] as const),
    { nil: undefined, freq: 2 },
  );

/** Progress bodies as JSON text: the fields with valid and hostile values, sometimes an alias or an unknown field. */
const bodyText: fc.Arbitrary<string> = fc
  .tuple(
    field(
      'question_id',
      fc.oneof(
        validIdText().map((s) => JSON.stringify(s)),
        idText.map((s) => JSON.stringify(s)),
        numberToken,
        hostileValueText,
      ),
    ),
    field('answer', answerText),
    field('answers', fc.oneof({ weight: 3, arbitrary: answersMapText }, { weight: 1, arbitrary: hostileValueText })),
    field('current_question', fc.oneof(fc.integer({ min: -2, max: 10_002 }).map(String), numberToken, hostileValueText)),
    field('version', fc.oneof(fc.integer({ min: -2, max: 50 }).map(String), numberToken, hostileValueText)),
    fc.option(
      fc.constantFrom(
        ['questionId', '"q1"'],
        ['currentQuestion', '3'],
        ['expectedVersion', '2'],
        ['extra', '1'],
        ['constructor', '{}'],
      ) as fc.Arbitrary<readonly [string, string]>,
      { nil: undefined, freq: 4 },
    ),
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

test('on arbitrary progress bodies the validator gives what the zod pipeline gave: the result, or the field refused', () => {
  let accepted = 0;
  assertProperty(
    fc.property(fc.oneof(bodyText, validBodyText), (text) => {
      const body: unknown = JSON.parse(text);
      const mine = viaValidator(body);
      const reference = viaReference(body);
      expect(mine).toEqual(reference);
      if (!refused(mine)) {
        accepted++;
        // same order too
        expect([...(mine as { answers: Map<string, string> }).answers]).toEqual([
          ...(reference as { answers: Map<string, string> }).answers,
        ]);
        // the documented shape takes what the validator takes
        expect(progressBodyShape.safeParse(withSeedNames(body)).success).toBe(true);
      }
    }),
    { numRuns: 5000 },
  );
  expect(accepted).toBeGreaterThan(1000); // the arbitraries do reach valid bodies, often
});

test('the shapes clients send are taken', () => {
  const cases: unknown[] = [
    { question_id: 'q1', answer: { choice: 2 }, version: 3 },
    { question_id: 7, answer: 'B', current_question: 8 },
    { answers: { q1: 'A', q2: [1, 2] }, current_question: 2, version: 1 },
    { current_question: 0 },
    { question_id: 'q1', answer: null },
    // aliases
    { questionId: 'q1', answer: 1 },
  ];
  for (const body of cases) {
    expect(refused(viaValidator(body))).toBe(false);
    expect(viaValidator(body)).toEqual(viaReference(body));
  }
});

test('a field the contract does not define is refused by name, a typo with the field it looks like', () => {
  expect(viaValidator({ current_question: 1, note: 'x' })).toEqual({ refused: 'note' });
  // the typo that would have turned the version check off
  expect(() => parseProgressBody({ versoin: 1, question_id: 'q1', answer: 'A' })).toThrow(
    'versoin: unknown field (did you mean version?); this request takes question_id, answer, answers, current_question, version',
  );
  expect(() => parseProgressBody({ Version: 1, question_id: 'q1', answer: 'A' })).toThrow('(did you mean version?)');
  expect(() => parseProgressBody({ question_id: 'q1', answer: 'A', current_questoin: 2 })).toThrow('(did you mean current_question?)');
  expect(() => parseProgressBody({ question_id: 'q1', answer: 'A', qid: 2 })).toThrow(/^qid: unknown field; this request takes/);
  // an alias is a field, not an unknown one
  expect(refused(viaValidator({ expectedVersion: 2, currentQuestion: 1 }))).toBe(false);
});

test('everything else is refused, naming the field', () => {
  const cases: Array<[unknown, string]> = [
    [null, 'body'],
    [[], 'body'],
    ['x', 'body'],
    [{}, 'body'],
    [{ question_id: 'q1' }, 'answer'],
    [{ answer: 1 }, 'question_id'],
    [{ question_id: '', answer: 1 }, 'question_id'],
    [{ question_id: 'a\u0000', answer: 1 }, 'question_id'],
    [{ question_id: '\ud800', answer: 1 }, 'question_id'],
    [{ question_id: 'q'.repeat(129), answer: 1 }, 'question_id'],
    [{ question_id: -1, answer: 1 }, 'question_id'],
    [{ question_id: 1.5, answer: 1 }, 'question_id'],
    [{ current_question: 10_001 }, 'current_question'],
    [{ current_question: -1 }, 'current_question'],
    [{ version: 0 }, 'version'],
    [{ version: 2 ** 31 }, 'version'],
    [{ answers: [] }, 'answers'],
    [{ answers: null }, 'answers'],
    [{ answers: { 'a\u0001': 1 } }, 'answers.a\u0001'],
    [{ answers: { q: 'x'.repeat(5000) } }, 'answers.q'],
    [{ question_id: 'q', answer: '\u0000' }, 'answer'],
    [{ answers: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])) }, 'answers'],
  ];
  for (const [body, field] of cases) {
    expect(viaValidator(body)).toEqual({ refused: field });
    expect(viaReference(body)).toEqual({ refused: field });
  }
});
