import Koa, { type Context } from 'koa';
import bodyParser from 'koa-bodyparser';
import { MethodNotAllowedError, RouteNotFoundError } from '../shared/errors';
import { LIMITS } from '../shared/limits';
import type { Logger } from '../shared/logger';
import type { Metrics } from '../shared/metrics';
import type { SessionService } from '../shared/sessionService';
import type { PolicyStore } from '../shared/store/policyStore';
import type { IdempotencyStore } from '../shared/store/idempotencyStore';
import type { Authenticator } from './auth';
import { openApiDocument } from './openapi';
import { edge, isPlainJson } from './middleware/edge';
import { registerHealthRoutes, type ReadinessCheck } from './routes/health';
import { registerQuizRoutes } from './routes/quizzes';
import { registerSessionRoutes, SESSION_PREFIXES } from './routes/sessions';
import { RouteTable } from './routeTable';
import { registerListingRoutes } from './routes/listings';
import { registerStreamRoutes } from './routes/streams';
import { registerWebRoutes } from './routes/web';
import type { StreamHub } from './streamHub';

/** What the HTTP edge needs. */
export interface AppDeps {
  service: SessionService;
  /** The quiz policies, for /api/quizzes/:quiz_id/policy. */
  policies: PolicyStore;
  log: Logger;
  readiness: Record<string, ReadinessCheck>;
  /** The process's metrics: request latency is recorded when given. */
  metrics?: Metrics;
  /** Serve GET /metrics on the API port (false when API_METRICS_PORT moves it elsewhere). */
  metricsOnApiPort?: boolean;
  /** The kept responses of requests with an Idempotency-Key. */
  idempotency: IdempotencyStore;
  /** The process's Server-Sent Events (the stream routes are served when given). */
  streams?: StreamHub;
  /** Bearer-token verification for the session routes; null or absent runs open. */
  authenticate?: Authenticator | null;
}

/** Records a request's latency under its route pattern ('unmatched' when no route took it). */
function observeLatency(metrics: Metrics): (ctx: Context, seconds: number) => void {
  // one child per method, route and status, looked up by one string: prom-client's own label
  // lookup sorts and joins the label object on every call
  const children = new Map<string, { observe(seconds: number): void }>();
  return (ctx, seconds) => {
    // Prometheus' own scrapes are not traffic: the request rate is the clients'
    if (ctx.path === '/metrics') return;
    const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
    const key = `${ctx.method} ${ctx.status} ${route}`;
    let child = children.get(key);
    if (!child) {
      child = metrics.httpDuration.labels({ method: ctx.method, route, status_code: String(ctx.status) });
      children.set(key, child);
    }
    child.observe(seconds);
  };
}

/** The Koa app: request id and log line, error contract, JSON body limits, the routes. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = true;
  const router = new RouteTable(SESSION_PREFIXES);
  registerHealthRoutes(router, deps.readiness);
  registerSessionRoutes(router, deps.service, deps.idempotency, deps.log, deps.authenticate ?? null);
  registerQuizRoutes(router, deps.policies, deps.authenticate ?? null);
  registerListingRoutes(router, deps.service, deps.authenticate ?? null);
  if (deps.streams) registerStreamRoutes(router, deps.service, deps.streams, deps.authenticate ?? null);
  registerWebRoutes(router);
  router.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument();
  });
  const metrics = deps.metrics;
  if (metrics && deps.metricsOnApiPort !== false) {
    router.get('/metrics', async (ctx) => {
      const { contentType, body } = await metrics.render();
      ctx.type = contentType;
      ctx.body = body;
    });
  }

  app.use(
    edge({
      log: deps.log,
      observe: metrics && observeLatency(metrics),
      clock: deps.service.clock,
      parseBody: bodyParser({
        enableTypes: ['json'],
        extendTypes: { json: ['application/*+json'] },
        jsonLimit: `${LIMITS.bodyBytes / 1024}kb`,
        strict: true,
        detectJSON: isPlainJson,
      }),
    }),
  );
  app.use(router.routes());
  app.use(async (ctx) => {
    // reached only when no route took the request: 405 when the path exists for other methods
    const matched = router
      .routerOf(ctx.path)
      .match(ctx.path, ctx.method)
      .path.filter((layer) => layer.methods.length > 0);
    if (matched.length === 0) throw new RouteNotFoundError(ctx.method, ctx.path);
    ctx.set('allow', [...new Set(matched.flatMap((layer) => layer.methods))].join(', '));
    throw new MethodNotAllowedError(ctx.method, ctx.path);
  });
  // errors are rendered by errorHandler; Koa's own handler only sees socket-level failures
  app.on('error', (err: Error) => deps.log.debug(`koa: ${err.message}`));
  return app;
}
