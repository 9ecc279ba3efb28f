import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Context, Next } from 'koa';
import type { Config } from '../shared/config';
import { UnauthorizedError } from '../shared/errors';

/**
 * What a caller may do, by role: a service anything; a proctor read any attempt (of its quizzes)
 * and run the live controls, but never answer, complete or abandon; anyone else is a student, who
 * acts on their own attempts only.
 */
export type Role = 'service' | 'proctor' | 'student';

/** Who a request acts for. */
export interface Principal {
  subject: string;
  role: Role;
  /** A proctor's quizzes (the `quiz_ids` claim); undefined: every quiz. */
  quizIds?: readonly string[];
}

/** Verifies a bearer token and returns its principal; throws UnauthorizedError otherwise. */
export type Authenticator = (token: string) => Promise<Principal>;

type AuthConfig = Pick<
  Config,
  | 'AUTH_JWT_SECRET'
  | 'AUTH_JWKS_URL'
  | 'AUTH_JWT_ISSUER'
  | 'AUTH_JWT_AUDIENCE'
  | 'AUTH_ROLE_CLAIM'
  | 'AUTH_SERVICE_ROLE'
  | 'AUTH_PROCTOR_ROLE'
  | 'AUTH_MAX_TOKEN_AGE_SECONDS'
>;

/** Seconds of clock skew allowed on exp, nbf and iat. */
const CLOCK_TOLERANCE_SECONDS = 5;

/** The configured authenticator, or null when the service runs open (no secret, no JWKS). */
export function createAuthenticator(config: AuthConfig): Authenticator | null {
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (config.AUTH_JWT_SECRET) {
    key = new TextEncoder().encode(config.AUTH_JWT_SECRET);
    algorithms = ['HS256'];
  } else if (config.AUTH_JWKS_URL) {
    key = createRemoteJWKSet(new URL(config.AUTH_JWKS_URL), { timeoutDuration: 2000, cooldownDuration: 30_000 });
    algorithms = ['RS256', 'PS256', 'ES256', 'EdDSA'];
  } else return null;

  const roleOf = (payload: JWTPayload): Role => {
    const claim = payload[config.AUTH_ROLE_CLAIM];
    const has = (role: string) => (Array.isArray(claim) ? claim.includes(role) : claim === role);
    if (has(config.AUTH_SERVICE_ROLE)) return 'service';
    if (has(config.AUTH_PROCTOR_ROLE)) return 'proctor';
    return 'student';
  };

  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        issuer: config.AUTH_JWT_ISSUER,
        audience: config.AUTH_JWT_AUDIENCE,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        // signed once without an expiry, a token would be valid forever
        requiredClaims: config.AUTH_MAX_TOKEN_AGE_SECONDS === undefined ? ['exp'] : ['exp', 'iat'],
        maxTokenAge: config.AUTH_MAX_TOKEN_AGE_SECONDS,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('The bearer token has expired');
      if (err instanceof joseErrors.JWKSTimeout) throw new UnauthorizedError('The token keys could not be fetched; retry');
      if (err instanceof joseErrors.JWTClaimValidationFailed && (err.claim === 'exp' || err.claim === 'iat')) {
        throw new UnauthorizedError(
          err.claim === 'exp' ? 'The bearer token has no expiry (exp)' : 'The bearer token is too old or has no iat',
        );
      }
      throw new UnauthorizedError('The bearer token is not valid');
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new UnauthorizedError('The bearer token has no subject');
    const role = roleOf(payload);
    const quizIds = payload.quiz_ids;
    if (role === 'proctor' && quizIds !== undefined) {
      if (!Array.isArray(quizIds) || !quizIds.every((q) => typeof q === 'string' || typeof q === 'number')) {
        throw new UnauthorizedError('The bearer token has a quiz_ids claim that is not a list of quiz ids');
      }
      return { subject: payload.sub, role, quizIds: quizIds.map(String) };
    }
    return { subject: payload.sub, role };
  };
}

/** Koa middleware: every request needs `Authorization: Bearer <token>` that `authenticate` accepts. */
export function requireAuth(authenticate: Authenticator) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const match = /^Bearer\s+([A-Za-z0-9._~+/-]+=*)\s*$/i.exec(ctx.get('authorization'));
    if (!match) {
      ctx.set('www-authenticate', 'Bearer');
      throw new UnauthorizedError();
    }
    try {
      ctx.state.principal = await authenticate(match[1]);
    } catch (err) {
      ctx.set('www-authenticate', 'Bearer error="invalid_token"');
      throw err;
    }
    await next();
  };
}

/** The principal of a request; undefined when the service runs open. */
export const principalOf = (ctx: Context): Principal | undefined => ctx.state.principal as Principal | undefined;

/** The user a request is restricted to: a student's own subject; none when open, for a service or a proctor. */
export function ownerOf(ctx: Context): string | undefined {
  const principal = principalOf(ctx);
  return principal?.role === 'student' ? principal.subject : undefined;
}
