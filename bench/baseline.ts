/**
 * The bare baseline the service is measured against: a minimal Koa app (router and JSON body
 * parser, as the service uses) on the same Redis, one route per operation:
 *   GET   /base/:n           one HGETALL of a hash shaped like an attempt (same fields, 20 answers)
 *   PATCH /base/:n/progress  one EVALSHA of the service's own progress script against such a hash
 * No validation, no error contract, no metrics, no queue: what is left of the service's time
 * above these is what the service itself costs. Run as its own process:
 *   PORT=... REDIS_URL=... node dist/bench/bench/baseline.js
 */
import Router from '@koa/router';
import { Redis } from 'ioredis';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { contextFragment } from '../src/shared/domain/events';
import { sessionScripts } from '../src/shared/store/luaScripts';

/** Redis key of baseline hash `n` (never a `session:` key, so the workers leave it alone). */
export const baselineKey = (n: number | string): string => `bench:base:${n}`;
/** The dirty set the baseline script writes to (the workers never read it). */
export const BASELINE_DIRTY_KEY = 'bench:base:dirty';

interface ProgressCommand {
  benchProgress(key: string, dirtyKey: string, eventsKey: string, ...args: string[]): Promise<[string, number, string[]]>;
}

/** The event context the baseline's writes carry (the service's writes carry the request's). */
const BASELINE_CONTEXT = contextFragment({ actor: { id: null, role: 'open' }, requestId: null });

/** The baseline Koa app over `redis`. */
export function createBaselineApp(redis: Redis): Koa {
  // its keys carry no bucket tag: the single layout's script (plain PUBLISH)
  redis.defineCommand('benchProgress', sessionScripts('single').progress);
  const scripted = redis as Redis & ProgressCommand;
  const router = new Router();
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/base/:n', async (ctx) => {
    const hash = await redis.hgetall(baselineKey(ctx.params.n));
    if (hash.version === undefined) ctx.throw(404);
    ctx.body = hash;
  });
  router.patch('/base/:n/progress', async (ctx) => {
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
    const key = baselineKey(ctx.params.n);
    const [code, , flat] = await scripted.benchProgress(key, BASELINE_DIRTY_KEY, `${key}:events`, key, ...args);
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
