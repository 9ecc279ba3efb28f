import { buildSession, sessionRow, sleepUntil, startTestApi, type AttemptJson, type TestApi } from './support/harness';
import { expectAttemptShape, expectError } from './support/contract';
import { sessionKey } from '../src/shared/store/sessionStore';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';
import { sessionClient, type RouteFamily } from './support/http';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});

/** An attempt with a one-second limit, after its deadline has passed. */
async function buildExpiredSession(prefix: RouteFamily, overrides: Record<string, unknown> = {}): Promise<AttemptJson> {
  const s = await buildSession(api, { time_limit_seconds: 1, ...overrides }, prefix);
  await sleepUntil(Date.parse(s.expires_at!));
  return s;
}

/** Asserts a 410 SESSION_EXPIRED whose `session` is the attempt expired at its deadline. */
function expectExpired(res: Parameters<typeof expectError>[0], s: AttemptJson): AttemptJson {
  const body = expectError(res, 410, 'SESSION_EXPIRED');
  expect(body.sessionId).toBe(s.id);
  expectAttemptShape(body.session);
  expect(body.session).toMatchObject({ id: s.id, status: 'expired', time_remaining: 0, expires_at: s.expires_at });
  return body.session!;
}

describe.each(SESSION_PREFIXES)('expiry on %s', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('before the deadline the attempt reads and writes normally', async () => {
    // a deadline well ahead: both requests must land before it, however loaded the machine is
    const s = await buildSession(api, { time_limit_seconds: 600 }, prefix);
    expect((await client().get(s.id)).status).toBe(200);
    expect((await client().progress(s.id, { question_id: 'q1', answer: 'A' })).status).toBe(200);
  });

  test('after the deadline GET answers 410 SESSION_EXPIRED with status expired and time_remaining 0', async () => {
    const s = await buildExpiredSession(prefix);
    expectExpired(await client().get(s.id), s);
  });

  test('after the deadline progress answers 410 SESSION_EXPIRED and the answer is not recorded', async () => {
    // long enough for the first write to land before the deadline even on a loaded machine
    const s = await buildSession(api, { time_limit_seconds: 3 }, prefix);
    expect((await client().progress(s.id, { question_id: 'q1', answer: 'in time' })).status).toBe(200);
    await sleepUntil(Date.parse(s.expires_at!));
    const expired = expectExpired(await client().progress(s.id, { question_id: 'q2', answer: 'too late' }), s);
    expect(expired.answers).toEqual({ q1: 'in time' });
    expectExpired(await client().get(s.id), s);
  });

  test('after the deadline a versioned progress write answers 410, not 409', async () => {
    const s = await buildExpiredSession(prefix);
    expectExpired(await client().progress(s.id, { current_question: 1, version: 1 }), s);
  });

  test('after the deadline complete answers 410 SESSION_EXPIRED', async () => {
    const s = await buildExpiredSession(prefix);
    expectExpired(await client().complete(s.id), s);
  });

  test('after the deadline, with the Redis key deleted, GET still answers 410 (PostgreSQL expires_at decides)', async () => {
    const s = await buildExpiredSession(prefix);
    await api.redis.del(sessionKey(s.id));
    expect((await sessionRow(api, s.id))!.status).toBe('started');
    expectExpired(await client().get(s.id), s);
  });

  test('after the deadline, with the Redis key deleted, progress answers 410', async () => {
    const s = await buildExpiredSession(prefix);
    await api.redis.del(sessionKey(s.id));
    expectExpired(await client().progress(s.id, { question_id: 'q1', answer: 'A' }), s);
  });

  test('an attempt expired at its deadline stays expired: later reads answer the same 410', async () => {
    const s = await buildExpiredSession(prefix);
    const first = expectExpired(await client().progress(s.id, { current_question: 1 }), s);
    const again = expectExpired(await client().get(s.id), s);
    expect(again).toEqual(first);
  });
});
