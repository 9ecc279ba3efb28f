import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createApp } from '../../src/api/app';
import { loadConfig, type Config } from '../../src/shared/config';
import { createLogger } from '../../src/shared/logger';
import { createRuntime, type Runtime } from '../../src/shared/runtime';
import { Shutdown } from '../../src/shared/shutdown';
import { DIRTY_SET_KEY, sessionKey } from '../../src/shared/store/sessionStore';
import type { SessionHooks } from '../../src/shared/sessionService';

/** A test's own API: a real Koa server on an ephemeral port over real Redis and PostgreSQL. */
export interface TestApi extends Runtime {
  config: Config;
  url: string;
  /** A user id unique to this harness; every attempt a test makes should use userId(). */
  userId(suffix?: string): string;
  /** Deletes every row and Redis key this harness's users made, then closes everything. */
  close(): Promise<void>;
}

/** Starts the API in-process against the test Redis and PostgreSQL (from the environment). */
export async function startTestApi(overrides: Partial<Config> = {}, hooks?: SessionHooks): Promise<TestApi> {
  const config = loadConfig(process.env, { LOG_LEVEL: 'silent', PORT: 0, ...overrides });
  const log = createLogger(config.LOG_LEVEL);
  const shutdown = new Shutdown(log, 5000);
  const runtime = createRuntime(config, log, shutdown, 'test', hooks);
  await new Promise<void>((resolve) => (runtime.redis.status === 'ready' ? resolve() : runtime.redis.once('ready', () => resolve())));
  const app = createApp({
    service: runtime.service,
    log,
    readiness: { redis: () => runtime.redis.ping(), postgres: () => runtime.knex.raw('select 1') },
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const prefix = `test-${randomUUID().slice(0, 8)}`;
  return {
    ...runtime,
    config,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    userId: (suffix = randomUUID().slice(0, 8)) => `${prefix}-${suffix}`,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await cleanupUsers(runtime, prefix);
      await shutdown.run('test done');
    },
  };
}

/** Removes the rows and Redis keys of every user whose id starts with `prefix`. */
export async function cleanupUsers(runtime: Pick<Runtime, 'knex' | 'redis'>, prefix: string): Promise<void> {
  const rows: Array<{ id: string }> = await runtime.knex('quiz_sessions').select('id').where('user_id', 'like', `${prefix}%`);
  const ids = rows.map((r) => r.id);
  if (runtime.redis.status === 'ready') {
    // attempts whose row never made it to PostgreSQL still have a Redis key: find them by user
    const stream = runtime.redis.scanStream({ match: 'session:*', count: 1000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      for (const key of keys) {
        const user = await runtime.redis.hget(key, 'user_id');
        if (user?.startsWith(prefix)) ids.push(key.slice('session:'.length));
      }
    }
    if (ids.length) {
      await runtime.redis.del(...ids.map(sessionKey));
      await runtime.redis.zrem(DIRTY_SET_KEY, ...ids);
    }
  }
  await runtime.knex('quiz_sessions').where('user_id', 'like', `${prefix}%`).delete();
}

/** A JSON request; returns status, headers and parsed body. */
export async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Starts an attempt through the API with sensible defaults; overrides change any field. */
export async function buildSession(api: TestApi, overrides: Record<string, unknown> = {}, prefix = '/api/sessions') {
  const res = await request(api.url, 'POST', `${prefix}/start`, {
    user_id: api.userId(),
    quiz_id: `quiz-${randomUUID().slice(0, 8)}`,
    ...overrides,
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`start failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; version: number; user_id: string; quiz_id: string | number; [k: string]: unknown };
}
