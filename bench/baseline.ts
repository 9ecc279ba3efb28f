/**
 * The bare baseline the service is measured against: the true floor of a Koa app on the same
 * Redis, one Redis round trip per request and nothing else:
 *   GET   /base/:n           one `GET` of the attempt stored as its JSON text, sent as it is
 *   PATCH /base/:n/progress  one small versioned-merge script (BARE_MERGE_SCRIPT: decode, check the
 *                            version, set one answer, encode, `SET`), its JSON text sent back
 * Koa with @koa/router and koa-bodyparser, as the service uses them; no validation, no error
 * contract, no log line, no metrics, no queue: what the service spends above these is its own.
 *
 * The heavier baseline of earlier runs is kept beside it, to explain results:
 *   GET   /heavy/:n           one HGETALL of a hash shaped like an attempt, `JSON.stringify`d
 *   PATCH /heavy/:n/progress  one EVALSHA of the service's own progress script on such a hash
 * Run as its own process:
 *   PORT=... REDIS_URL=... node dist/bench/bench/baseline.js
 */
import Router from '@koa/router';
import { Redis } from 'ioredis';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { contextFragment } from '../src/shared/domain/events';
import { sessionScripts } from '../src/shared/store/luaScripts';

/** Redis key of the bare baseline's attempt `n`: its JSON text (never a `session:` key, so the workers leave it alone). */
export const baselineKey = (n: number | string): string => `bench:bare:${n}`;
/** Redis key of the heavy baseline's hash `n`. */
export const heavyBaselineKey = (n: number | string): string => `bench:base:${n}`;
/** The dirty set the heavy baseline's script writes to (the workers never read it). */
export const BASELINE_DIRTY_KEY = 'bench:base:dirty';

/**
 * The bare write: the attempt's JSON decoded, its version checked against ARGV[1] ('' for any),
 * one answer set (ARGV[2] question id, ARGV[3] its JSON), the current question (ARGV[4], '' for
 * none) and last_updated (ARGV[5]) set, the version bumped, encoded and `SET` back.
 * Returns {'OK', json} | {'CONFLICT', json} | {'MISS'}.
 */
export const BARE_MERGE_SCRIPT = `
local s = redis.call('GET', KEYS[1])
if not s then return {'MISS'} end
local a = cjson.decode(s)
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= a.version then return {'CONFLICT', s} end
a.answers[ARGV[2]] = cjson.decode(ARGV[3])
if ARGV[4] ~= '' then a.current_question = tonumber(ARGV[4]) end
a.last_updated = ARGV[5]
a.version = a.version + 1
local out = cjson.encode(a)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
return {'OK', out}
`;

interface BaselineCommands {
  bareMerge(key: string, ...args: string[]): Promise<[string, string?]>;
  heavyProgress(key: string, dirtyKey: string, eventsKey: string, ...args: string[]): Promise<[string, number, string[]]>;
}

/** The event context the heavy baseline's writes carry (the service's writes carry the request's). */
const BASELINE_CONTEXT = contextFragment({ actor: { id: null, role: 'open' }, requestId: null });

/** The version in an attempt's JSON text (`"version":N`), for the ETag: no parse of the whole text. */
const versionOf = (json: string): string => /"version":(\d+)/.exec(json)?.[1] ?? '0';

/** The baseline Koa app over `redis`. */
export function createBaselineApp(redis: Redis): Koa {
  redis.defineCommand('bareMerge', { numberOfKeys: 1, lua: BARE_MERGE_SCRIPT });
  // its keys carry no bucket tag: the single layout's script (plain PUBLISH)
  redis.defineCommand('heavyProgress', sessionScripts('single').progress);
  const scripted = redis as Redis & BaselineCommands;
  const router = new Router();
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/base/:n', async (ctx) => {
    const json = await redis.get(baselineKey(ctx.params.n));
    if (json === null) ctx.throw(404);
    ctx.type = 'application/json';
    ctx.body = json;
  });
  router.patch('/base/:n/progress', async (ctx) => {
    const body = ctx.request.body as { version?: number; question_id: string; answer: unknown; current_question?: number };
    const [code, json] = await scripted.bareMerge(
      baselineKey(ctx.params.n),
      body.version === undefined ? '' : String(body.version),
      body.question_id,
      JSON.stringify(body.answer),
      body.current_question === undefined ? '' : String(body.current_question),
      new Date().toISOString(),
    );
    if (code === 'MISS') ctx.throw(404);
    ctx.status = code === 'OK' ? 200 : 409;
    ctx.set('etag', `"${versionOf(json!)}"`);
    ctx.type = 'application/json';
    ctx.body = json;
  });
  router.get('/heavy/:n', async (ctx) => {
    const hash = await redis.hgetall(heavyBaselineKey(ctx.params.n));
    if (hash.version === undefined) ctx.throw(404);
    ctx.body = hash;
  });
  router.patch('/heavy/:n/progress', async (ctx) => {
    const body = ctx.request.body as { question_id?: string; answer?: unknown; current_question?: number };
    const args = [
      String(Date.now()),
      '1800',
      '',
      '',
      BASELINE_CONTEXT,
      body.current_question === undefined ? '' : String(body.current_question),
      '500',
      '', // no idempotency key
    ];
    if (body.question_id !== undefined) args.push(`a:${body.question_id}`, JSON.stringify(body.answer));
    const key = heavyBaselineKey(ctx.params.n);
    const [code, , flat] = await scripted.heavyProgress(key, BASELINE_DIRTY_KEY, `${key}:events`, key, ...args);
    const out: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1];
    ctx.body = { code, ...out };
  });
  const app = new Koa();
  app.use(bodyParser({ enableTypes: ['json'] }));
  app.use(router.routes());
  return app;
}

if (require.main === module) {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { connectionName: 'bench-baseline' });
  const server = createBaselineApp(redis).listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  server.keepAliveTimeout = 65_000;
  const stop = () => {
    server.close(() => void redis.quit().finally(() => process.exit(0)));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
