import { randomUUID } from 'node:crypto';
import { ACCOMMODATION_TABLE, OVERRIDE_TABLE, POLICY_TABLE, policyKey } from '../src/shared/store/policyStore';
import { bearer, hsToken, SECRET, startAuthApi } from './support/authApi';
import { expectError, expectValidationError } from './support/contract';
import { startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * Per-user settings (issue 12): accommodations (more time on every timed quiz) and overrides of a
 * quiz's policy (time limit, extra attempts, closes_at), and how a start combines them.
 */

const quizPrefix = `settings-test-${randomUUID().slice(0, 8)}`;
const newQuiz = () => `${quizPrefix}-${randomUUID().slice(0, 8)}`;
const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  const prefix = api.userId('');
  await api.knex(ACCOMMODATION_TABLE).where('user_id', 'like', `${prefix}%`).delete();
  await api.knex(OVERRIDE_TABLE).where('quiz_id', 'like', `${quizPrefix}%`).delete();
  const rows = await api.knex(POLICY_TABLE).select('quiz_id').where('quiz_id', 'like', `${quizPrefix}%`);
  if (rows.length) await api.redis.del(...rows.map((r: { quiz_id: string }) => policyKey(r.quiz_id)));
  await api.knex(POLICY_TABLE).where('quiz_id', 'like', `${quizPrefix}%`).delete();
  await api.close();
});

const put = (path: string, body: unknown, headers: Record<string, string> = {}) => request(api.url, 'PUT', path, body, headers);
const start = (userId: string, quizId: string) => request(api.url, 'POST', '/api/sessions/start', { user_id: userId, quiz_id: quizId });

describe('accommodations', () => {
  test('round(limit × multiplier) + extra on every timed quiz; an untimed quiz stays untimed; GET returns them', async () => {
    const user = api.userId();
    const res = await put(`/api/users/${user}/accommodations`, { time_multiplier: 1.5, extra_time_seconds: 60 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user_id: user, time_multiplier: 1.5, extra_time_seconds: 60 });
    expect((await request(api.url, 'GET', `/api/users/${user}/accommodations`)).body).toEqual(res.body);

    const timed = newQuiz();
    await put(`/api/quizzes/${timed}/policy`, { time_limit_seconds: 601 });
    const attempt = await start(user, timed);
    expect(attempt.status).toBe(201);
    expect(attempt.body.time_limit_seconds).toBe(Math.round(601 * 1.5) + 60);
    expect(Date.parse(attempt.body.expires_at) - Date.parse(attempt.body.started_at)).toBe((Math.round(601 * 1.5) + 60) * 1000);

    const untimed = newQuiz();
    await put(`/api/quizzes/${untimed}/policy`, { time_limit_seconds: 0 });
    const free = await start(user, untimed);
    expect(free.body.time_limit_seconds).toBe(0);
    expect(free.body.expires_at).toBeNull();

    // a quiz without a policy: the default limit, accommodated
    const plain = await start(user, newQuiz());
    expect(plain.body.time_limit_seconds).toBe(Math.round(1800 * 1.5) + 60);
  });

  test.each([
    [{ time_multiplier: 0.5 }, 'time_multiplier'],
    [{ time_multiplier: 6 }, 'time_multiplier'],
    [{ extra_time_seconds: -1 }, 'extra_time_seconds'],
    [{ extra_time_seconds: 1.5 }, 'extra_time_seconds'],
    [{ multiplier: 2 }, 'multiplier'],
  ])('a bad accommodation %j is a 400 naming %s', async (body, field) => {
    const user = api.userId();
    expectValidationError(await put(`/api/users/${user}/accommodations`, body), field);
    expectError(await request(api.url, 'GET', `/api/users/${user}/accommodations`), 404, 'SETTING_NOT_FOUND');
  });
});

describe('overrides', () => {
  test("the override's time limit comes first, then the accommodation; its extra attempts add to max_attempts; DELETE removes it", async () => {
    const quiz = newQuiz();
    const user = api.userId();
    await put(`/api/quizzes/${quiz}/policy`, { time_limit_seconds: 600, max_attempts: 1 });
    const override = await put(`/api/quizzes/${quiz}/overrides/${user}`, { time_limit_seconds: 1000, extra_attempts: 1 });
    expect(override.status).toBe(200);
    expect(override.body).toEqual({ quiz_id: quiz, user_id: user, time_limit_seconds: 1000, extra_attempts: 1, closes_at: null });
    await put(`/api/users/${user}/accommodations`, { time_multiplier: 2 });

    const first = await start(user, quiz);
    expect(first.body.time_limit_seconds).toBe(2000);
    await request(api.url, 'POST', `/api/sessions/${first.body.id}/complete`, {});
    const second = await start(user, quiz);
    expect(second.status).toBe(201);
    expect(second.body.attempt_number).toBe(2);
    await request(api.url, 'POST', `/api/sessions/${second.body.id}/complete`, {});
    const third = expectError(await start(user, quiz), 409, 'ATTEMPT_LIMIT_REACHED');
    expect(third).toEqual(expect.objectContaining({ attempts_used: 2, max_attempts: 2 }));

    // another user of the same quiz: the policy alone
    const other = await start(api.userId(), quiz);
    expect(other.body.time_limit_seconds).toBe(600);

    const del = await request(api.url, 'DELETE', `/api/quizzes/${quiz}/overrides/${user}`);
    expect(del.status).toBe(204);
    expectError(await request(api.url, 'DELETE', `/api/quizzes/${quiz}/overrides/${user}`), 404, 'SETTING_NOT_FOUND');
    expectError(await request(api.url, 'GET', `/api/quizzes/${quiz}/overrides/${user}`), 404, 'SETTING_NOT_FOUND');
  });

  test("the override's closes_at replaces the policy's: the user may start after the others' window closed, until it", async () => {
    const quiz = newQuiz();
    const late = api.userId();
    await put(`/api/quizzes/${quiz}/policy`, { time_limit_seconds: 1800, opens_at: inMinutes(-60), closes_at: inMinutes(-1) });
    expectError(await start(api.userId(), quiz), 403, 'QUIZ_NOT_OPEN');
    const closesAt = inMinutes(10);
    await put(`/api/quizzes/${quiz}/overrides/${late}`, { closes_at: closesAt });
    const res = await start(late, quiz);
    expect(res.status).toBe(201);
    expect(res.body.expires_at).toBe(closesAt);
  });

  test.each([
    [{}, 'body'],
    [{ time_limit_seconds: -5 }, 'time_limit_seconds'],
    [{ extra_attempts: -1 }, 'extra_attempts'],
    [{ closes_at: 'soon' }, 'closes_at'],
    [{ extra_attempts: 1, note: 'x' }, 'note'],
  ])('a bad override %j is a 400 naming %s', async (body, field) => {
    expectValidationError(await put(`/api/quizzes/${newQuiz()}/overrides/${api.userId()}`, body), field);
  });
});

describe('roles', () => {
  let auth: Awaited<ReturnType<typeof startAuthApi>>;
  beforeAll(async () => {
    auth = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  });
  afterAll(async () => {
    await api
      .knex(ACCOMMODATION_TABLE)
      .where('user_id', 'like', `${auth.user('')}%`)
      .delete();
    await auth.close();
  });
  const token = async (role?: string) => bearer(await hsToken({ sub: auth.user(role ?? 'student'), ...(role ? { role } : {}) }));

  test('only a service writes settings; a service or a proctor reads them; a student reads none', async () => {
    const user = auth.user('accommodated');
    const quiz = newQuiz();
    const accommodation = `/api/users/${user}/accommodations`;
    const override = `/api/quizzes/${quiz}/overrides/${user}`;
    for (const role of [undefined, 'proctor']) {
      expectError(await request(auth.url, 'PUT', accommodation, { time_multiplier: 2 }, await token(role)), 403, 'FORBIDDEN');
      expectError(await request(auth.url, 'PUT', override, { extra_attempts: 2 }, await token(role)), 403, 'FORBIDDEN');
      expectError(await request(auth.url, 'DELETE', override, undefined, await token(role)), 403, 'FORBIDDEN');
    }
    expect((await request(auth.url, 'PUT', accommodation, { time_multiplier: 2 }, await token('service'))).status).toBe(200);
    expect((await request(auth.url, 'PUT', override, { extra_attempts: 2 }, await token('service'))).status).toBe(200);
    for (const role of ['proctor', 'service']) {
      expect((await request(auth.url, 'GET', accommodation, undefined, await token(role))).status).toBe(200);
      expect((await request(auth.url, 'GET', override, undefined, await token(role))).status).toBe(200);
    }
    expectError(await request(auth.url, 'GET', accommodation, undefined, await token()), 403, 'FORBIDDEN');
    expectError(await request(auth.url, 'GET', override, undefined, await token()), 403, 'FORBIDDEN');
    expect((await request(auth.url, 'DELETE', override, undefined, await token('service'))).status).toBe(204);
  });
});
