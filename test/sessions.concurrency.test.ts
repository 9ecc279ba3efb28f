import { buildSession, startTestApi, type TestApi } from './support/harness';
import { expectError } from './support/contract';
import { questionId } from './support/factories';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';
import { sessionClient } from './support/http';

let api: TestApi;
beforeAll(async () => {
  // the race is about versions, not timeouts: on a loaded CI machine 50 writes at once can wait
  // past the default 1 s command timeout, and a timed-out winner (applied, answered 503) would
  // look like no winner
  api = await startTestApi({ REDIS_COMMAND_TIMEOUT_MS: 10_000 });
});
afterAll(async () => {
  await api.close();
});

describe.each(SESSION_PREFIXES)('concurrent writes on %s', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('50 concurrent writes carrying the same version: exactly one 200, 49 × 409, final version + 1', async () => {
    const s = await buildSession(api, {}, prefix);
    // move the attempt off version 1 first, so the race is about a version that is not the initial one
    const warm = await client().progress(s.id, { current_question: 1 });
    const v = warm.body.version as number;

    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client().progress(s.id, { question_id: `racer-${i}`, answer: i, version: v })),
    );

    const statuses: Record<number, number> = {};
    for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    expect(statuses).toEqual({ 200: 1, 409: 49 });
    const winners = results.filter((r) => r.status === 200);
    const losers = results.filter((r) => r.status === 409);
    expect(winners[0].body.version).toBe(v + 1);
    for (const loser of losers) {
      const body = expectError(loser, 409, 'SESSION_CONFLICT');
      expect(loser.headers.get('retry-after')).toBe('1');
      // every loser lost to the one winner, and is shown exactly its state
      expect(body.session).toEqual({ ...winners[0].body, time_remaining: expect.any(Number) });
    }

    const final = await client().get(s.id);
    expect(final.body.version).toBe(v + 1);
    expect(Object.keys(final.body.answers)).toEqual(Object.keys(winners[0].body.answers));
    expect(Object.keys(final.body.answers)).toHaveLength(1);
  });

  test('10 concurrent unversioned writes all apply: final version + 10 and every answer present', async () => {
    const s = await buildSession(api, {}, prefix);
    const v = s.version;
    const q = questionId();

    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => client().progress(s.id, { question_id: `${q}-${i}`, answer: i })),
    );

    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    // each write saw a distinct version: none was lost or applied twice
    expect(results.map((r) => r.body.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => v + 1 + i));
    const final = await client().get(s.id);
    expect(final.body.version).toBe(v + 10);
    expect(final.body.answers).toEqual(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`${q}-${i}`, i])));
  });

  test('concurrent complete and progress: the completed attempt keeps whatever progress landed before it', async () => {
    const s = await buildSession(api, {}, prefix);
    const [written, completed] = await Promise.all([client().progress(s.id, { question_id: 'q1', answer: 'A' }), client().complete(s.id)]);
    expect(completed.status).toBe(200);
    if (written.status === 200) {
      expect(completed.body).toMatchObject({ version: 3, answers: { q1: 'A' } });
    } else {
      expectError(written, 409, 'SESSION_COMPLETED');
      expect(completed.body).toMatchObject({ version: 2, answers: {} });
    }
  });
});
