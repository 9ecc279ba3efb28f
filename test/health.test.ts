import { startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});

test('GET /health answers 200 while the process runs', async () => {
  const res = await request(api.url, 'GET', '/health');
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ status: 'ok' });
  expect(res.headers.get('x-request-id')).toBeTruthy();
});

test('GET /ready answers 200 with redis and postgres up', async () => {
  const res = await request(api.url, 'GET', '/ready');
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ status: 'ready', checks: { redis: 'up', postgres: 'up' } });
});
