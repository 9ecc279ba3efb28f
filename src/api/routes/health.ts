import type { Routes } from '../routeTable';
import { NotReadyError } from '../../shared/errors';

/** A dependency check for /ready: resolves when the dependency answers. */
export type ReadinessCheck = () => Promise<unknown>;

/** How long /ready waits for a dependency before calling it down. */
const READY_CHECK_TIMEOUT_MS = 1500;

const within = (ms: number, p: Promise<unknown>) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

/** GET /health: liveness (200 while the process runs). GET /ready: 200 when every dependency answers, else 503 naming what is down. */
export function registerHealthRoutes(router: Routes, checks: Record<string, ReadinessCheck>): void {
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok', uptimeSeconds: Math.round(process.uptime()) };
  });

  router.get('/ready', async (ctx) => {
    const names = Object.keys(checks);
    const outcomes = await Promise.allSettled(names.map((name) => within(READY_CHECK_TIMEOUT_MS, checks[name]())));
    const status: Record<string, 'up' | 'down'> = {};
    names.forEach((name, i) => (status[name] = outcomes[i].status === 'fulfilled' ? 'up' : 'down'));
    if (names.some((name) => status[name] === 'down')) throw new NotReadyError(status);
    ctx.body = { status: 'ready', checks: status };
  });
}
