import type Router from '@koa/router';

/** A dependency check for /ready: resolves when the dependency answers. */
export type ReadinessCheck = () => Promise<unknown>;

const within = (ms: number, p: Promise<unknown>) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

/** GET /health: liveness (200 while the process runs). GET /ready: 200 when every dependency answers, else 503 naming what is down. */
export function registerHealthRoutes(router: Router, checks: Record<string, ReadinessCheck>): void {
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok', uptimeSeconds: Math.round(process.uptime()) };
  });

  router.get('/ready', async (ctx) => {
    const names = Object.keys(checks);
    const outcomes = await Promise.allSettled(names.map((name) => within(1500, checks[name]())));
    const status: Record<string, 'up' | 'down'> = {};
    names.forEach((name, i) => (status[name] = outcomes[i].status === 'fulfilled' ? 'up' : 'down'));
    const down = names.filter((name) => status[name] === 'down');
    if (down.length === 0) {
      ctx.body = { status: 'ready', checks: status };
      return;
    }
    ctx.status = 503;
    ctx.set('retry-after', '1');
    ctx.body = {
      status: 'unavailable',
      checks: status,
      error: 'Service Unavailable',
      errorCode: 'SERVICE_UNAVAILABLE',
      message: `not ready: ${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} down`,
      statusCode: 503,
      requestId: ctx.state.requestId,
      retryable: true,
      retryAfterSeconds: 1,
    };
  });
}
