import { bearer, hsToken, SECRET, startAuthApi } from './support/authApi';
import { expectError } from './support/contract';
import { SseClient } from './support/sse';
import { request, type TestResponse } from './support/http';

/*
 * Every role against every endpoint, with real HS256 tokens against a real API: what each may do
 * succeeds (2xx, or the 404 of a setting that does not exist), what it may not is 403 FORBIDDEN and
 * changes nothing. Each cell gets a fresh attempt of its own, so one cell's write never decides
 * another's answer.
 *
 *   service   everything
 *   proctor   reads, extends, pauses, resumes and reopens any attempt (of its quiz_ids, when it
 *             has them), reads its events, lists its quizzes' attempts; reads policies and
 *             settings; never starts, answers, completes or abandons, nor reports client events
 *   student   its own attempts: start, read, progress, complete, abandon, events (read and
 *             report), its own listing; reads policies
 */

let api: Awaited<ReturnType<typeof startAuthApi>>;
beforeAll(async () => {
  api = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
});
afterAll(async () => api.close());

const QUIZ = () => api.user('matrix-quiz');
const OTHER_QUIZ = () => api.user('matrix-other-quiz');
const OWNER = () => api.user('owner');

type Who = 'owner' | 'another student' | 'proctor' | 'proctor of this quiz' | 'proctor of another quiz' | 'service';
const WHO: Who[] = ['owner', 'another student', 'proctor', 'proctor of this quiz', 'proctor of another quiz', 'service'];

async function tokenOf(who: Who): Promise<Record<string, string>> {
  const sign = async (sub: string, extra: Record<string, unknown> = {}) => bearer(await hsToken({ sub, ...extra }));
  switch (who) {
    case 'owner':
      return sign(OWNER());
    case 'another student':
      return sign(api.user('someone-else'));
    case 'proctor':
      return sign(api.user('proctor'), { role: 'proctor' });
    case 'proctor of this quiz':
      return sign(api.user('proctor'), { role: 'proctor', quiz_ids: [QUIZ()] });
    case 'proctor of another quiz':
      return sign(api.user('proctor'), { role: 'proctor', quiz_ids: [OTHER_QUIZ()] });
    case 'service':
      return sign(api.user('lms'), { role: 'service' });
  }
}

/** A fresh open, timed attempt of OWNER at QUIZ (the previous one is resumed, if paused, and completed first, by the service). */
async function freshAttempt(): Promise<{ id: string; version: number }> {
  const service = await tokenOf('service');
  const res = await request(api.url, 'POST', '/api/sessions/start', { user_id: OWNER(), quiz_id: QUIZ() }, service);
  if (res.status === 201) return res.body;
  expect(res.status).toBe(200);
  expect((await request(api.url, 'POST', `/api/sessions/${res.body.id}/resume`, {}, service)).status).toBe(200);
  expect((await request(api.url, 'POST', `/api/sessions/${res.body.id}/complete`, {}, service)).status).toBe(200);
  const fresh = await request(api.url, 'POST', '/api/sessions/start', { user_id: OWNER(), quiz_id: QUIZ() }, service);
  expect(fresh.status).toBe(201);
  return fresh.body;
}

interface Endpoint {
  name: string;
  /** Whether `who` may call it. */
  allowed: (who: Who) => boolean;
  call: (id: string, headers: Record<string, string>) => Promise<TestResponse>;
}

const isProctor = (who: Who) => who.startsWith('proctor');
const inScope = (who: Who) => who !== 'proctor of another quiz';
const attemptReader = (who: Who) => who === 'owner' || who === 'service' || (isProctor(who) && inScope(who));
const studentAction = (who: Who) => who === 'owner' || who === 'service';
const liveControl = (who: Who) => who === 'service' || (isProctor(who) && inScope(who));
const serviceOnly = (who: Who) => who === 'service';
const staff = (who: Who) => who === 'service' || isProctor(who);

const post = (path: string, body: unknown) => (id: string, h: Record<string, string>) =>
  request(api.url, 'POST', path.replace(':id', id), body, h);

/** Opens a stream and closes it at once: the status (and, refused, the error body) as a response. */
const stream =
  (path: (id: string) => string) =>
  async (id: string, h: Record<string, string>): Promise<TestResponse> => {
    const opened = await SseClient.open(api.url + path(id), h);
    if (opened.client) {
      // 200 comes only once the stream is subscribed and the access check passed
      opened.client.close();
      return { status: 200, headers: opened.client.response.headers, body: undefined };
    }
    return { status: opened.status, headers: opened.headers, body: opened.body };
  };

const ENDPOINTS: Endpoint[] = [
  {
    name: 'POST start (for the owner)',
    allowed: (who) => who === 'owner' || who === 'service',
    call: (_id, h) => request(api.url, 'POST', '/api/sessions/start', { user_id: OWNER(), quiz_id: QUIZ() }, h),
  },
  { name: 'GET attempt', allowed: attemptReader, call: (id, h) => request(api.url, 'GET', `/api/sessions/${id}`, undefined, h) },
  {
    name: 'PATCH progress',
    allowed: studentAction,
    call: (id, h) => request(api.url, 'PATCH', `/api/sessions/${id}/progress`, { question_id: 'q1', answer: 'A' }, h),
  },
  {
    name: 'PUT progress',
    allowed: studentAction,
    call: (id, h) => request(api.url, 'PUT', `/api/sessions/${id}/progress`, { question_id: 'q1', answer: 'A' }, h),
  },
  { name: 'POST complete', allowed: studentAction, call: post('/api/sessions/:id/complete', {}) },
  { name: 'POST abandon', allowed: studentAction, call: post('/api/sessions/:id/abandon', {}) },
  { name: 'POST extend', allowed: liveControl, call: post('/api/sessions/:id/extend', { seconds: 60, reason: 'matrix' }) },
  { name: 'POST extend with reopen', allowed: liveControl, call: post('/api/sessions/:id/extend', { seconds: 60, reopen: true }) },
  { name: 'POST pause', allowed: liveControl, call: post('/api/sessions/:id/pause', { reason: 'matrix' }) },
  { name: 'POST resume', allowed: liveControl, call: post('/api/sessions/:id/resume', {}) },
  { name: 'POST pause (seed 1 prefix)', allowed: liveControl, call: post('/sessions/:id/pause', {}) },
  { name: 'GET events', allowed: attemptReader, call: (id, h) => request(api.url, 'GET', `/api/sessions/${id}/events`, undefined, h) },
  {
    name: 'POST events',
    allowed: studentAction,
    call: post('/api/sessions/:id/events', { events: [{ type: 'page_blurred', client_time: '2026-12-01T09:00:00Z' }] }),
  },
  { name: 'GET attempt stream', allowed: attemptReader, call: stream((id) => `/api/sessions/${id}/stream`) },
  {
    name: 'GET quiz stream',
    allowed: (who) => who === 'service' || (isProctor(who) && inScope(who)),
    call: stream(() => `/api/quizzes/${QUIZ()}/stream`),
  },
  {
    name: 'GET quiz attempts',
    allowed: (who) => who === 'service' || (isProctor(who) && inScope(who)),
    call: (_id, h) => request(api.url, 'GET', `/api/quizzes/${QUIZ()}/attempts`, undefined, h),
  },
  {
    name: 'GET user attempts',
    allowed: studentAction,
    call: (_id, h) => request(api.url, 'GET', `/api/users/${OWNER()}/attempts`, undefined, h),
  },
  {
    name: 'GET policy',
    allowed: () => true,
    call: (_id, h) => request(api.url, 'GET', `/api/quizzes/${QUIZ()}/policy`, undefined, h),
  },
  {
    name: 'PUT policy',
    allowed: serviceOnly,
    call: (_id, h) => request(api.url, 'PUT', `/api/quizzes/${OTHER_QUIZ()}/policy`, { time_limit_seconds: 600 }, h),
  },
  {
    name: 'GET accommodations',
    allowed: staff,
    call: (_id, h) => request(api.url, 'GET', `/api/users/${OWNER()}/accommodations`, undefined, h),
  },
  {
    name: 'PUT accommodations',
    allowed: serviceOnly,
    call: (_id, h) => request(api.url, 'PUT', `/api/users/${api.user('accommodated')}/accommodations`, { time_multiplier: 1.5 }, h),
  },
  {
    name: 'GET override',
    allowed: staff,
    call: (_id, h) => request(api.url, 'GET', `/api/quizzes/${QUIZ()}/overrides/${OWNER()}`, undefined, h),
  },
  {
    name: 'PUT override',
    allowed: serviceOnly,
    call: (_id, h) => request(api.url, 'PUT', `/api/quizzes/${OTHER_QUIZ()}/overrides/${OWNER()}`, { extra_attempts: 1 }, h),
  },
  {
    name: 'DELETE override',
    allowed: serviceOnly,
    call: (_id, h) => request(api.url, 'DELETE', `/api/quizzes/${OTHER_QUIZ()}/overrides/${api.user('nobody')}`, undefined, h),
  },
];

const CELLS = ENDPOINTS.flatMap((endpoint) => WHO.map((who) => [endpoint.name, who] as const));

test.each(CELLS)('%s as %s', async (name, who) => {
  const endpoint = ENDPOINTS.find((e) => e.name === name)!;
  const attempt = await freshAttempt();
  const res = await endpoint.call(attempt.id, await tokenOf(who));
  if (endpoint.allowed(who)) {
    // allowed: done, or a setting that does not exist (GET, DELETE of one never made)
    const missingSetting = res.status === 404 && ['POLICY_NOT_FOUND', 'SETTING_NOT_FOUND'].includes(res.body?.errorCode);
    if (res.status >= 300 && !missingSetting)
      throw new Error(`${name} as ${who}: expected success, got ${res.status} ${JSON.stringify(res.body)}`);
    return;
  }
  expectError(res, 403, 'FORBIDDEN');
  // refused: the attempt is as it was
  const after = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, await tokenOf('service'));
  expect(after.body).toMatchObject({ version: attempt.version, status: 'started', answers: {} });
});

test('a refused control reveals nothing of the attempt', async () => {
  const attempt = await freshAttempt();
  for (const who of ['owner', 'another student', 'proctor of another quiz'] as const) {
    const res = await request(api.url, 'POST', `/api/sessions/${attempt.id}/extend`, { seconds: 60 }, await tokenOf(who));
    expectError(res, 403, 'FORBIDDEN');
    expect(res.body.session).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toContain(OWNER());
  }
});
