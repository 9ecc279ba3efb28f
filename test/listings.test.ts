import { randomUUID } from 'node:crypto';
import { bearerFor, SECRET, startAuthApi } from './support/authApi';
import { expectAttemptShape, expectError, expectValidationError } from './support/contract';
import { buildSession, sessionRow, startTestApi, type AttemptJson, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * Staff listings: a quiz's attempts and a user's, keyset-paged in a stable order, open attempts in
 * their live state from Redis (not PostgreSQL's copy, a write-behind window old), and who may list.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api.close());

type Page = { attempts: AttemptJson[]; next_cursor: string | null };

async function page(path: string): Promise<Page> {
  const res = await request(api.url, 'GET', path);
  expect(res.status).toBe(200);
  for (const a of res.body.attempts) expectAttemptShape(a);
  return res.body;
}

/** Every attempt of the listing, page by page. */
async function all(base: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = base.includes('?') ? '&' : '?';
    const p: Page = await page(`${base}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    ids.push(...p.attempts.map((a) => a.id));
    cursor = p.next_cursor;
    pages++;
  } while (cursor !== null && pages < 50);
  return { ids, pages };
}

test("a quiz's attempts: every one exactly once across pages, in start order; the status filter uses the live status", async () => {
  const quiz = `list-${randomUUID().slice(0, 8)}`;
  const made: AttemptJson[] = [];
  for (let i = 0; i < 7; i++) made.push(await buildSession(api, { quiz_id: quiz }));
  const { ids, pages } = await all(`/api/quizzes/${quiz}/attempts`, 3);
  expect(ids).toEqual(made.map((a) => a.id));
  expect(pages).toBe(3);

  // live state: a write PostgreSQL does not have yet shows; a complete shows under its status
  const written = await request(api.url, 'PATCH', `/api/sessions/${made[0].id}/progress`, { question_id: 'q1', answer: 'live' });
  expect(written.status).toBe(200);
  expect((await sessionRow(api, made[0].id))!.version).toBe(1);
  const first = (await page(`/api/quizzes/${quiz}/attempts?limit=1`)).attempts[0];
  expect(first).toMatchObject({ id: made[0].id, version: written.body.version, answers: { q1: 'live' }, status: 'in_progress' });

  await request(api.url, 'POST', `/api/sessions/${made[1].id}/complete`, {});
  expect((await all(`/api/quizzes/${quiz}/attempts?status=completed`, 2)).ids).toEqual([made[1].id]);
  expect((await all(`/api/quizzes/${quiz}/attempts?status=in_progress`, 2)).ids).toEqual([made[0].id]);
  expect((await all(`/api/quizzes/${quiz}/attempts?status=started`, 10)).ids).toEqual(made.slice(2).map((a) => a.id));
  expect((await all(`/api/quizzes/${quiz}/attempts?user_id=${encodeURIComponent(made[3].user_id)}`, 10)).ids).toEqual([made[3].id]);
});

test("a user's attempts, of every quiz or of one", async () => {
  const user = api.userId(`lister-${randomUUID().slice(0, 6)}`);
  const a = await buildSession(api, { user_id: user, quiz_id: `q-a-${randomUUID().slice(0, 6)}` });
  const b = await buildSession(api, { user_id: user, quiz_id: `q-b-${randomUUID().slice(0, 6)}` });
  expect((await all(`/api/users/${encodeURIComponent(user)}/attempts`, 1)).ids).toEqual([a.id, b.id]);
  expect((await all(`/api/users/${encodeURIComponent(user)}/attempts?quiz_id=${b.quiz_id}`, 5)).ids).toEqual([b.id]);
});

test.each([
  ['?limit=0', 'limit'],
  ['?limit=201', 'limit'],
  ['?status=finished', 'status'],
  ['?cursor=not-a-cursor', 'cursor'],
  ['?sort=desc', 'sort'],
])('a bad query %s is a 400 naming %s', async (query, field) => {
  expectValidationError(await request(api.url, 'GET', `/api/quizzes/some-quiz/attempts${query}`), field);
});

describe('with real tokens', () => {
  let auth: Awaited<ReturnType<typeof startAuthApi>>;
  beforeAll(async () => {
    auth = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  });
  afterAll(async () => auth.close());
  const as = bearerFor;

  test('a quiz listing for a proctor of the quiz or a service; a user listing for a service or the student themselves', async () => {
    const quiz = auth.user('listed-quiz');
    const student = await as(auth.user('stu'));
    expect((await request(auth.url, 'POST', '/api/sessions/start', { quiz_id: quiz }, student)).status).toBe(201);
    const quizPath = `/api/quizzes/${quiz}/attempts`;
    const userPath = `/api/users/${auth.user('stu')}/attempts`;

    const service = await as(auth.user('lms'), { role: 'service' });
    const proctor = await as(auth.user('pro'), { role: 'proctor', quiz_ids: [quiz] });
    const otherProctor = await as(auth.user('pro'), { role: 'proctor', quiz_ids: ['elsewhere'] });
    const otherStudent = await as(auth.user('someone'));

    for (const token of [service, proctor])
      expect((await request(auth.url, 'GET', quizPath, undefined, token)).body.attempts).toHaveLength(1);
    for (const token of [otherProctor, student]) expectError(await request(auth.url, 'GET', quizPath, undefined, token), 403, 'FORBIDDEN');
    for (const token of [service, student])
      expect((await request(auth.url, 'GET', userPath, undefined, token)).body.attempts).toHaveLength(1);
    for (const token of [proctor, otherStudent]) expectError(await request(auth.url, 'GET', userPath, undefined, token), 403, 'FORBIDDEN');
  });
});
