import { sessionKey } from '../src/shared/store/keys';
import { attemptRecordKey, fingerprint } from '../src/shared/store/idempotencyStore';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { bearer, hsToken, SECRET, startAuthApi } from './support/authApi';
import { expectError } from './support/contract';
import { buildSession, buildStartBody, startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * Idempotency keys over HTTP: the first response is kept per caller and key; a retry with the same
 * request gets it again (`idempotent-replayed: true`) and applies nothing; the same key with
 * another request is 422 IDEMPOTENCY_KEY_REUSED; a retry while the first still runs is 409
 * retryable; for progress, the check and the store are in the write script.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api.close());

const key = () => ({ 'idempotency-key': randomUUID() });
const patch = (id: string, body: unknown, headers: Record<string, string>) =>
  request(api.url, 'PATCH', `/api/sessions/${id}/progress`, body, headers);
const eventTypes = async (id: string): Promise<string[]> =>
  (await request(api.url, 'GET', `/api/sessions/${id}/events`)).body.events.map((e: { type: string }) => e.type);

test('progress: a retry gets the first response again, marked replayed, and applies nothing (no version, no event)', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const k = key();
  const first = await patch(s.id, { question_id: 'q1', answer: 'A', version: s.version }, k);
  expect(first.status).toBe(200);
  expect(first.headers.get('idempotent-replayed')).toBeNull();
  // another write lands in between: the retry still answers what the first one did
  expect((await patch(s.id, { question_id: 'q2', answer: 'B' }, {})).status).toBe(200);
  const retry = await patch(s.id, { question_id: 'q1', answer: 'A', version: s.version }, k);
  expect(retry.status).toBe(200);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect(retry.body).toEqual(first.body);
  expect(retry.headers.get('etag')).toBe(first.headers.get('etag'));
  const now = await request(api.url, 'GET', `/api/sessions/${s.id}`);
  expect(now.body.version).toBe(s.version + 2);
  expect(await eventTypes(s.id)).toEqual(['started', 'answer_saved', 'answer_saved']);
});

test('progress: the same key with another body, or another If-Match, is 422 IDEMPOTENCY_KEY_REUSED, and applies nothing', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const k = key();
  expect((await patch(s.id, { question_id: 'q1', answer: 'A' }, k)).status).toBe(200);
  expectError(await patch(s.id, { question_id: 'q1', answer: 'B' }, k), 422, 'IDEMPOTENCY_KEY_REUSED');
  expectError(await patch(s.id, { question_id: 'q1', answer: 'A' }, { ...k, 'if-match': '"2"' }), 422, 'IDEMPOTENCY_KEY_REUSED');
  // the same key on another route of the attempt is another request too
  expectError(await request(api.url, 'POST', `/api/sessions/${s.id}/complete`, {}, k), 422, 'IDEMPOTENCY_KEY_REUSED');
  const now = await request(api.url, 'GET', `/api/sessions/${s.id}`);
  expect(now.body).toMatchObject({ version: s.version + 1, answers: { q1: 'A' }, status: 'in_progress' });
});

test('progress: a refused write (409) is kept too: the retry gets the same 409, body and request id alike', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  await patch(s.id, { question_id: 'q1', answer: 'A' }, {});
  const k = key();
  const first = await patch(s.id, { question_id: 'q1', answer: 'stale', version: s.version }, { ...k, 'x-request-id': 'first-try' });
  expectError(first, 409, 'SESSION_CONFLICT');
  await new Promise((r) => setTimeout(r, 1100));
  const retry = await patch(s.id, { question_id: 'q1', answer: 'stale', version: s.version }, { ...k, 'x-request-id': 'second-try' });
  expect(retry.status).toBe(409);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect(retry.body).toEqual(first.body);
  expect(retry.body.requestId).toBe('first-try');
  // one write_rejected only: the retry applied nothing
  expect((await eventTypes(s.id)).filter((t) => t === 'write_rejected')).toHaveLength(1);
});

test('progress: replays also when the Redis copy was evicted (the record outlives it; the attempt is refilled)', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const k = key();
  const first = await patch(s.id, { question_id: 'q1', answer: 'A' }, k);
  // wait for nothing: make PostgreSQL hold the write, then drop the attempt's hash
  await request(api.url, 'POST', `/api/sessions/${s.id}/pause`, {});
  await request(api.url, 'POST', `/api/sessions/${s.id}/resume`, {});
  await api.redis.del(sessionKey(s.id));
  const retry = await patch(s.id, { question_id: 'q1', answer: 'A' }, k);
  expect(retry.status).toBe(200);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect(retry.body).toEqual(first.body);
});

test('start: the retry gets the same 201 and the same attempt; another body with the key is 422', async () => {
  const k = key();
  const body = buildStartBody(api, { time_limit_seconds: 600 });
  const first = await request(api.url, 'POST', '/api/sessions/start', body, k);
  expect(first.status).toBe(201);
  const retry = await request(api.url, 'POST', '/api/sessions/start', body, k);
  expect(retry.status).toBe(201);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect(retry.headers.get('location')).toBe(first.headers.get('location'));
  expect(retry.body).toEqual(first.body);
  // without the key, the same start is a resume (200), as always
  expect((await request(api.url, 'POST', '/api/sessions/start', body)).status).toBe(200);
  expectError(await request(api.url, 'POST', '/api/sessions/start', { ...body, quiz_id: 'another' }, k), 422, 'IDEMPOTENCY_KEY_REUSED');
});

test('extend, pause, resume: a retried control is applied once', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const k = key();
  const first = await request(api.url, 'POST', `/api/sessions/${s.id}/extend`, { seconds: 60 }, k);
  expect(first.body.extra_time_seconds).toBe(60);
  const retry = await request(api.url, 'POST', `/api/sessions/${s.id}/extend`, { seconds: 60 }, k);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect(retry.body).toEqual(first.body);
  const now = await request(api.url, 'GET', `/api/sessions/${s.id}`);
  expect(now.body.extra_time_seconds).toBe(60);
  const pk = key();
  const paused = await request(api.url, 'POST', `/api/sessions/${s.id}/pause`, {}, pk);
  expect((await request(api.url, 'POST', `/api/sessions/${s.id}/pause`, {}, pk)).body).toEqual(paused.body);
  expectError(await request(api.url, 'POST', `/api/sessions/${s.id}/resume`, {}, pk), 422, 'IDEMPOTENCY_KEY_REUSED');
});

test('complete: a retry while the first is still in flight is 409 retryable; after it, the kept response', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  // hold the attempt's row, so the complete (durable before it answers) waits on PostgreSQL
  const holder = new Client({ connectionString: process.env.DATABASE_URL });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('select 1 from quiz_sessions where id = $1 for update', [s.id]);
    const k = key();
    const first = request(api.url, 'POST', `/api/sessions/${s.id}/complete`, {}, k);
    await new Promise((r) => setTimeout(r, 300));
    const during = await request(api.url, 'POST', `/api/sessions/${s.id}/complete`, {}, k);
    expectError(during, 409, 'IDEMPOTENCY_KEY_IN_USE');
    expect(during.body.retryable).toBe(true);
    expect(during.headers.get('retry-after')).toBe('1');
    // like every 409 of an attempt's routes, it carries the attempt as it is now (Redis has the
    // close already; PostgreSQL waits on the held row), its version the ETag
    expect(during.body.sessionId).toBe(s.id);
    expect(during.body.session).toMatchObject({ id: s.id, user_id: s.user_id, status: 'completed', version: s.version + 1 });
    expect(during.headers.get('etag')).toBe(`"${during.body.session.version}"`);
    await holder.query('rollback');
    const done = await first;
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('completed');
    const after = await request(api.url, 'POST', `/api/sessions/${s.id}/complete`, {}, k);
    expect(after.headers.get('idempotent-replayed')).toBe('true');
    expect(after.body).toEqual(done.body);
  } finally {
    await holder.end();
  }
});

test('progress: a key whose record is still pending (the script finds it) is 409 with the attempt as it is now', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const written = await patch(s.id, { question_id: 'q1', answer: 'A' }, {});
  // a pending record of this very request (open mode: the caller is `open`), as a claim leaves it
  const k = randomUUID();
  const body = { question_id: 'q2', answer: 'B' };
  const claim = { recordKey: attemptRecordKey(s.id, 'open', k), fingerprint: fingerprint('PATCH progress', '', body) };
  await api.redis.set(claim.recordKey, JSON.stringify({ fp: claim.fingerprint, state: 'pending' }), 'EX', 60);
  const during = await patch(s.id, body, { 'idempotency-key': k });
  expectError(during, 409, 'IDEMPOTENCY_KEY_IN_USE');
  expect(during.headers.get('retry-after')).toBe('1');
  expect(during.body.session).toEqual(expect.objectContaining({ id: s.id, version: written.body.version, answers: { q1: 'A' } }));
  expect(during.headers.get('etag')).toBe(`"${written.body.version}"`);
  // nothing applied
  expect((await request(api.url, 'GET', `/api/sessions/${s.id}`)).body.version).toBe(written.body.version);
});

test("a key in use shows the attempt only to who may see it: another student's attempt is 403, not 409 with it", async () => {
  const auth = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  try {
    const alice = bearer(await hsToken({ sub: auth.user('alice') }));
    const mallory = auth.user('mallory');
    const started = await request(auth.url, 'POST', '/api/sessions/start', { quiz_id: auth.user('q') }, alice);
    expect(started.status).toBe(201);
    const id: string = started.body.id;
    // mallory's own pending record on alice's attempt (as her first, still running, request leaves it)
    const k = randomUUID();
    const recordKey = attemptRecordKey(id, `student:${mallory}`, k);
    await api.redis.set(recordKey, JSON.stringify({ fp: fingerprint('POST complete', '', {}), state: 'pending' }), 'EX', 60);
    const res = await request(
      auth.url,
      'POST',
      `/api/sessions/${id}/complete`,
      {},
      {
        ...bearer(await hsToken({ sub: mallory })),
        'idempotency-key': k,
      },
    );
    expectError(res, 403, 'FORBIDDEN');
    expect(res.body.session).toBeUndefined();
    expect(res.headers.get('etag')).toBeNull();
  } finally {
    await auth.close();
  }
});

test('a malformed key is 400 and names the header', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const res = await patch(s.id, { question_id: 'q1', answer: 'A' }, { 'idempotency-key': 'x'.repeat(256) });
  expectError(res, 400, 'VALIDATION_ERROR');
  expect(res.body.field).toBe('Idempotency-Key');
});

test('keys are per caller: two students using one key each get their own attempt and answers', async () => {
  const auth = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  try {
    const quiz = auth.user('idem-quiz');
    const k = key();
    const alice = bearer(await hsToken({ sub: auth.user('alice') }));
    const bob = bearer(await hsToken({ sub: auth.user('bob') }));
    const a = await request(auth.url, 'POST', '/api/sessions/start', { quiz_id: quiz }, { ...alice, ...k });
    const b = await request(auth.url, 'POST', '/api/sessions/start', { quiz_id: quiz }, { ...bob, ...k });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(a.body.id).not.toBe(b.body.id);
    expect(b.body.user_id).toBe(auth.user('bob'));
  } finally {
    await auth.close();
  }
});
