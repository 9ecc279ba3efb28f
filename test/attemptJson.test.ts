import fc from 'fast-check';
import { attemptJson, UNCONTROLLED, type Attempt } from '../src/shared/domain/attempt';
import { assertProperty } from './support/property';

/* attemptJson writes user_id and quiz_id without JSON.stringify when they need no escaping: the text is JSON.stringify's in every case. */

const base = (userId: string, quizId: string | number): Attempt => ({
  id: '6f1c1e2a-3b4c-4d5e-8f60-718293a4b5c6',
  userId,
  quizId,
  status: 'in_progress',
  currentQuestion: 0,
  answers: new Map([['q1', '{"choice":1}']]),
  version: 1,
  timeLimitSeconds: 0,
  startedAt: 1_764_633_600_000,
  expiresAt: null,
  lastUpdated: 1_764_633_600_000,
  completedAt: null,
  endedAt: null,
  attemptNumber: 1,
  submittedBy: null,
  ...UNCONTROLLED,
});

test('user_id and quiz_id: exactly as JSON.stringify writes them, for any text (quotes, controls, lone surrogates) or number', () => {
  const text = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme' }),
    fc.constantFrom('"', '\\', '\u0000', '\u001f', '\ud800', 'a\udc00b', '😀'),
  );
  assertProperty(
    fc.property(text, fc.oneof(text, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), (userId, quizId) => {
      const json = attemptJson(base(userId, quizId), 1_764_633_601_000);
      expect(json).toContain(`"user_id":${JSON.stringify(userId)},"quiz_id":${JSON.stringify(quizId)},`);
      const parsed = JSON.parse(json) as { user_id: string; quiz_id: string | number };
      expect(parsed.user_id).toBe(JSON.parse(JSON.stringify(userId)));
      expect(parsed.quiz_id).toBe(quizId);
    }),
    { numRuns: 5_000 },
  );
});
