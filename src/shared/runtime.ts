import type { Knex } from 'knex';
import type { RedisClient } from './redis';
import type { Config } from './config';
import { createKnex } from './db/knex';
import { LIMITS } from './limits';
import type { Logger } from './logger';
import { createRequestRedis } from './redis';
import { ShutdownOrder, type Shutdown } from './shutdown';
import { noHooks, SessionService, type SessionHooks } from './sessionService';
import { SessionRepository } from './store/sessionRepository';
import { PolicyStore } from './store/policyStore';
import { SessionStore } from './store/sessionStore';
import { IdempotencyStore } from './store/idempotencyStore';
import { useKeyLayout } from './store/keys';

/** The stores and the domain service one process uses, each registered for shutdown. */
export interface Runtime {
  redis: RedisClient;
  knex: Knex;
  store: SessionStore;
  repo: SessionRepository;
  service: SessionService;
  policies: PolicyStore;
  /** The kept responses of requests with an Idempotency-Key. */
  idempotency: IdempotencyStore;
}

/** Opens Redis and PostgreSQL and builds the session service over them. */
export function createRuntime(config: Config, log: Logger, shutdown: Shutdown, role: string, hooks: SessionHooks = noHooks): Runtime {
  useKeyLayout(config.REDIS_KEY_LAYOUT);
  const redis = createRequestRedis(config, `quiz-session-${role}`);
  redis.on('error', (err: Error) => log.debug(`redis: ${err.message}`));
  const knex = createKnex(config);
  shutdown.add('redis', () => redis.quit().catch(() => redis.disconnect()), ShutdownOrder.CloseStores);
  shutdown.add('postgres', () => knex.destroy(), ShutdownOrder.CloseStores);
  const store = new SessionStore(redis, config.SESSION_CACHE_TTL_SECONDS, {
    waitReplicas: config.REDIS_WAIT_REPLICAS,
    waitTimeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
  });
  const repo = new SessionRepository(knex);
  const policies = new PolicyStore(knex, redis);
  const service = new SessionService(
    store,
    repo,
    policies,
    { defaultTimeLimitSeconds: config.DEFAULT_TIME_LIMIT_SECONDS, limits: { maxAnswers: LIMITS.answersPerAttempt } },
    hooks,
    log,
  );
  return { redis, knex, store, repo, service, policies, idempotency: new IdempotencyStore(redis) };
}
