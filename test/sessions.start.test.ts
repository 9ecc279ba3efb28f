import { randomUUID } from 'node:crypto';
import { buildStartBody, sessionRow, sleepUntil, startTestApi, type TestApi } from './support/harness';
import { expectAttemptShape } from './support/contract';
import { sessionKey } from '../src/shared/store/sessionStore';
import { type TestResponse, sessionClient } from './support/http';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ DEFAULT_TIME_LIMIT_SECONDS: 1800 });
});
afterAll(async () => {
  await api.close();
});

/**
 * time_remaining is the whole seconds left at the moment of the response: the full limit when the
 * response comes within a second of the start, as it does unless the machine is loaded, and never
 * less than what is left at `answeredAt` (when the client had the response).
 */
function expectTimeRemainingFrom(res: TestResponse, limitSeconds: number, answeredAt: number): void {
  expect(res.body.time_remaining).toBeLessThanOrEqual(limitSeconds);
  expect(res.body.time_remaining).toBeGreaterThanOrEqual(Math.ceil((Date.parse(res.body.expires_at) - answeredAt) / 1000));
}

describe.each(SESSION_PREFIXES)('POST %s/start', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('creates an attempt: 201 with the full attempt JSON and a 30-minute default deadline', async () => {
    const body = buildStartBody(api);
    const before = Date.now();
    const res = await client().start(body);
    const after = Date.now();

    expect(res.status).toBe(201);
    expectAttemptShape(res.body);
    const a = res.body;
    expect(a).toMatchObject({
      user_id: body.user_id,
      quiz_id: body.quiz_id,
      status: 'started',
      current_question: 0,
      answers: {},
      version: 1,
      time_limit_seconds: 1800,
      completed_at: null,
    });
    expectTimeRemainingFrom(res, 1800, after);
    const started = Date.parse(a.started_at);
    expect(started).toBeGreaterThanOrEqual(before - 5);
    expect(started).toBeLessThanOrEqual(after + 5);
    expect(Date.parse(a.expires_at!)).toBe(started + 1800 * 1000);
    expect(a.last_updated).toBe(a.started_at);
  });

  test('sets Location to the new attempt under the same route family', async () => {
    const res = await client().start(buildStartBody(api));
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${prefix}/${res.body.id}`);
    expect(res.headers.get('etag')).toBe('"1"');
  });

  test('returns an integer quiz_id as an integer, on start and on read', async () => {
    const quizId = 100_000 + Math.floor(Math.random() * 1_000_000);
    const res = await client().start(buildStartBody(api, { quiz_id: quizId }));
    expect(res.status).toBe(201);
    expect(res.body.quiz_id).toBe(quizId);
    const read = await client().get(res.body.id);
    expect(read.body.quiz_id).toBe(quizId);
  });

  test('returns a string quiz_id that looks numeric as a string', async () => {
    const quizId = String(100_000 + Math.floor(Math.random() * 1_000_000));
    const res = await client().start(buildStartBody(api, { quiz_id: quizId }));
    expect(res.status).toBe(201);
    expect(res.body.quiz_id).toBe(quizId);
  });

  test('an untimed attempt (time_limit_seconds 0) has no deadline and no time_remaining', async () => {
    const res = await client().start(buildStartBody(api, { time_limit_seconds: 0 }));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ time_limit_seconds: 0, expires_at: null, time_remaining: null });
    const read = await client().get(res.body.id);
    expect(read.body).toMatchObject({ expires_at: null, time_remaining: null });
  });

  test('a custom time limit sets expires_at and time_remaining from it', async () => {
    const res = await client().start(buildStartBody(api, { time_limit_seconds: 600 }));
    const answeredAt = Date.now();
    expect(res.status).toBe(201);
    expect(Date.parse(res.body.expires_at) - Date.parse(res.body.started_at)).toBe(600_000);
    expectTimeRemainingFrom(res, 600, answeredAt);
  });

  test('the new attempt is durable in PostgreSQL and cached in Redis when acknowledged', async () => {
    const res = await client().start(buildStartBody(api, { time_limit_seconds: 900 }));
    const row = await sessionRow(api, res.body.id);
    expect(row).toMatchObject({ id: res.body.id, user_id: res.body.user_id, status: 'started', version: 1, time_limit_seconds: 900 });
    expect((row!.expires_at as Date).toISOString()).toBe(res.body.expires_at);
    expect(await api.redis.exists(sessionKey(res.body.id))).toBe(1);
  });

  test('resumes: a second start for the same user and quiz returns 200 with the same attempt', async () => {
    const body = buildStartBody(api);
    const first = await client().start(body);
    const second = await client().start(body);
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get('location')).toBe(`${prefix}/${first.body.id}`);
  });

  test('resumes with the latest progress, not the state at start', async () => {
    const body = buildStartBody(api);
    const first = await client().start(body);
    const written = await client().progress(first.body.id, { question_id: 'q1', answer: 'B', current_question: 1, version: 1 });
    expect(written.status).toBe(200);
    const resumed = await client().start(body);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ id: first.body.id, version: 2, status: 'in_progress', current_question: 1, answers: { q1: 'B' } });
  });

  test('the same quiz for another user, or another quiz for the same user, is a new attempt', async () => {
    const body = buildStartBody(api);
    const first = await client().start(body);
    const otherUser = await client().start({ ...body, user_id: api.userId() });
    const otherQuiz = await client().start({ ...body, quiz_id: `quiz-${randomUUID()}` });
    expect([otherUser.status, otherQuiz.status]).toEqual([201, 201]);
    expect(new Set([first.body.id, otherUser.body.id, otherQuiz.body.id]).size).toBe(3);
  });

  test('concurrent starts for the same user and quiz yield exactly one attempt', async () => {
    const body = buildStartBody(api);
    const results = await Promise.all(Array.from({ length: 10 }, () => client().start(body)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(9);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    const rows = await api.knex('quiz_sessions').where({ user_id: body.user_id });
    expect(rows).toHaveLength(1);
  });

  test('a start after the open attempt passed its deadline creates a new attempt and expires the old one in PostgreSQL', async () => {
    const body = buildStartBody(api, { time_limit_seconds: 1 });
    const old = await client().start(body);
    expect(old.status).toBe(201);
    await sleepUntil(Date.parse(old.body.expires_at));

    const fresh = await client().start(body);
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(old.body.id);
    expect(fresh.body).toMatchObject({ status: 'started', version: 1 });
    expect(await sessionRow(api, old.body.id)).toMatchObject({ status: 'expired' });
    expect(await sessionRow(api, fresh.body.id)).toMatchObject({ status: 'started' });
  });

  test('a start after the deadline expires the old attempt even when its Redis copy is gone', async () => {
    const body = buildStartBody(api, { time_limit_seconds: 1 });
    const old = await client().start(body);
    await api.redis.del(sessionKey(old.body.id));
    await sleepUntil(Date.parse(old.body.expires_at));

    const fresh = await client().start(body);
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(old.body.id);
    expect(await sessionRow(api, old.body.id)).toMatchObject({ status: 'expired' });
  });

  test('a start after a write found the deadline passed creates a new attempt and the old row is expired', async () => {
    const body = buildStartBody(api, { time_limit_seconds: 1 });
    const old = await client().start(body);
    await sleepUntil(Date.parse(old.body.expires_at));
    expect((await client().progress(old.body.id, { current_question: 1 })).status).toBe(410);

    const fresh = await client().start(body);
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(old.body.id);
    expect(await sessionRow(api, old.body.id)).toMatchObject({ status: 'expired' });
  });

  test('a start after the open attempt was completed creates a new attempt', async () => {
    const body = buildStartBody(api);
    const old = await client().start(body);
    expect((await client().complete(old.body.id)).status).toBe(200);
    const fresh = await client().start(body);
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(old.body.id);
  });

  test('accepts the camelCase aliases userId, quizId and timeLimitSeconds', async () => {
    const userId = api.userId();
    const res = await client().start({ userId, quizId: 'quiz-camel', timeLimitSeconds: 120 });
    const answeredAt = Date.now();
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ user_id: userId, quiz_id: 'quiz-camel', time_limit_seconds: 120 });
    expect(Date.parse(res.body.expires_at) - Date.parse(res.body.started_at)).toBe(120_000);
    expectTimeRemainingFrom(res, 120, answeredAt);
  });
});
