import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LICENSE, openApiDocument } from '../src/api/openapi';
import { ERROR_RESPONSES } from '../src/api/schemas/responses';
import { aliasesOf } from '../src/api/validate';
import { ERROR_CODES } from '../src/shared/errors';
import { assertMatchesOpenApi } from './support/openapiValidator';

/*
 * What the OpenAPI document promises a client beyond what the linters check: a schema per error
 * status with codes from ERROR_CODES, the 409 of an attempt's routes carrying the attempt as a
 * `$ref`, the headers declared, the aliases declared, the license; and that the response validator
 * every HTTP test runs through (test/support/openapiValidator.ts) refuses what the document does not
 * allow. The responses themselves are checked in the HTTP tests.
 */

type Schema = Record<string, unknown> & {
  properties?: Record<string, Schema>;
  required?: string[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  const?: unknown;
  enum?: unknown[];
  $ref?: string;
};
type Response = { headers?: Record<string, { $ref: string }>; content?: Record<string, { schema: Schema }> };
type Operation = { operationId: string; responses: Record<string, Response> };
const doc = openApiDocument() as unknown as {
  info: { license: { name: string; identifier: string } };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; headers: Record<string, unknown> };
};
const schemas = doc.components.schemas;
const operations = Object.entries(doc.paths).flatMap(([p, methods]) =>
  Object.entries(methods).map(([m, op]) => ({ path: p, method: m, op })),
);

/** The object schemas of a schema: itself, or each branch of its oneOf / anyOf. */
const branches = (s: Schema): Schema[] => s.oneOf ?? s.anyOf ?? [s];
/** The error codes a schema allows. */
const codesOf = (s: Schema): unknown[] =>
  branches(s).flatMap((b) => {
    const code = b.properties!.errorCode;
    return code.const !== undefined ? [code.const] : code.enum!;
  });
const ERROR_SCHEMAS = [
  'ValidationError',
  'Unauthorized',
  'Forbidden',
  'NotFound',
  'Conflict',
  'StartConflict',
  'Gone',
  'Locked',
  'RateLimited',
  'PayloadTooLarge',
  'UnsupportedMediaType',
  'IdempotencyKeyReused',
  'InternalError',
  'ServiceUnavailable',
  'NotReady',
];

describe('error schemas', () => {
  test('each error status has a schema of its own, its statusCode and codes fixed; every code of ERROR_CODES is in one', () => {
    const seen = new Set<unknown>();
    for (const name of ERROR_SCHEMAS) {
      for (const b of branches(schemas[name])) {
        expect(b.additionalProperties).toBe(false);
        expect(b.required).toEqual(expect.arrayContaining(['error', 'errorCode', 'message', 'statusCode', 'requestId', 'retryable']));
        expect(b.properties!.statusCode.const).toEqual(expect.any(Number));
      }
      for (const code of codesOf(schemas[name])) {
        expect(ERROR_CODES).toContain(code);
        seen.add(code);
      }
    }
    // METHOD_NOT_ALLOWED: answered by no operation of the document (the validator checks it apart)
    expect([...seen, 'METHOD_NOT_ALLOWED'].sort()).toEqual([...ERROR_CODES].sort());
  });

  test('every documented error response refers to the schema of its status', () => {
    const byStatus = new Map<number, Set<string>>();
    for (const { op } of operations) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const ref = response.content?.['application/json']?.schema.$ref;
        expect(ref).toMatch(/^#\/components\/schemas\//);
        const name = ref!.replace('#/components/schemas/', '');
        for (const b of branches(schemas[name])) expect(b.properties!.statusCode.const).toBe(Number(status));
        byStatus.set(Number(status), (byStatus.get(Number(status)) ?? new Set()).add(name));
      }
    }
    expect(Object.fromEntries([...byStatus].map(([status, names]) => [status, [...names].sort()]))).toEqual({
      400: ['ValidationError'],
      401: ['Unauthorized'],
      403: ['Forbidden'],
      404: ['NotFound'],
      409: ['Conflict', 'StartConflict'],
      410: ['Gone'],
      413: ['PayloadTooLarge'],
      415: ['UnsupportedMediaType'],
      422: ['IdempotencyKeyReused'],
      423: ['Locked'],
      429: ['RateLimited'],
      500: ['InternalError'],
      503: ['NotReady', 'ServiceUnavailable'],
    });
  });

  test("the 409 of an attempt's routes requires `session`, a $ref to Attempt; a start's 409 has none", () => {
    for (const name of ['Conflict', 'Gone', 'Locked']) {
      expect(schemas[name].required).toEqual(expect.arrayContaining(['session', 'sessionId']));
      expect(schemas[name].properties!.session).toEqual({ $ref: '#/components/schemas/Attempt' });
    }
    expect(codesOf(schemas.Conflict).sort()).toEqual([
      'ANOTHER_ATTEMPT_OPEN',
      'IDEMPOTENCY_KEY_IN_USE',
      'SESSION_COMPLETED',
      'SESSION_CONFLICT',
    ]);
    for (const b of branches(schemas.StartConflict)) expect(b.properties!.session).toBeUndefined();
    expect(codesOf(schemas.StartConflict).sort()).toEqual(['ATTEMPT_LIMIT_REACHED', 'IDEMPOTENCY_KEY_IN_USE']);
    // no copy of Attempt anywhere: every attempt in the document is the one schema
    const text = JSON.stringify(doc);
    expect(text.split('"attempt_number":').length - 1).toBe(1);
    for (const { path: p, op } of operations) {
      if (!op.responses['409']) continue;
      const expected = p.endsWith('/start') ? 'StartConflict' : 'Conflict';
      expect(op.responses['409'].content!['application/json'].schema.$ref).toBe(`#/components/schemas/${expected}`);
    }
  });
});

describe('headers', () => {
  const declared = (r: Response) => Object.keys(r.headers ?? {}).map((h) => h.toLowerCase());

  test('every response declares x-request-id; attempt responses and the errors with a session ETag; 401 WWW-Authenticate; 423 and 503 Retry-After', () => {
    for (const { path: p, method, op } of operations) {
      for (const [status, r] of Object.entries(op.responses)) {
        const where = `${method} ${p} ${status}`;
        const names = declared(r);
        expect({ where, names }).toEqual({ where, names: expect.arrayContaining(['x-request-id']) });
        const schema = r.content?.['application/json']?.schema.$ref;
        const withAttempt = schema === '#/components/schemas/Attempt' || ['409', '410', '423'].includes(status);
        if (withAttempt && !p.endsWith('/start')) expect({ where, names }).toEqual({ where, names: expect.arrayContaining(['etag']) });
        if (status === '401') expect({ where, names }).toEqual({ where, names: expect.arrayContaining(['www-authenticate']) });
        if (status === '423' || status === '503' || status === '409')
          expect({ where, names }).toEqual({ where, names: expect.arrayContaining(['retry-after']) });
      }
    }
  });

  test("a start's 200 and 201 declare Location; the routes that take an Idempotency-Key declare idempotent-replayed", () => {
    for (const { path: p, op } of operations) {
      const takesKey = JSON.stringify(op).includes('"name":"Idempotency-Key"');
      for (const [status, r] of Object.entries(op.responses)) {
        if (p.endsWith('/start') && Number(status) < 300) expect(declared(r)).toContain('location');
        if (['200', '201', '409'].includes(status)) expect(declared(r).includes('idempotent-replayed')).toBe(takesKey);
      }
    }
  });
});

describe('aliases', () => {
  test('every camelCase alias a body takes is a declared, deprecated property of its schema, described as the alias it is', () => {
    const requests = Object.keys(schemas).filter((n) => n.endsWith('Request'));
    let checked = 0;
    for (const name of requests) {
      for (const b of branches(schemas[name])) {
        const props = b.properties!;
        const snake = Object.keys(props).filter((p) => !/[A-Z]/.test(p));
        for (const alias of aliasesOf(snake)) {
          expect(props[alias]).toEqual(
            expect.objectContaining({ deprecated: true, description: expect.stringMatching(/^Alias of `[a-z_]+`/) }),
          );
          checked++;
        }
        // no camelCase property that is not an alias
        expect(Object.keys(props).filter((p) => /[A-Z]/.test(p))).toEqual(aliasesOf(snake));
      }
    }
    expect(aliasesOf(Object.keys(branches(schemas.StartRequest)[0].properties!))).toEqual(['userId', 'quizId', 'timeLimitSeconds']);
    expect(Object.keys(schemas.ProgressRequest.properties!)).toEqual(
      expect.arrayContaining(['questionId', 'currentQuestion', 'expectedVersion']),
    );
    expect(checked).toBeGreaterThanOrEqual(9);
  });

  test('a field required in one spelling is required in either: a start takes quiz_id or quizId', () => {
    expect(schemas.StartRequest.anyOf!.map((b) => b.required)).toEqual([['quiz_id'], ['quizId']]);
  });
});

test('the license is the project’s: package.json and LICENSE say MIT', () => {
  const root = path.resolve(__dirname, '..');
  expect(doc.info.license).toEqual({ name: LICENSE, identifier: LICENSE });
  expect(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).license).toBe(LICENSE);
  expect(readFileSync(path.join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
});

describe('the response validator refuses what the document does not allow', () => {
  const id = '7b0f2a1e-8f2c-4c3d-9a4b-5c6d7e8f9a0b';
  const attempt = {
    id,
    user_id: 'u',
    quiz_id: 'q',
    status: 'in_progress',
    current_question: 0,
    version: 3,
    time_limit_seconds: 600,
    time_remaining: 500,
    started_at: '2026-12-01T09:00:00.000Z',
    expires_at: '2026-12-01T09:10:00.000Z',
    last_updated: '2026-12-01T09:01:40.000Z',
    completed_at: null,
    attempt_number: 1,
    submitted_by: null,
    paused_at: null,
    extra_time_seconds: 0,
    answers: { q1: 'A' },
  };
  const conflict = {
    error: 'Conflict',
    errorCode: 'IDEMPOTENCY_KEY_IN_USE',
    message: 'A request with this Idempotency-Key is still in flight; retry shortly',
    statusCode: 409,
    requestId: 'r-1',
    retryable: true,
    retryAfterSeconds: 1,
    sessionId: id,
    session: attempt,
  };
  const url = `http://127.0.0.1:1/api/sessions/${id}/progress`;
  const sent = (h: Record<string, string>) => new Headers({ 'x-request-id': 'r-1', ...h });
  const check =
    (status: number, body: unknown, headers: Headers, method = 'PATCH', at = url) =>
    () =>
      assertMatchesOpenApi(method, at, status, 'application/json', body, headers);

  test('a 409 of an attempt route with its session passes; without it, it is refused', () => {
    expect(check(409, conflict, sent({ etag: '"3"', 'retry-after': '1' }))).not.toThrow();
    const { session: _session, ...bare } = conflict;
    void _session;
    expect(check(409, bare, sent({ etag: '"3"', 'retry-after': '1' }))).toThrow(/must have required property 'session'/);
    // an error code of another status, or a field no error has
    expect(check(409, { ...conflict, errorCode: 'ATTEMPT_LIMIT_REACHED' }, sent({ etag: '"3"' }))).toThrow(/errorCode/);
    expect(check(409, { ...conflict, extra: 1 }, sent({ etag: '"3"' }))).toThrow(/additional properties/);
  });

  test('a header the document does not declare for the status, or a required one missing, is refused', () => {
    const validation = {
      error: 'Bad Request',
      errorCode: 'VALIDATION_ERROR',
      message: 'version: must be an integer',
      statusCode: 400,
      requestId: 'r-1',
      retryable: false,
      field: 'version',
    };
    expect(check(400, validation, sent({}))).not.toThrow();
    expect(check(400, validation, sent({ etag: '"3"' }))).toThrow(/sends etag, which the document does not declare/);
    expect(check(400, validation, new Headers())).toThrow(/lacks the x-request-id header/);
    expect(check(409, conflict, sent({ 'retry-after': '1' }))).toThrow(/lacks the etag header/);
    const unauthorized = { ...validation, error: 'Unauthorized', errorCode: 'UNAUTHORIZED', statusCode: 401 };
    delete (unauthorized as Partial<typeof validation>).field;
    expect(check(401, unauthorized, sent({ 'www-authenticate': 'Bearer' }))).not.toThrow();
    expect(check(401, unauthorized, sent({}))).toThrow(/lacks the www-authenticate header/);
  });

  test('a 405 (no operation answers it) must be METHOD_NOT_ALLOWED with allow', () => {
    const body = {
      error: 'Method Not Allowed',
      errorCode: 'METHOD_NOT_ALLOWED',
      message: 'Method POST is not allowed on /health',
      statusCode: 405,
      requestId: 'r-1',
      retryable: false,
    };
    const at = 'http://127.0.0.1:1/health';
    expect(check(405, body, sent({ allow: 'HEAD, GET' }), 'POST', at)).not.toThrow();
    expect(check(405, body, sent({}), 'POST', at)).toThrow(/lacks the allow header/);
    expect(check(405, { ...body, errorCode: 'ROUTE_NOT_FOUND' }, sent({ allow: 'GET' }), 'POST', at)).toThrow(/errorCode/);
    expect(ERROR_RESPONSES[405].safeParse(body).success).toBe(true);
  });
});
