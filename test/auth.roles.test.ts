import { bearer, hsToken, SECRET, startAuthApi, bearerFor } from './support/authApi';
import { expectError } from './support/contract';
import { request } from './support/http';

/*
 * Roles (issue 12): a service does everything; a proctor reads any attempt (of its quiz_ids) but
 * never acts for the student; a student acts on their own attempts and cannot choose the time
 * limit. Tokens without an expiry, and (with AUTH_MAX_TOKEN_AGE_SECONDS) older than the limit, are
 * refused. Real HS256 tokens against a real API.
 */

describe('roles', () => {
  let api: Awaited<ReturnType<typeof startAuthApi>>;
  beforeAll(async () => {
    api = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  });
  afterAll(async () => api.close());

  const as = bearerFor;
  const student = (name: string) => as(api.user(name));
  const proctor = (quizIds?: string[]) => as(api.user('proctor'), { role: 'proctor', ...(quizIds ? { quiz_ids: quizIds } : {}) });
  const service = () => as(api.user('grader'), { role: 'service' });

  async function startFor(name: string, quizId = 'midterm') {
    const res = await request(api.url, 'POST', '/api/sessions/start', { quiz_id: quizId }, await student(name));
    expect(res.status).toBe(201);
    return res.body as { id: string; version: number; time_limit_seconds: number };
  }

  test('a student who sends time_limit_seconds is refused with 403 and no attempt starts', async () => {
    for (const limit of [0, 60, 99_999]) {
      const res = await request(
        api.url,
        'POST',
        '/api/sessions/start',
        { quiz_id: 'final-exam', time_limit_seconds: limit },
        await student('eve'),
      );
      expectError(res, 403, 'FORBIDDEN');
      expect(res.body.message).toMatch(/time_limit_seconds/);
    }
    // nothing was started: the next start without a limit creates the attempt (201, not a resume)
    const res = await request(api.url, 'POST', '/api/sessions/start', { quiz_id: 'final-exam' }, await student('eve'));
    expect(res.status).toBe(201);
    expect(res.body.time_limit_seconds).toBe(1800);
  });

  test('a service may give a start its time limit', async () => {
    const res = await request(
      api.url,
      'POST',
      '/api/sessions/start',
      { user_id: api.user('sam'), quiz_id: 'timed', time_limit_seconds: 0 },
      await service(),
    );
    expect(res.status).toBe(201);
    expect(res.body.time_limit_seconds).toBe(0);
    expect(res.body.expires_at).toBeNull();
  });

  test('a proctor reads any attempt, and may not start, answer, complete or abandon one', async () => {
    const attempt = await startFor('pat');
    const read = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, await proctor());
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(attempt.id);

    const token = await proctor();
    expectError(
      await request(api.url, 'POST', '/api/sessions/start', { user_id: api.user('pat'), quiz_id: 'other' }, token),
      403,
      'FORBIDDEN',
    );
    for (const method of ['PATCH', 'PUT']) {
      expectError(
        await request(api.url, method, `/api/sessions/${attempt.id}/progress`, { question_id: 'q1', answer: 'A' }, token),
        403,
        'FORBIDDEN',
      );
    }
    expectError(await request(api.url, 'POST', `/api/sessions/${attempt.id}/complete`, {}, token), 403, 'FORBIDDEN');
    expectError(await request(api.url, 'POST', `/api/sessions/${attempt.id}/abandon`, {}, token), 403, 'FORBIDDEN');

    // nothing changed
    const after = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, await student('pat'));
    expect(after.status).toBe(200);
    expect(after.body.version).toBe(attempt.version);
    expect(after.body.answers).toEqual({});
    expect(after.body.status).toBe('started');
  });

  test('a proctor with quiz_ids reads attempts of those quizzes only', async () => {
    const mine = await startFor('quinn', 'quiz-a');
    const other = await startFor('quinn', 'quiz-b');
    const token = await proctor(['quiz-a']);
    expect((await request(api.url, 'GET', `/api/sessions/${mine.id}`, undefined, token)).status).toBe(200);
    const refused = await request(api.url, 'GET', `/api/sessions/${other.id}`, undefined, token);
    expectError(refused, 403, 'FORBIDDEN');
    expect(JSON.stringify(refused.body)).not.toContain(api.user('quinn'));
  });

  test('a proctor token whose quiz_ids is not a list of ids is refused with 401', async () => {
    const attempt = await startFor('rae');
    const token = await as(api.user('proctor'), { role: 'proctor', quiz_ids: 'quiz-a' });
    expectError(await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, token), 401, 'UNAUTHORIZED');
  });

  test('a student still acts only on their own attempts; a service on any', async () => {
    const attempt = await startFor('sid');
    expectError(await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, await student('tom')), 403, 'FORBIDDEN');
    const write = await request(
      api.url,
      'PATCH',
      `/api/sessions/${attempt.id}/progress`,
      { question_id: 'q1', answer: 'A' },
      await service(),
    );
    expect(write.status).toBe(200);
    expect(write.body.answers).toEqual({ q1: 'A' });
  });

  test('a token without exp is refused with 401, however it is otherwise valid', async () => {
    const attempt = await startFor('una');
    const forever = bearer(await hsToken({ sub: api.user('una') }, { expiresIn: null }));
    const res = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, forever);
    expectError(res, 401, 'UNAUTHORIZED');
    expect(res.body.message).toMatch(/expiry/);
    expect(res.headers.get('www-authenticate')).toMatch(/invalid_token/);
  });
});

describe('with AUTH_MAX_TOKEN_AGE_SECONDS', () => {
  let api: Awaited<ReturnType<typeof startAuthApi>>;
  beforeAll(async () => {
    api = await startAuthApi({ AUTH_JWT_SECRET: SECRET, AUTH_MAX_TOKEN_AGE_SECONDS: 3600 });
  });
  afterAll(async () => api.close());

  const start = (token: string) => request(api.url, 'POST', '/api/sessions/start', { quiz_id: 'aged' }, bearer(token));

  test('a token issued within the limit is accepted; an older one, or one without iat, is refused with 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await start(await hsToken({ sub: api.user('fresh') }, { issuedAt: now - 60 }))).status).toBe(201);
    const old = await start(await hsToken({ sub: api.user('old') }, { issuedAt: now - 2 * 3600, expiresIn: 3600 }));
    expectError(old, 401, 'UNAUTHORIZED');
    const noIat = await start(await hsToken({ sub: api.user('no-iat') }, { issuedAt: null }));
    expectError(noIat, 401, 'UNAUTHORIZED');
  });
});
