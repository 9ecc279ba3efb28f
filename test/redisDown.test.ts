import { randomUUID } from 'node:crypto';
import { buildSession, buildStartBody, sessionRow, sleepUntil, startTestApi, waitFor, type TestApi } from './support/harness';
import { expectError } from './support/contract';
import { redisServerAvailable, startRedisServer, type RedisServer } from './support/redisServer';
import { request, sessionClient } from './support/http';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';

/** How long a request may take while Redis is away: well under a hang, above the 1 s command timeout. */
const NO_HANG_MS = 3000;

/** Runs `fn` and returns its result with how long it took. */
async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = Date.now();
  const result = await fn();
  return { result, ms: Date.now() - started };
}

const haveRedisServer = redisServerAvailable();
if (!haveRedisServer) {
  console.warn('redisDown.test.ts skipped: `redis-server` is not on PATH, so these tests cannot stop and restart a Redis of their own');
}
const describeWithRedisServer = haveRedisServer ? describe : describe.skip;

describeWithRedisServer('with Redis stopped (a private redis-server)', () => {
  let redis: RedisServer;
  let api: TestApi;
  beforeAll(async () => {
    redis = await startRedisServer();
    api = await startTestApi({ REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await redis?.start().catch(() => undefined);
    await api?.close();
    await redis?.close();
  });
  afterEach(async () => {
    // every test leaves Redis running and the API connected to it
    redis.resume();
    await redis.start().catch(() => undefined);
    await waitFor('the API to reconnect to redis', () => api.redis.status === 'ready');
  });

  describe.each(SESSION_PREFIXES)('on %s', (prefix) => {
    const client = () => sessionClient(api, prefix);

    test('reads are served from PostgreSQL, writes answer 503 SERVICE_UNAVAILABLE at once, and writes work again after a restart', async () => {
      const open = await buildSession(api, { time_limit_seconds: 600 }, prefix);
      const done = await buildSession(api, {}, prefix);
      await client().progress(done.id, { question_id: 'q1', answer: 'A' });
      const completed = await client().complete(done.id);
      expect(completed.status).toBe(200);

      await redis.stop();

      const readOpen = await timed(() => client().get(open.id));
      expect(readOpen.result.status).toBe(200);
      expect(readOpen.result.body).toMatchObject({ id: open.id, status: 'started', version: 1 });
      expect(readOpen.ms).toBeLessThan(NO_HANG_MS);
      const readDone = await client().get(done.id);
      expect(readDone.status).toBe(200);
      expect(readDone.body).toEqual(completed.body);

      const write = await timed(() => client().progress(open.id, { question_id: 'q1', answer: 'B' }));
      const body = expectError(write.result, 503, 'SERVICE_UNAVAILABLE');
      expect(body).toMatchObject({ retryable: true, retryAfterSeconds: 1 });
      expect(write.result.headers.get('retry-after')).toBe('1');
      expect(body.message).toMatch(/redis/);
      expect(write.ms).toBeLessThan(NO_HANG_MS);
      expectError(await client().complete(open.id), 503, 'SERVICE_UNAVAILABLE');
      expect(await sessionRow(api, open.id)).toMatchObject({ status: 'started', version: 1 });

      await redis.start();
      await waitFor('the API to reconnect to redis', () => api.redis.status === 'ready');

      const after = await client().progress(open.id, { question_id: 'q1', answer: 'B', version: 1 });
      expect(after.status).toBe(200);
      expect(after.body).toMatchObject({ version: 2, status: 'in_progress', answers: { q1: 'B' } });
    });
  });

  test('a start answers 503 without a hang while Redis is stopped (never a 500)', async () => {
    await redis.stop();
    const start = await timed(() => sessionClient(api, '/api/sessions').start(buildStartBody(api)));
    expect(start.ms).toBeLessThan(NO_HANG_MS);
    expect(start.result.status).not.toBe(500);
    expectError(start.result, 503, 'SERVICE_UNAVAILABLE');
  });

  test('a read of an unknown attempt answers 404 from PostgreSQL while Redis is stopped', async () => {
    await redis.stop();
    expectError(await sessionClient(api, '/sessions').get(randomUUID()), 404, 'SESSION_NOT_FOUND');
  });

  test('an attempt past its deadline answers 410 from PostgreSQL while Redis is stopped', async () => {
    const s = await buildSession(api, { time_limit_seconds: 1 });
    await redis.stop();
    await sleepUntil(Date.parse(s.expires_at!));
    const body = expectError(await sessionClient(api, '/api/sessions').get(s.id), 410, 'SESSION_EXPIRED');
    expect(body.session).toMatchObject({ id: s.id, status: 'expired', time_remaining: 0 });
  });

  test('/ready answers 503 naming redis while it is stopped, and 200 once it is back', async () => {
    await redis.stop();
    const down = await timed(() => request(api.url, 'GET', '/ready'));
    expect(down.ms).toBeLessThan(NO_HANG_MS);
    expect(down.result.status).toBe(503);
    expect(down.result.body).toMatchObject({ checks: { redis: 'down', postgres: 'up' }, errorCode: 'SERVICE_UNAVAILABLE' });
    expect(down.result.body.message).toMatch(/redis/);
    expect((await request(api.url, 'GET', '/health')).status).toBe(200);

    await redis.start();
    await waitFor('/ready to answer 200', async () => (await request(api.url, 'GET', '/ready')).status === 200);
  });

  test('a Redis that stops answering (paused) bounds writes and reads by the command timeout', async () => {
    const s = await buildSession(api);
    const client = sessionClient(api, '/api/sessions');
    redis.pause();

    const write = await timed(() => client.progress(s.id, { current_question: 1 }));
    expectError(write.result, 503, 'SERVICE_UNAVAILABLE');
    expect(write.ms).toBeLessThan(NO_HANG_MS);

    const read = await timed(() => client.get(s.id));
    expect(read.result.status).toBe(200);
    expect(read.ms).toBeLessThan(NO_HANG_MS);

    const ready = await timed(() => request(api.url, 'GET', '/ready'));
    expect(ready.result.status).toBe(503);
    expect(ready.result.body.checks.redis).toBe('down');
    expect(ready.ms).toBeLessThan(NO_HANG_MS);

    redis.resume();
    await waitFor('a write to succeed again', async () => (await client.progress(s.id, { current_question: 2 })).status === 200);
  });
});
