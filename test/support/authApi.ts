import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { createApp } from '../../src/api/app';
import { createAuthenticator } from '../../src/api/auth';
import { createStreamHub } from '../../src/api/streamHub';
import { loadConfig, type Config } from '../../src/shared/config';
import { createLogger } from '../../src/shared/logger';
import { Metrics } from '../../src/shared/metrics';
import { createRuntime, type Runtime } from '../../src/shared/runtime';
import { Shutdown, ShutdownOrder } from '../../src/shared/shutdown';
import { ACCOMMODATION_TABLE, OVERRIDE_TABLE, POLICY_TABLE, policyKey } from '../../src/shared/store/policyStore';
import { cleanupUsers } from './harness';

/* An API with authentication configured, over the real stores, and tokens for it. */

export const SECRET = 'test-secret-that-is-long-enough-for-hs256!';
export const ISSUER = 'https://login.example.test';
export const AUDIENCE = 'quiz-sessions';

/** An API with authentication configured, over the real stores. */
export async function startAuthApi(overrides: Partial<Config>) {
  const config = loadConfig(process.env, {
    LOG_LEVEL: 'silent',
    PORT: 0,
    AUTH_JWT_ISSUER: ISSUER,
    AUTH_JWT_AUDIENCE: AUDIENCE,
    ...overrides,
  });
  const log = createLogger('silent');
  const shutdown = new Shutdown(log, 5000);
  const runtime: Runtime = createRuntime(config, log, shutdown, 'auth-test');
  await new Promise<void>((resolve) => (runtime.redis.status === 'ready' ? resolve() : runtime.redis.once('ready', () => resolve())));
  const streams = createStreamHub(config, log, 'auth-test-streams');
  shutdown.add('streams', () => streams.close(), ShutdownOrder.StopIntake);
  const app = createApp({
    service: runtime.service,
    policies: runtime.policies,
    streams,
    idempotency: runtime.idempotency,
    log,
    authenticate: createAuthenticator(config),
    metrics: new Metrics('auth-test'),
    readiness: { redis: () => runtime.redis.ping(), postgres: () => runtime.knex.raw('select 1') },
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const prefix = `auth-${randomUUID().slice(0, 8)}`;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    user: (name: string) => `${prefix}-${name}`,
    async close() {
      streams.endAll();
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      await cleanupUsers(runtime, prefix);
      // settings of this API's users and quizzes (quiz ids made with user() too), cached copies included
      await runtime.knex(ACCOMMODATION_TABLE).where('user_id', 'like', `${prefix}%`).delete();
      await runtime.knex(OVERRIDE_TABLE).where('quiz_id', 'like', `${prefix}%`).orWhere('user_id', 'like', `${prefix}%`).delete();
      const policies: Array<{ quiz_id: string }> = await runtime
        .knex(POLICY_TABLE)
        .select('quiz_id')
        .where('quiz_id', 'like', `${prefix}%`);
      for (const p of policies) await runtime.redis.del(policyKey(p.quiz_id)); // one slot per command on a cluster
      await runtime.knex(POLICY_TABLE).where('quiz_id', 'like', `${prefix}%`).delete();
      await shutdown.run('done');
    },
  };
}

export type Claims = Record<string, unknown> & { sub?: string };

/**
 * An HS256 token with the test issuer and audience: `exp` `expiresIn` seconds from now (none when
 * `expiresIn` is null), `iat` now or `issuedAt` (epoch seconds; none when null).
 */
export function hsToken(
  claims: Claims,
  { secret = SECRET, expiresIn = 300 as number | null, issuedAt = Math.floor(Date.now() / 1000) as number | null } = {},
) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(AUDIENCE);
  if (issuedAt !== null) jwt.setIssuedAt(issuedAt);
  if (claims.sub) jwt.setSubject(claims.sub);
  if (expiresIn !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The Authorization header of a fresh token for `sub`, with more claims (a role, quiz_ids). */
export const bearerFor = async (sub: string, extra: Record<string, unknown> = {}) => bearer(await hsToken({ sub, ...extra }));
