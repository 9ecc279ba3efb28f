import { randomUUID } from 'node:crypto';
import { buildSession, sleep, startTestApi, type TestApi } from './support/harness';
import { expectAttemptShape, expectError, expectValidationError } from './support/contract';
import { noHooks } from '../src/shared/sessionService';
import { sessionKey } from '../src/shared/store/sessionStore';
import { answerHashFields } from '../src/shared/store/sessionCodec';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';
import { sessionClient } from './support/http';

/** Where each read was served from, as the service reports it through its hooks. */
const readsFrom: Array<'redis' | 'postgres'> = [];

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({}, { ...noHooks, readFrom: (source) => void readsFrom.push(source) });
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  readsFrom.length = 0;
});

describe.each(SESSION_PREFIXES)('GET %s/:id', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('answers 200 with the attempt as started, from Redis', async () => {
    const s = await buildSession(api, {}, prefix);
    const res = await client().get(s.id);
    expect(res.status).toBe(200);
    expectAttemptShape(res.body);
    expect(res.body).toEqual({ ...s, time_remaining: expect.any(Number) });
    expect(res.headers.get('etag')).toBe(`"${s.version}"`);
    expect(readsFrom).toEqual(['redis']);
  });

  test('accepts the id in upper case and answers with the canonical lower-case id', async () => {
    const s = await buildSession(api, {}, prefix);
    const res = await client().get(s.id.toUpperCase());
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(s.id);
  });

  test('computes time_remaining from the deadline at the moment of the response, so it decreases', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 }, prefix);
    const first = await client().get(s.id);
    await sleep(1100);
    const before = Date.now();
    const second = await client().get(s.id);
    const after = Date.now();
    expect(first.body.time_remaining).toBeLessThanOrEqual(600);
    expect(second.body.time_remaining).toBeLessThan(first.body.time_remaining);
    const deadline = Date.parse(s.expires_at!);
    expect(second.body.time_remaining).toBeGreaterThanOrEqual(Math.ceil((deadline - after) / 1000));
    expect(second.body.time_remaining).toBeLessThanOrEqual(Math.ceil((deadline - before) / 1000));
  });

  test('answers 404 SESSION_NOT_FOUND with the sessionId for an unknown uuid', async () => {
    const id = randomUUID();
    const body = expectError(await client().get(id), 404, 'SESSION_NOT_FOUND');
    expect(body.sessionId).toBe(id);
  });

  test.each([
    ['not a uuid', 'not-a-uuid'],
    ['a uuid v1', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'],
    ['a uuid with a bad variant', '3b241101-e2bb-4255-c624-ed0b4bf8f5d0'],
    ['a nil uuid', '00000000-0000-0000-0000-000000000000'],
    ['a uuid with extra characters', `${randomUUID()}0`],
  ])('answers 400 VALIDATION_ERROR naming `id` for %s', async (_what, id) => {
    const body = expectValidationError(await client().get(id), 'id');
    expect(body.field).toBe('id');
  });
});

describe.each(SESSION_PREFIXES)('cache miss on %s', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('a read after the Redis key is gone is served from PostgreSQL and re-caches the attempt', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 }, prefix);
    expect((await client().progress(s.id, { answers: { q1: 'A', q2: { choice: [1, 2] } }, current_question: 2 })).status).toBe(200);
    const completed = await client().complete(s.id);
    expect(completed.status).toBe(200);
    await api.redis.del(sessionKey(s.id));
    readsFrom.length = 0;

    const res = await client().get(s.id);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(completed.body);
    expect(readsFrom).toEqual(['postgres']);
    expect(await api.redis.hget(sessionKey(s.id), 'version')).toBe(String(completed.body.version));
    expect(await api.redis.ttl(sessionKey(s.id))).toBeGreaterThan(0);

    readsFrom.length = 0;
    expect((await client().get(s.id)).body).toEqual(completed.body);
    expect(readsFrom).toEqual(['redis']);
  });

  test('a read of an open attempt whose key is gone is served from PostgreSQL as started', async () => {
    const s = await buildSession(api, {}, prefix);
    await api.redis.del(sessionKey(s.id));
    const res = await client().get(s.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: s.id, status: 'started', version: 1, answers: {} });
    expect(readsFrom).toEqual(['postgres']);
    expect(await api.redis.exists(sessionKey(s.id))).toBe(1);
  });

  test('a write after the Redis key is gone re-caches from PostgreSQL and applies', async () => {
    const s = await buildSession(api, {}, prefix);
    await api.redis.del(sessionKey(s.id));
    const res = await client().progress(s.id, { question_id: 'q1', answer: 'C', version: 1 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 2, status: 'in_progress', answers: { q1: 'C' } });
    expect(await api.redis.hget(sessionKey(s.id), 'version')).toBe('2');
  });
});

describe('a hash cached in the earlier layout (one a:<question id> field per answer)', () => {
  /** Turns the attempt's cached hash into the earlier layout: its answers as a:<id> fields. */
  async function toEarlierLayout(id: string, answers: Record<string, unknown>): Promise<void> {
    await api.redis.hdel(sessionKey(id), 'answers', 'answer_index');
    const fields = Object.entries(answers).flatMap(([q, a]) => [`a:${q}`, JSON.stringify(a)]);
    if (fields.length > 0) await api.redis.hset(sessionKey(id), ...fields);
  }

  test('is read with its answers, and converted in place', async () => {
    const s = await buildSession(api);
    await toEarlierLayout(s.id, { q1: 'one', 'a/b': { x: [1, 2] }, 'é "q"': 3 });
    const read = await sessionClient(api, '/api/sessions').get(s.id);
    expect(read.status).toBe(200);
    expect(read.body.answers).toEqual({ q1: 'one', 'a/b': { x: [1, 2] }, 'é "q"': 3 });
    const hash = await api.redis.hgetall(sessionKey(s.id));
    expect(Object.keys(hash).filter((f) => f.startsWith('a:'))).toEqual([]);
    expect(JSON.parse(hash.answers)).toEqual({ q1: 'one', 'a/b': { x: [1, 2] }, 'é "q"': 3 });
  });

  test('a write converts it first: an answer to a question already answered replaces it, not a second entry', async () => {
    const s = await buildSession(api);
    await toEarlierLayout(s.id, { 'a/b': 'old', q2: 'kept' });
    const client = sessionClient(api, '/api/sessions');
    const written = await client.progress(s.id, { question_id: 'a/b', answer: 'new' });
    expect(written.status).toBe(200);
    expect(written.body.answers).toEqual({ 'a/b': 'new', q2: 'kept' });
    const hash = await api.redis.hgetall(sessionKey(s.id));
    expect(hash.answers.match(/"a\/b"/g)).toHaveLength(1);
    expect((await client.get(s.id)).body.answers).toEqual({ 'a/b': 'new', q2: 'kept' });
  });
});

describe('SessionStore.fill (the re-cache step)', () => {
  test('never overwrites a newer cached version with an older one', async () => {
    const s = await buildSession(api);
    const progressed = await sessionClient(api, '/api/sessions').progress(s.id, { question_id: 'q1', answer: 'newer' });
    expect(progressed.body.version).toBe(2);
    const cached = (await api.store.get(s.id))!.attempt;
    const older = { ...cached, version: 1, status: 'started' as const, answers: new Map<string, string>() };

    expect(await api.store.fill(older)).toBe(false);
    expect(await api.redis.hget(sessionKey(s.id), 'version')).toBe('2');
    expect((await api.store.get(s.id))!.attempt.answers.get('q1')).toBe('"newer"');
  });

  test('does not rewrite a cached copy of the same version', async () => {
    const s = await buildSession(api);
    const cached = (await api.store.get(s.id))!.attempt;
    expect(await api.store.fill({ ...cached, currentQuestion: 7 })).toBe(false);
    expect((await api.store.get(s.id))!.attempt.currentQuestion).toBe(0);
  });

  test('replaces an older cached copy as a whole, dropping answers the newer one lacks', async () => {
    const s = await buildSession(api);
    const cached = (await api.store.get(s.id))!.attempt;
    await api.redis.hset(sessionKey(s.id), ...answerHashFields(new Map([['stale', '"x"']])));
    const newer = { ...cached, version: 5, answers: new Map([['q9', '"fresh"']]) };
    expect(await api.store.fill(newer)).toBe(true);
    const after = (await api.store.get(s.id))!.attempt;
    expect(after.version).toBe(5);
    expect([...after.answers.entries()]).toEqual([['q9', '"fresh"']]);
  });

  test('fills a missing key, with the cache TTL', async () => {
    const s = await buildSession(api);
    const cached = (await api.store.get(s.id))!.attempt;
    await api.redis.del(sessionKey(s.id));
    expect(await api.store.fill(cached)).toBe(true);
    const ttl = await api.redis.ttl(sessionKey(s.id));
    expect(ttl).toBeGreaterThan(api.config.SESSION_CACHE_TTL_SECONDS - 5);
    expect(ttl).toBeLessThanOrEqual(api.config.SESSION_CACHE_TTL_SECONDS);
  });
});

describe('both route families', () => {
  test('serve the same attempt: started under one, written and read under the other', async () => {
    const [seed2, seed1] = [sessionClient(api, '/api/sessions'), sessionClient(api, '/sessions')];
    const s = await buildSession(api, {}, '/api/sessions');
    const written = await seed1.progress(s.id, { question_id: 'q1', answer: 'A', version: 1 });
    expect(written.status).toBe(200);
    const [a, b] = await Promise.all([seed2.get(s.id), seed1.get(s.id)]);
    expect(a.body).toEqual({ ...written.body, time_remaining: expect.any(Number) });
    expect(b.body).toEqual(a.body);
    expectError(await seed2.progress(s.id, { current_question: 1, version: 1 }), 409, 'SESSION_CONFLICT');
    expect((await seed2.complete(s.id)).status).toBe(200);
    expect((await seed1.complete(s.id)).body.status).toBe('completed');
  });
});
