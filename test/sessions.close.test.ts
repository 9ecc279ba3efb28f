import { randomUUID } from 'node:crypto';
import { buildSession, sessionRow, sleep, startTestApi, type TestApi } from './support/harness';
import { expectAttemptShape, expectError, expectValidationError } from './support/contract';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';
import { sessionClient } from './support/http';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});

describe.each(SESSION_PREFIXES)('POST %s/:id/complete', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('answers 200 with the completed attempt and its progress', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 }, prefix);
    await client().progress(s.id, { answers: { q1: 'A', q2: 'B' }, current_question: 2 });
    const before = Date.now();
    const res = await client().complete(s.id);
    expect(res.status).toBe(200);
    expectAttemptShape(res.body);
    expect(res.body).toMatchObject({ status: 'completed', version: 3, answers: { q1: 'A', q2: 'B' }, current_question: 2 });
    expect(Date.parse(res.body.completed_at!)).toBeGreaterThanOrEqual(before - 5);
    expect(res.body.time_remaining).toBeGreaterThan(0);
  });

  test('is durable in PostgreSQL before the response: the row is completed right after', async () => {
    const s = await buildSession(api, {}, prefix);
    await client().progress(s.id, { question_id: 'q1', answer: { picked: [1, 3] } });
    const res = await client().complete(s.id);
    const row = await sessionRow(api, s.id);
    expect(row).toMatchObject({ status: 'completed', version: res.body.version, answers: { q1: { picked: [1, 3] } } });
    expect((row!.completed_at as Date).toISOString()).toBe(res.body.completed_at);
  });

  test('repeating it answers 200 with the same result and no new version', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 }, prefix);
    const first = await client().complete(s.id);
    const second = await client().complete(s.id);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect((await sessionRow(api, s.id))!.version).toBe(first.body.version);
  });

  test('the time remaining is frozen once completed', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 }, prefix);
    const done = await client().complete(s.id);
    await sleep(1100);
    expect((await client().get(s.id)).body.time_remaining).toBe(done.body.time_remaining);
  });

  test('with the current version it completes', async () => {
    const s = await buildSession(api, {}, prefix);
    const res = await client().complete(s.id, { version: 1 });
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(2);
  });

  test('with a stale version answers 409 SESSION_CONFLICT with the current attempt, and does not complete', async () => {
    const s = await buildSession(api, {}, prefix);
    const current = await client().progress(s.id, { current_question: 1 });
    const res = await client().complete(s.id, { version: 1 });
    const body = expectError(res, 409, 'SESSION_CONFLICT');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(body).toMatchObject({ retryable: true, retryAfterSeconds: 1 });
    expect(body.session).toEqual({ ...current.body, time_remaining: expect.any(Number) });
    expect((await client().get(s.id)).body.status).toBe('in_progress');
    expect(await sessionRow(api, s.id)).toMatchObject({ status: 'started' });
  });

  test('with a stale If-Match answers 409 SESSION_CONFLICT', async () => {
    const s = await buildSession(api, {}, prefix);
    await client().progress(s.id, { current_question: 1 });
    expectError(await client().complete(s.id, undefined, { 'if-match': '"1"' }), 409, 'SESSION_CONFLICT');
  });

  test('with a version of the wrong type answers 400 naming version', async () => {
    const s = await buildSession(api, {}, prefix);
    expectValidationError(await client().complete(s.id, { version: 'one' }), 'version');
  });

  test('an unknown attempt answers 404 SESSION_NOT_FOUND', async () => {
    expectError(await client().complete(randomUUID()), 404, 'SESSION_NOT_FOUND');
  });

  test('an abandoned attempt cannot be completed: 410 SESSION_EXPIRED', async () => {
    const s = await buildSession(api, {}, prefix);
    await client().abandon(s.id);
    const body = expectError(await client().complete(s.id), 410, 'SESSION_EXPIRED');
    expect(body.session!.status).toBe('abandoned');
  });
});

describe.each(SESSION_PREFIXES)('POST %s/:id/abandon', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('answers 200 with status abandoned, durable in PostgreSQL', async () => {
    const s = await buildSession(api, {}, prefix);
    await client().progress(s.id, { question_id: 'q1', answer: 'A' });
    const res = await client().abandon(s.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'abandoned', version: 3, answers: { q1: 'A' }, completed_at: null });
    expect(await sessionRow(api, s.id)).toMatchObject({ status: 'abandoned', version: 3 });
  });

  test('then GET answers 410 SESSION_EXPIRED with the final attempt under session', async () => {
    const s = await buildSession(api, {}, prefix);
    const abandoned = await client().abandon(s.id);
    const res = await client().get(s.id);
    const body = expectError(res, 410, 'SESSION_EXPIRED');
    expect(body.sessionId).toBe(s.id);
    expect(body.retryable).toBe(false);
    expect(body.session).toEqual(abandoned.body);
  });

  test('then progress answers 410 SESSION_EXPIRED and writes nothing', async () => {
    const s = await buildSession(api, {}, prefix);
    const abandoned = await client().abandon(s.id);
    const body = expectError(await client().progress(s.id, { question_id: 'q1', answer: 'late' }), 410, 'SESSION_EXPIRED');
    expect(body.session).toEqual(abandoned.body);
  });

  test('then the user can start the quiz afresh', async () => {
    const s = await buildSession(api, {}, prefix);
    await client().abandon(s.id);
    const again = await client().start({ user_id: s.user_id, quiz_id: s.quiz_id });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(s.id);
  });

  test('a completed attempt cannot be abandoned: 409 SESSION_COMPLETED', async () => {
    const s = await buildSession(api, {}, prefix);
    await client().complete(s.id);
    expectError(await client().abandon(s.id), 409, 'SESSION_COMPLETED');
    expect(await sessionRow(api, s.id)).toMatchObject({ status: 'completed' });
  });

  test('with a stale version answers 409 SESSION_CONFLICT', async () => {
    const s = await buildSession(api, {}, prefix);
    await client().progress(s.id, { current_question: 1 });
    expectError(await client().abandon(s.id, { version: 1 }), 409, 'SESSION_CONFLICT');
  });
});
