import { randomUUID } from 'node:crypto';
import { POLICY_TABLE, policyKey } from '../src/shared/store/policyStore';
import { bearer, hsToken, SECRET, startAuthApi } from './support/authApi';
import { expectError, expectValidationError } from './support/contract';
import { startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * Quiz policies (issue 12): set by a service, read by anyone, applied to every start at once (in
 * every API process): the time limit, the window, the attempt limit. Real tokens, real stores.
 */

const quizPrefix = `policy-test-${randomUUID().slice(0, 8)}`;
const newQuiz = () => `${quizPrefix}-${randomUUID().slice(0, 8)}`;
const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

let open: TestApi;
let other: TestApi;
beforeAll(async () => {
  open = await startTestApi();
  other = await startTestApi();
});
afterAll(async () => {
  const rows = await open.knex(POLICY_TABLE).select('quiz_id').where('quiz_id', 'like', `${quizPrefix}%`);
  for (const r of rows as Array<{ quiz_id: string }>) await open.redis.del(policyKey(r.quiz_id)); // one slot per command on a cluster
  await open.knex(POLICY_TABLE).where('quiz_id', 'like', `${quizPrefix}%`).delete();
  await open.close();
  await other.close();
});

const putPolicy = (api: { url: string }, quizId: string, body: unknown, headers: Record<string, string> = {}) =>
  request(api.url, 'PUT', `/api/quizzes/${encodeURIComponent(quizId)}/policy`, body, headers);
const start = (api: TestApi, body: Record<string, unknown>) =>
  request(api.url, 'POST', '/api/sessions/start', { user_id: api.userId(), ...body });

describe('the policy resource (open mode)', () => {
  test('PUT stores the whole policy with its defaults; GET returns it; a quiz without one is 404 POLICY_NOT_FOUND', async () => {
    const quiz = newQuiz();
    expectError(await request(open.url, 'GET', `/api/quizzes/${quiz}/policy`), 404, 'POLICY_NOT_FOUND');
    const put = await putPolicy(open, quiz, { time_limit_seconds: 900 });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({
      quiz_id: quiz,
      time_limit_seconds: 900,
      max_attempts: null,
      overdue_handling: 'expire',
      grace_period_seconds: null,
      opens_at: null,
      closes_at: null,
      updated_at: expect.any(String),
    });
    const get = await request(other.url, 'GET', `/api/quizzes/${quiz}/policy`);
    expect(get.status).toBe(200);
    expect(get.body).toEqual(put.body);
    const row = await open.knex(POLICY_TABLE).where({ quiz_id: quiz }).first();
    expect(row.time_limit_seconds).toBe(900);
  });

  test.each([
    [{ time_limit_seconds: -1 }, 'time_limit_seconds'],
    [{ time_limit_seconds: 1.5 }, 'time_limit_seconds'],
    [{}, 'time_limit_seconds'],
    [{ time_limit_seconds: 60, max_attempts: 0 }, 'max_attempts'],
    [{ time_limit_seconds: 60, overdue_handling: 'never' }, 'overdue_handling'],
    [{ time_limit_seconds: 60, overdue_handling: 'graceperiod' }, 'grace_period_seconds'],
    [{ time_limit_seconds: 60, grace_period_seconds: 30 }, 'grace_period_seconds'],
    [{ time_limit_seconds: 60, opens_at: 'tomorrow' }, 'opens_at'],
    [{ time_limit_seconds: 60, opens_at: inMinutes(10), closes_at: inMinutes(5) }, 'closes_at'],
    [{ time_limit_seconds: 60, colour: 'red' }, 'colour'],
  ])('a bad policy %j is a 400 naming %s, and nothing is stored', async (body, field) => {
    const quiz = newQuiz();
    expectValidationError(await putPolicy(open, quiz, body), field);
    expectError(await request(open.url, 'GET', `/api/quizzes/${quiz}/policy`), 404, 'POLICY_NOT_FOUND');
  });

  test('every overdue handling is stored and read back as given', async () => {
    for (const handling of ['expire', 'autosubmit', 'graceperiod', 'autoabandon']) {
      const quiz = newQuiz();
      const body = { time_limit_seconds: 60, overdue_handling: handling, grace_period_seconds: handling === 'graceperiod' ? 30 : null };
      expect((await putPolicy(open, quiz, body)).status).toBe(200);
      const got = await request(open.url, 'GET', `/api/quizzes/${quiz}/policy`);
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject(body);
    }
  });
});

describe('a start under a policy', () => {
  test("takes the policy's time limit; a change applies to the next start at once, in every API process", async () => {
    const quiz = newQuiz();
    await putPolicy(open, quiz, { time_limit_seconds: 600 });
    const first = await start(other, { quiz_id: quiz });
    expect(first.status).toBe(201);
    expect(first.body.time_limit_seconds).toBe(600);
    await putPolicy(other, quiz, { time_limit_seconds: 1200 });
    const second = await start(open, { quiz_id: quiz });
    expect(second.status).toBe(201);
    expect(second.body.time_limit_seconds).toBe(1200);
    expect(Date.parse(second.body.expires_at) - Date.parse(second.body.started_at)).toBe(1_200_000);
  });

  test('an integer quiz id takes the policy of its decimal text', async () => {
    const quizNumber = 900_000_000 + Math.floor(Math.random() * 99_999_999);
    // a numeric id is the policy of its text; cleaned up with the prefix rows below
    const quiz = String(quizNumber);
    await putPolicy(open, quiz, { time_limit_seconds: 120 });
    try {
      const res = await start(open, { quiz_id: quizNumber });
      expect(res.status).toBe(201);
      expect(res.body.quiz_id).toBe(quizNumber);
      expect(res.body.time_limit_seconds).toBe(120);
    } finally {
      await open.redis.del(policyKey(quiz));
      await open.knex(POLICY_TABLE).where({ quiz_id: quiz }).delete();
    }
  });

  test('in open mode, a start may not bring its own time limit to a quiz with a policy (403), but may to one without', async () => {
    const quiz = newQuiz();
    const free = await start(open, { quiz_id: newQuiz(), time_limit_seconds: 45 });
    expect(free.status).toBe(201);
    expect(free.body.time_limit_seconds).toBe(45);
    await putPolicy(open, quiz, { time_limit_seconds: 600 });
    expectError(await start(open, { quiz_id: quiz, time_limit_seconds: 45 }), 403, 'FORBIDDEN');
  });

  test('before opens_at and from closes_at on, no attempt starts: 403 QUIZ_NOT_OPEN with both times', async () => {
    const early = newQuiz();
    const opensAt = inMinutes(30);
    await putPolicy(open, early, { time_limit_seconds: 600, opens_at: opensAt, closes_at: inMinutes(90) });
    const before = expectError(await start(open, { quiz_id: early }), 403, 'QUIZ_NOT_OPEN');
    expect(before.opens_at).toBe(opensAt);
    expect(typeof before.closes_at).toBe('string');

    const late = newQuiz();
    await putPolicy(open, late, { time_limit_seconds: 600, opens_at: inMinutes(-90), closes_at: inMinutes(-1) });
    const after = expectError(await start(open, { quiz_id: late }), 403, 'QUIZ_NOT_OPEN');
    expect(after.closes_at).toEqual(expect.any(String));
    expect(after.retryable).toBe(false);
  });

  test('the deadline is never later than closes_at, and an untimed quiz ends there too', async () => {
    const quiz = newQuiz();
    const closesAt = inMinutes(2);
    await putPolicy(open, quiz, { time_limit_seconds: 1800, closes_at: closesAt });
    const timed = await start(open, { quiz_id: quiz });
    expect(timed.body.expires_at).toBe(closesAt);
    expect(timed.body.time_remaining).toBeLessThanOrEqual(120);

    const untimedQuiz = newQuiz();
    await putPolicy(open, untimedQuiz, { time_limit_seconds: 0, closes_at: closesAt });
    const untimed = await start(open, { quiz_id: untimedQuiz });
    expect(untimed.body.time_limit_seconds).toBe(0);
    expect(untimed.body.expires_at).toBe(closesAt);
  });

  test('an open attempt is resumed even after the window closed', async () => {
    const quiz = newQuiz();
    await putPolicy(open, quiz, { time_limit_seconds: 0 });
    const userId = open.userId();
    const first = await request(open.url, 'POST', '/api/sessions/start', { user_id: userId, quiz_id: quiz });
    expect(first.status).toBe(201);
    await putPolicy(open, quiz, { time_limit_seconds: 0, opens_at: inMinutes(-60), closes_at: inMinutes(-1) });
    const resumed = await request(open.url, 'POST', '/api/sessions/start', { user_id: userId, quiz_id: quiz });
    expect(resumed.status).toBe(200);
    expect(resumed.body.id).toBe(first.body.id);
  });

  test('attempts are numbered; past max_attempts a new one is 409 ATTEMPT_LIMIT_REACHED, and the open one still resumes', async () => {
    const quiz = newQuiz();
    await putPolicy(open, quiz, { time_limit_seconds: 600, max_attempts: 2 });
    const userId = open.userId();
    const startIt = () => request(open.url, 'POST', '/api/sessions/start', { user_id: userId, quiz_id: quiz });

    const one = await startIt();
    expect(one.status).toBe(201);
    expect(one.body.attempt_number).toBe(1);
    expect((await request(open.url, 'POST', `/api/sessions/${one.body.id}/complete`, {})).body.submitted_by).toBe('student');

    const two = await startIt();
    expect(two.status).toBe(201);
    expect(two.body.attempt_number).toBe(2);
    const resumed = await startIt();
    expect(resumed.status).toBe(200);
    expect(resumed.body.id).toBe(two.body.id);
    expect((await request(open.url, 'POST', `/api/sessions/${two.body.id}/abandon`, {})).status).toBe(200);

    const refused = expectError(await startIt(), 409, 'ATTEMPT_LIMIT_REACHED');
    expect(refused).toEqual(expect.objectContaining({ attempts_used: 2, max_attempts: 2, retryable: false }));
    expect(refused.session).toBeUndefined();
    expect(await open.knex('quiz_sessions').where({ user_id: userId, quiz_id: quiz }).count('* as n')).toEqual([{ n: '2' }]);

    // raising the limit lets the next attempt start, numbered 3
    await putPolicy(open, quiz, { time_limit_seconds: 600, max_attempts: 3 });
    const three = await startIt();
    expect(three.status).toBe(201);
    expect(three.body.attempt_number).toBe(3);
  });

  test('ten concurrent starts under max_attempts 1 make exactly one attempt', async () => {
    const quiz = newQuiz();
    await putPolicy(open, quiz, { time_limit_seconds: 600, max_attempts: 1 });
    const userId = open.userId();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => request(open.url, 'POST', '/api/sessions/start', { user_id: userId, quiz_id: quiz })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(new Set(results.map((r) => r.body.id))).toEqual(new Set([results.find((r) => r.status === 201)!.body.id]));
    expect(await open.knex('quiz_sessions').where({ user_id: userId, quiz_id: quiz }).count('* as n')).toEqual([{ n: '1' }]);
  });
});

describe('roles and policies', () => {
  let api: Awaited<ReturnType<typeof startAuthApi>>;
  beforeAll(async () => {
    api = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  });
  afterAll(async () => api.close());

  const token = async (role?: string) => bearer(await hsToken({ sub: api.user(role ?? 'student'), ...(role ? { role } : {}) }));

  test('only a service sets a policy (403 for a proctor or a student); every role reads it; no token is 401', async () => {
    const quiz = newQuiz();
    for (const role of [undefined, 'proctor']) {
      expectError(await putPolicy(api, quiz, { time_limit_seconds: 60 }, await token(role)), 403, 'FORBIDDEN');
    }
    expectError(await putPolicy(api, quiz, { time_limit_seconds: 60 }), 401, 'UNAUTHORIZED');
    expect((await putPolicy(api, quiz, { time_limit_seconds: 60 }, await token('service'))).status).toBe(200);
    for (const role of [undefined, 'proctor', 'service']) {
      const res = await request(api.url, 'GET', `/api/quizzes/${quiz}/policy`, undefined, await token(role));
      expect(res.status).toBe(200);
      expect(res.body.time_limit_seconds).toBe(60);
    }
  });

  test("a service's own time limit gives way to the policy's", async () => {
    const quiz = newQuiz();
    await putPolicy(api, quiz, { time_limit_seconds: 300 }, await token('service'));
    const res = await request(
      api.url,
      'POST',
      '/api/sessions/start',
      { user_id: api.user('served'), quiz_id: quiz, time_limit_seconds: 0 },
      await token('service'),
    );
    expect(res.status).toBe(201);
    expect(res.body.time_limit_seconds).toBe(300);
  });
});
