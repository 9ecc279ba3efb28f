import { buildSession, startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});

test('a started attempt takes an answer and completes', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  expect(s.status).toBe('started');
  const p = await request(api.url, 'PATCH', `/api/sessions/${s.id}/progress`, { question_id: 'q1', answer: 'B', version: 1 });
  expect(p.status).toBe(200);
  expect(p.body).toMatchObject({ version: 2, status: 'in_progress', answers: { q1: 'B' } });
  const c = await request(api.url, 'POST', `/api/sessions/${s.id}/complete`);
  expect(c.status).toBe(200);
  expect(c.body.status).toBe('completed');
  const row = await api.knex('quiz_sessions').where({ id: s.id }).first();
  expect(row).toMatchObject({ status: 'completed', version: 3, answers: { q1: 'B' } });
});
