import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { loadConfig } from '../src/shared/config';
import { AUDIENCE, bearer, hsToken, ISSUER, SECRET, startAuthApi } from './support/authApi';
import { request } from './support/http';

describe('with an HS256 secret configured', () => {
  let api: Awaited<ReturnType<typeof startAuthApi>>;
  beforeAll(async () => {
    api = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  });
  afterAll(async () => api.close());

  async function startAs(name: string) {
    const res = await request(api.url, 'POST', '/api/sessions/start', { quiz_id: 'q' }, bearer(await hsToken({ sub: api.user(name) })));
    expect(res.status).toBe(201);
    return res.body as { id: string; user_id: string; version: number };
  }

  test('start uses the token subject as user_id', async () => {
    const attempt = await startAs('alice');
    expect(attempt.user_id).toBe(api.user('alice'));
  });

  test('start with a different user_id in the body is refused with 403', async () => {
    const res = await request(
      api.url,
      'POST',
      '/api/sessions/start',
      { user_id: api.user('mallory'), quiz_id: 'q' },
      bearer(await hsToken({ sub: api.user('bob') })),
    );
    expect(res.status).toBe(403);
    expect(res.body.errorCode).toBe('FORBIDDEN');
  });

  test('every session endpoint without a token answers 401 with WWW-Authenticate', async () => {
    const id = randomUUID();
    const calls: Array<[string, string, unknown]> = [
      ['POST', '/api/sessions/start', { user_id: 'x', quiz_id: 'q' }],
      ['GET', `/api/sessions/${id}`, undefined],
      ['PATCH', `/api/sessions/${id}/progress`, { question_id: 'q1', answer: 1 }],
      ['PUT', `/sessions/${id}/progress`, { question_id: 'q1', answer: 1 }],
      ['POST', `/api/sessions/${id}/complete`, undefined],
      ['POST', `/sessions/${id}/abandon`, undefined],
    ];
    for (const [method, path, body] of calls) {
      const res = await request(api.url, method, path, body);
      expect({ path, status: res.status, code: res.body.errorCode }).toEqual({ path, status: 401, code: 'UNAUTHORIZED' });
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.body.requestId).toBeTruthy();
    }
  });

  test('an expired token, a token signed with another key, a wrong audience and garbage answer 401', async () => {
    const attempt = await startAs('carol');
    const sub = api.user('carol');
    const tokens = [
      await hsToken({ sub }, { expiresIn: -60 }),
      await hsToken({ sub }, { secret: 'another-secret-that-is-also-long-enough!!' }),
      await new SignJWT({ sub })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(ISSUER)
        .setAudience('someone-else')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(SECRET)),
      await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(SECRET)),
      'not-a-jwt',
    ];
    for (const token of tokens) {
      const res = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, bearer(token));
      expect(res.status).toBe(401);
      expect(res.body.errorCode).toBe('UNAUTHORIZED');
    }
    const expired = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, bearer(tokens[0]));
    expect(expired.body.message).toMatch(/expired/);
  });

  test("another user's token is refused with 403 on read, progress, complete and abandon, and changes nothing", async () => {
    const attempt = await startAs('dave');
    const other = bearer(await hsToken({ sub: api.user('eve') }));
    const calls: Array<[string, string, unknown]> = [
      ['GET', `/api/sessions/${attempt.id}`, undefined],
      ['PATCH', `/api/sessions/${attempt.id}/progress`, { question_id: 'q1', answer: 'stolen' }],
      ['POST', `/sessions/${attempt.id}/complete`, undefined],
      ['POST', `/api/sessions/${attempt.id}/abandon`, undefined],
    ];
    for (const [method, path, body] of calls) {
      const res = await request(api.url, method, path, body, other);
      expect({ path, status: res.status, code: res.body.errorCode }).toEqual({ path, status: 403, code: 'FORBIDDEN' });
      expect(res.body.session).toBeUndefined();
    }
    const own = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, bearer(await hsToken({ sub: api.user('dave') })));
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ version: 1, status: 'started', answers: {} });
  });

  test('the owner reads, writes and completes their own attempt', async () => {
    const attempt = await startAs('frank');
    const own = bearer(await hsToken({ sub: api.user('frank') }));
    const p = await request(api.url, 'PATCH', `/api/sessions/${attempt.id}/progress`, { question_id: 'q1', answer: 'A', version: 1 }, own);
    expect(p.status).toBe(200);
    const c = await request(api.url, 'POST', `/api/sessions/${attempt.id}/complete`, undefined, own);
    expect(c.body.status).toBe('completed');
  });

  test('a service token (role: service) reads and writes any attempt and starts for any user', async () => {
    const attempt = await startAs('grace');
    const service = bearer(await hsToken({ sub: 'grading-backend', role: 'service' }));
    const read = await request(api.url, 'GET', `/api/sessions/${attempt.id}`, undefined, service);
    expect(read.status).toBe(200);
    const write = await request(api.url, 'PUT', `/sessions/${attempt.id}/progress`, { answers: { q2: 'B' } }, service);
    expect(write.status).toBe(200);
    expect(write.body.version).toBe(2);
    const started = await request(api.url, 'POST', '/api/sessions/start', { user_id: api.user('heidi'), quiz_id: 'q' }, service);
    expect(started.status).toBe(201);
    expect(started.body.user_id).toBe(api.user('heidi'));
    const missingUser = await request(api.url, 'POST', '/api/sessions/start', { quiz_id: 'q' }, service);
    expect(missingUser.status).toBe(400);
    expect(missingUser.body.field).toBe('user_id');
  });

  test('/health, /ready and /metrics need no token', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      const res = await request(api.url, 'GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
  });
});

describe('with a JWKS URL configured', () => {
  let jwks: Server;
  let api: Awaited<ReturnType<typeof startAuthApi>>;
  let signingKey: KeyLike;
  let foreignKey: KeyLike;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    signingKey = pair.privateKey;
    foreignKey = (await generateKeyPair('RS256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    api = await startAuthApi({ AUTH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json` });
  });
  afterAll(async () => {
    await api.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  const rsToken = (sub: string, key: KeyLike) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(key);

  test('a token signed by the published key is accepted; one signed by another key is 401', async () => {
    const sub = api.user('ivan');
    const ok = await request(api.url, 'POST', '/api/sessions/start', { quiz_id: 7 }, bearer(await rsToken(sub, signingKey)));
    expect(ok.status).toBe(201);
    expect(ok.body.user_id).toBe(sub);
    const forged = await request(api.url, 'GET', `/api/sessions/${ok.body.id}`, undefined, bearer(await rsToken(sub, foreignKey)));
    expect(forged.status).toBe(401);
    const hs = await request(api.url, 'GET', `/api/sessions/${ok.body.id}`, undefined, bearer(await hsToken({ sub })));
    expect(hs.status).toBe(401);
  });
});

test('the configuration refuses a secret and a JWKS URL together, and a short secret', () => {
  expect(() => loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_URL: 'http://127.0.0.1/jwks' })).toThrow(/not both/);
  expect(() => loadConfig({ AUTH_JWT_SECRET: 'short' })).toThrow(/AUTH_JWT_SECRET/);
});
