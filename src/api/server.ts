import type { Server } from 'node:http';
import type { Knex } from 'knex';
import type { RedisClient } from '../shared/redis';
import type { Config } from '../shared/config';
import type { Logger } from '../shared/logger';
import { ShutdownOrder, type Shutdown } from '../shared/shutdown';
import type { SessionService } from '../shared/sessionService';
import { createApp, type AppDeps } from './app';
import { createAuthenticator } from './auth';
import { createStreamHub } from './streamHub';
import { pingMasters } from '../shared/redis';

/** Starts the HTTP server; on shutdown it stops accepting, finishes in-flight requests, then closes. */
export async function startApiServer(
  deps: { config: Config; log: Logger; shutdown: Shutdown; service: SessionService; redis: RedisClient; knex: Knex } & Pick<
    AppDeps,
    'metrics' | 'policies' | 'idempotency'
  >,
): Promise<Server> {
  const authenticate = createAuthenticator(deps.config);
  if (!authenticate) {
    deps.log.warn(
      'authentication is off (no AUTH_JWT_SECRET or AUTH_JWKS_URL): every caller may do everything, read and change any attempt it knows the id of and choose its own time limit; run behind a gateway that authenticates',
    );
  }
  const streams = createStreamHub(deps.config, deps.log, 'quiz-session-api-streams');
  // streams end with the intake, so the server's close is not held up by them
  deps.shutdown.add('streams', () => streams.close(), ShutdownOrder.StopIntake);
  deps.metrics?.watchStreams(() => streams.size);
  const app = createApp({
    service: deps.service,
    streams,
    idempotency: deps.idempotency,
    policies: deps.policies,
    log: deps.log,
    authenticate,
    metricsOnApiPort: deps.config.API_METRICS_PORT === undefined,
    readiness: {
      redis: () => pingMasters(deps.redis),
      postgres: () => deps.knex.raw('select 1'),
    },
    metrics: deps.metrics,
  });
  const server = app.listen(deps.config.PORT, deps.config.HOST);
  // keep-alive longer than common load balancers' idle timeout, so they close first
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  deps.shutdown.add(
    'http server',
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    ShutdownOrder.StopIntake,
  );
  if (deps.metrics && deps.config.API_METRICS_PORT !== undefined) {
    await deps.metrics.serve(deps.config.API_METRICS_PORT, deps.config.HOST, deps.log, deps.shutdown);
  }
  const address = server.address();
  deps.log.info(`api listening on ${typeof address === 'object' && address ? `${address.address}:${address.port}` : String(address)}`);
  return server;
}
