import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { renderError } from '../src/api/middleware/errorHandler';
import { PAGE_HEADERS, registerWebRoutes } from '../src/api/routes/web';
import { createLogger } from '../src/shared/logger';
import { startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * The pages' routes (GET /demo, /console, /web/:file) over HTTP: the built files with their
 * security headers, the query checked, only the bundle's own files, and a 503 where no build is.
 * In a browser: test/e2e/pages.test.ts.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(() => api.close());

test('GET /demo and /console: the HTML with the CSP and the other security headers; a script per page, no inline one', async () => {
  for (const [path, script] of [
    ['/demo?quiz=final-exam&user=u-42', '/web/demo.js'],
    ['/demo?quiz=final-exam', '/web/demo.js'],
    ['/console?quiz=final-exam', '/web/console.js'],
  ]) {
    const res = await request(api.url, 'GET', path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    for (const [name, value] of Object.entries(PAGE_HEADERS)) expect(res.headers.get(name)).toBe(value);
    expect(res.body).toContain(`<script type="module" src="${script}"></script>`);
    expect(res.body).not.toMatch(/<script>|<script [^>]*>[^<]/);
  }
});

test('the query is checked: a missing or empty quiz, an unknown parameter, a token in the query are 400s naming the field', async () => {
  const cases: Array<[string, string]> = [
    ['/demo', 'quiz'],
    ['/demo?quiz=', 'quiz'],
    [`/demo?quiz=${'x'.repeat(129)}`, 'quiz'],
    ['/demo?quiz=q&user=%01', 'user'],
    ['/demo?quiz=q&token=eyJ', 'token'],
    ['/console', 'quiz'],
  ];
  for (const [path, field] of cases) {
    const res = await request(api.url, 'GET', path);
    expect([path, res.status, res.body.errorCode, res.body.field]).toEqual([path, 400, 'VALIDATION_ERROR', field]);
  }
  expect((await request(api.url, 'GET', '/console?quiz=q&extra=1')).status).toBe(400);
});

test('GET /web/:file serves only the bundle (scripts, stylesheet) with its type; anything else is 404', async () => {
  const js = await request(api.url, 'GET', '/web/demo.js');
  expect(js.status).toBe(200);
  expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  expect(js.headers.get('content-security-policy')).toBe(PAGE_HEADERS['content-security-policy']);
  expect((await request(api.url, 'GET', '/web/session-client.js')).status).toBe(200);
  expect((await request(api.url, 'GET', '/web/app.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
  for (const path of ['/web/demo.html', '/web/nothing.js', '/web/..%2Fpackage.json', '/web/constructor', '/web/__proto__']) {
    expect([path, (await request(api.url, 'GET', path)).status]).toEqual([path, 404]);
  }
});

test('without a build the pages answer 503, naming what is missing and nothing else', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'no-web-'));
  const app = new Koa();
  const router = new Router();
  registerWebRoutes(router, dir);
  const log = createLogger('silent');
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      renderError(ctx, err, log, Date.now);
    }
  });
  app.use(router.routes());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/demo?quiz=q`);
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body).toMatchObject({ errorCode: 'SERVICE_UNAVAILABLE', message: 'The pages are not built on this server (npm run build)' });
    expect(JSON.stringify(body)).not.toContain(dir);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
