import { buildSession, sessionRow, startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * Start after the previous attempt closed in Redis whose PostgreSQL row is still open (its
 * write-behind pending, or the complete's own PostgreSQL write failed): the close is made durable
 * and a new attempt starts, instead of the start failing on the one-open-attempt rule.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api.close());

test('a start after an attempt closed only in Redis makes that close durable and starts a new attempt', async () => {
  const first = await buildSession(api);
  // abandoned in Redis alone, as if the PostgreSQL write had not happened yet
  const closed = await api.store.close(first.id, Date.now(), { guard: { kind: 'none' }, target: 'abandoned' });
  expect(closed.code).toBe('OK');
  expect(await sessionRow(api, first.id)).toMatchObject({ status: 'started' });

  const again = await request(api.url, 'POST', '/api/sessions/start', { user_id: first.user_id, quiz_id: first.quiz_id });
  expect(again.status).toBe(201);
  expect(again.body.id).not.toBe(first.id);
  expect(await sessionRow(api, first.id)).toMatchObject({ status: 'abandoned', version: 2 });
});
