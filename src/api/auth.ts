import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Context, Next } from 'koa';
import type { Config } from '../shared/config';
import { UnauthorizedError } from '../shared/errors';

/** Who a request acts for: a user (only their own attempts), or a service (any attempt). */
export interface Principal {
  subject: string;
  isService: boolean;
}

/** Verifies a bearer token and returns its principal; throws UnauthorizedError otherwise. */
export type Authenticator = (token: string) => Promise<Principal>;

type AuthConfig = Pick<
  Config,
  'AUTH_JWT_SECRET' | 'AUTH_JWKS_URL' | 'AUTH_JWT_ISSUER' | 'AUTH_JWT_AUDIENCE' | 'AUTH_ROLE_CLAIM' | 'AUTH_SERVICE_ROLE'
>;

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

  const hasServiceRole = (payload: JWTPayload): boolean => {
    const claim = payload[config.AUTH_ROLE_CLAIM];
    return Array.isArray(claim) ? claim.includes(config.AUTH_SERVICE_ROLE) : claim === config.AUTH_SERVICE_ROLE;
  };

  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        issuer: config.AUTH_JWT_ISSUER,
        audience: config.AUTH_JWT_AUDIENCE,
        clockTolerance: 5,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new UnauthorizedError('The bearer token has expired');
      if (err instanceof joseErrors.JWKSTimeout) throw new UnauthorizedError('The token keys could not be fetched; retry');
      throw new UnauthorizedError('The bearer token is not valid');
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new UnauthorizedError('The bearer token has no subject');
    return { subject: payload.sub, isService: hasServiceRole(payload) };
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

/** The user a request is restricted to: the token's subject, unless open or a service. */
export function ownerOf(ctx: Context): string | undefined {
  const principal = ctx.state.principal as Principal | undefined;
  return principal && !principal.isService ? principal.subject : undefined;
}
