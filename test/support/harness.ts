import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { request } from './http';
import type { attemptResponse } from '../../src/api/schemas/responses';
import { createApp } from '../../src/api/app';
import { createStreamHub, type StreamHub } from '../../src/api/streamHub';
import { loadConfig, type Config } from '../../src/shared/config';
import { createLogger, type LogSink } from '../../src/shared/logger';
import { createRuntime, type Runtime } from '../../src/shared/runtime';
import { Shutdown, ShutdownOrder } from '../../src/shared/shutdown';
import { isCluster } from '../../src/shared/redis';
import { dirtySetOf, eventsKey, keyLayout, sessionKey } from '../../src/shared/store/keys';
import type { SessionHooks } from '../../src/shared/sessionService';
import { SessionStore } from '../../src/shared/store/sessionStore';

/** A test's own API: a real Koa server on an ephemeral port over real Redis and PostgreSQL. */
export interface TestApi extends Runtime {
  config: Config;
  /** The API's Server-Sent Events. */
  streams: StreamHub;
  /** The connection name of its stream subscriptions (this harness's own: CLIENT LIST finds them). */
  streamsName: string;
  url: string;
  /** A user id unique to this harness; every attempt a test makes should use userId(). */
  userId(suffix?: string): string;
  /** Deletes every row and Redis key this harness's users made, then closes everything. */
  close(): Promise<void>;
}

/** The attempt JSON the API answers with (snake_case, as in the seeds): the API's own schema. */
export type AttemptJson = z.output<typeof attemptResponse>;

/**
 * Starts the API in-process against the test Redis and PostgreSQL (from the environment); its log
 * goes to `logSink` when given (else to this process's stdout and stderr).
 */
export async function startTestApi(overrides: Partial<Config> = {}, hooks?: SessionHooks, logSink?: LogSink): Promise<TestApi> {
  const config = loadConfig(process.env, { LOG_LEVEL: 'silent', PORT: 0, ...overrides });
  const log = createLogger(config.LOG_LEVEL, '', logSink);
  const shutdown = new Shutdown(log, 5000);
  const runtime = createRuntime(config, log, shutdown, 'test', hooks);
  await new Promise<void>((resolve) => (runtime.redis.status === 'ready' ? resolve() : runtime.redis.once('ready', () => resolve())));
  const prefix = `test-${randomUUID().slice(0, 8)}`;
  const streamsName = `quiz-session-test-streams-${prefix}`;
  const streams = createStreamHub(config, log, streamsName);
  shutdown.add('streams', () => streams.close(), ShutdownOrder.StopIntake);
  const app = createApp({
    service: runtime.service,
    policies: runtime.policies,
    streams,
    idempotency: runtime.idempotency,
    log,
    readiness: { redis: () => runtime.redis.ping(), postgres: () => runtime.knex.raw('select 1') },
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    ...runtime,
    config,
    streams,
    streamsName,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    userId: (suffix = randomUUID().slice(0, 8)) => `${prefix}-${suffix}`,
    async close() {
      streams.endAll();
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      try {
        await cleanupUsers(runtime, prefix);
      } finally {
        // the connections close even when the clean-up fails, so jest can exit
        await shutdown.run('test done');
      }
    },
  };
}

/** Removes the rows and Redis keys of every user whose id starts with `prefix`. */
export async function cleanupUsers(runtime: Pick<Runtime, 'knex' | 'redis'>, prefix: string): Promise<void> {
  const rows: Array<{ id: string }> = await runtime.knex('quiz_sessions').select('id').where('user_id', 'like', `${prefix}%`);
  const ids = rows.map((r) => r.id);
  if (runtime.redis.status === 'ready') {
    // attempts whose row never made it to PostgreSQL still have a Redis key: find them by user
    // every master's keys (one node, or each master of a cluster)
    const nodes = isCluster(runtime.redis) ? runtime.redis.nodes('master') : [runtime.redis];
    for (const node of nodes) {
      for await (const keys of node.scanStream({ match: 'session:*', count: 1000 }) as AsyncIterable<string[]>) {
        for (const key of keys) {
          // a key of that name that is not an attempt's hash is not this harness's
          const id = keyLayout().idOf(key);
          if (!id) continue;
          const user = await runtime.redis.hget(key, 'user_id').catch(() => null);
          if (user?.startsWith(prefix)) ids.push(id);
        }
      }
    }
    // one key per command: on a cluster the keys of different attempts are in different slots
    for (const id of ids) {
      await runtime.redis.del(sessionKey(id), eventsKey(id));
      await runtime.redis.zrem(dirtySetOf(id), id);
    }
  }
  if (ids.length) await runtime.knex('attempt_events').whereIn('attempt_id', ids).delete();
  await runtime.knex('quiz_sessions').where('user_id', 'like', `${prefix}%`).delete();
}

/** A start body for a fresh user and quiz of this harness; overrides change any field. */
export function buildStartBody(api: Pick<TestApi, 'userId'>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { user_id: api.userId(), quiz_id: `quiz-${randomUUID().slice(0, 8)}`, ...overrides };
}

/** Starts an attempt through the API with sensible defaults; overrides change any field. */
export async function buildSession(api: TestApi, overrides: Record<string, unknown> = {}, prefix = '/api/sessions'): Promise<AttemptJson> {
  const res = await request(api.url, 'POST', `${prefix}/start`, buildStartBody(api, overrides));
  if (res.status !== 201 && res.status !== 200) throw new Error(`start failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as AttemptJson;
}

/** The attempt's row in PostgreSQL, or undefined. */
export async function sessionRow(api: Pick<Runtime, 'knex'>, id: string): Promise<Record<string, unknown> | undefined> {
  return api.knex('quiz_sessions').where({ id }).first();
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once the wall clock is past `epochMs` (plus a small margin), e.g. an attempt's deadline. */
export async function sleepUntil(epochMs: number, marginMs = 50): Promise<void> {
  const wait = epochMs + marginMs - Date.now();
  if (wait > 0) await sleep(wait);
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** How many attempts are dirty, over every dirty set of the key layout (the store's own count). */
export const dirtyTotal = (redis: Runtime['redis']): Promise<number> => new SessionStore(redis, 60).dirtyCount();
