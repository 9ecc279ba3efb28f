import { randomUUID } from 'node:crypto';
import { deflateSync, gzipSync } from 'node:zlib';
import { buildSession, buildStartBody, sessionRow, startTestApi, type TestApi } from './support/harness';
import { expectError, expectValidationError, UUID_V4 } from './support/contract';
import { answerOfBytes, buildAnswers, nestedAnswer, padTo } from './support/factories';
import { noHooks } from '../src/shared/sessionService';
import { request, sessionClient } from './support/http';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';

/** Set by a test to make the next read fail inside the service with an internal error. */
let failReadsWith: Error | null = null;

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi(
    {},
    {
      ...noHooks,
      readFrom: () => {
        if (failReadsWith) throw failReadsWith;
      },
    },
  );
});
afterAll(async () => {
  await api.close();
});
afterEach(() => {
  failReadsWith = null;
});

describe('x-request-id', () => {
  test('a well-formed incoming id is echoed on success and in the error body', async () => {
    const id = `req-${randomUUID()}`;
    const ok = await request(api.url, 'GET', '/health', undefined, { 'x-request-id': id });
    expect(ok.headers.get('x-request-id')).toBe(id);
    const failed = await request(api.url, 'GET', `/api/sessions/${randomUUID()}`, undefined, { 'x-request-id': id });
    expect(expectError(failed, 404, 'SESSION_NOT_FOUND').requestId).toBe(id);
  });

  test.each([
    ['containing spaces', 'has some spaces'],
    ['of 300 characters', 'r'.repeat(300)],
    ['with characters outside the allowed set', 'abc;drop<table>'],
  ])('an id %s is replaced by a generated one', async (_what, incoming) => {
    const res = await request(api.url, 'GET', `/api/sessions/${randomUUID()}`, undefined, { 'x-request-id': incoming });
    const generated = res.headers.get('x-request-id');
    expect(generated).not.toBe(incoming);
    expect(generated).toMatch(UUID_V4);
    expect(expectError(res, 404, 'SESSION_NOT_FOUND').requestId).toBe(generated);
  });

  test('without an incoming id every response gets a distinct generated one', async () => {
    const s = await buildSession(api);
    const responses = await Promise.all([
      request(api.url, 'GET', '/health'),
      request(api.url, 'GET', `/api/sessions/${s.id}`),
      request(api.url, 'GET', '/no/such/route'),
      request(api.url, 'POST', '/api/sessions/start', '{bad'),
    ]);
    const ids = responses.map((r) => r.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('unknown routes and methods', () => {
  test.each(['/nope', '/api/nope', '/api/sessions', `/api/sessions/${randomUUID()}/unknown`, '/sessions/start/extra'])(
    'GET %s answers 404 ROUTE_NOT_FOUND',
    async (path) => {
      expectError(await request(api.url, 'GET', path), 404, 'ROUTE_NOT_FOUND');
    },
  );

  test.each(SESSION_PREFIXES)('a wrong method on a known %s route answers 405 with Allow', async (prefix) => {
    const id = randomUUID();
    const del = await request(api.url, 'DELETE', `${prefix}/${id}`);
    expectError(del, 405, 'METHOD_NOT_ALLOWED');
    expect(del.headers.get('allow')).toContain('GET');
    const get = await request(api.url, 'GET', `${prefix}/${id}/progress`);
    expectError(get, 405, 'METHOD_NOT_ALLOWED');
    expect(get.headers.get('allow')).toMatch(/PATCH/);
    expect(get.headers.get('allow')).toMatch(/PUT/);
    expectError(await request(api.url, 'GET', `${prefix}/${id}/complete`), 405, 'METHOD_NOT_ALLOWED');
    expectError(await request(api.url, 'POST', '/health'), 405, 'METHOD_NOT_ALLOWED');
  });

  test.each(SESSION_PREFIXES)('under %s a path deeper than any route, or with an empty segment, answers 404', async (prefix) => {
    const s = await buildSession(api, {}, prefix);
    expectError(await request(api.url, 'GET', `${prefix}/${s.id}/events/extra`), 404, 'ROUTE_NOT_FOUND');
    expectError(await request(api.url, 'POST', `${prefix}/${s.id}/progress/extra`), 404, 'ROUTE_NOT_FOUND');
    expectError(await request(api.url, 'GET', `${prefix}//events`), 404, 'ROUTE_NOT_FOUND');
  });
});

describe.each(SESSION_PREFIXES)('request bodies on %s', (prefix) => {
  const client = () => sessionClient(api, prefix);

  test('malformed JSON answers 400 VALIDATION_ERROR', async () => {
    expectValidationError(await client().start('{"user_id": "u", '), 'body');
    const s = await buildSession(api, {}, prefix);
    expectValidationError(await client().progress(s.id, '{"answers": {'), 'body');
  });

  test.each([
    ['a string', '"hello"'],
    ['a number', '42'],
    ['null', 'null'],
    ['an array', '[{"user_id": "u", "quiz_id": "q"}]'],
  ])('a JSON body that is %s, not an object, answers 400', async (_what, text) => {
    expectError(await client().start(text), 400, 'VALIDATION_ERROR');
  });

  test.each([
    ['user_id', { user_id: 123 }],
    ['user_id', { user_id: '' }],
    ['user_id', { user_id: 'a\u0001b' }],
    ['quiz_id', { quiz_id: true }],
    ['quiz_id', { quiz_id: 1.5 }],
    ['quiz_id', { quiz_id: -1 }],
    ['time_limit_seconds', { time_limit_seconds: '60' }],
    ['time_limit_seconds', { time_limit_seconds: -1 }],
    ['time_limit_seconds', { time_limit_seconds: 7 * 86_400 + 1 }],
  ])('start with a bad %s answers 400 naming it (%j)', async (field, overrides) => {
    const body = expectValidationError(await client().start(buildStartBody(api, overrides)), field);
    expect(body.field).toBe(field);
  });

  test.each([['user_id'], ['quiz_id']])('start without %s answers 400 naming it', async (field) => {
    const body = buildStartBody(api);
    delete body[field];
    expectValidationError(await client().start(body), field);
  });

  test.each([
    ['current_question', { current_question: '2' }],
    ['current_question', { current_question: -1 }],
    ['current_question', { current_question: 10_001 }],
    ['version', { current_question: 1, version: 'x' }],
    ['version', { current_question: 1, version: 0 }],
    ['version', { current_question: 1, version: 1.5 }],
    ['answers', { answers: ['a', 'b'] }],
    ['answers', { answers: 'A' }],
    ['question_id', { question_id: { nested: true }, answer: 'A' }],
    ['question_id', { question_id: '', answer: 'A' }],
  ])('progress with a bad %s answers 400 naming it (%j)', async (field, body) => {
    const s = await buildSession(api, {}, prefix);
    expectValidationError(await client().progress(s.id, body), field);
    expect((await client().get(s.id)).body.version).toBe(1);
  });

  test('a user_id of 128 characters is accepted; 129 answers 400 naming user_id', async () => {
    const ok = await client().start(buildStartBody(api, { user_id: padTo(api.userId(), 128) }));
    expect(ok.status).toBe(201);
    expectValidationError(await client().start(buildStartBody(api, { user_id: padTo(api.userId(), 129) })), 'user_id');
  });

  test('a string quiz_id of 129 characters answers 400 naming quiz_id', async () => {
    expectValidationError(await client().start(buildStartBody(api, { quiz_id: padTo('quiz', 129) })), 'quiz_id');
  });

  test('100 answers in one request are accepted; 101 answer 400 naming answers', async () => {
    const s = await buildSession(api, {}, prefix);
    expect((await client().progress(s.id, { answers: buildAnswers(100) })).status).toBe(200);
    expectValidationError(await client().progress(s.id, { answers: buildAnswers(101) }), 'answers');
  });

  test('an answer of 4096 bytes is accepted; 4097 bytes answers 400', async () => {
    const s = await buildSession(api, {}, prefix);
    expect((await client().progress(s.id, { question_id: 'big', answer: answerOfBytes(4096) })).status).toBe(200);
    expectValidationError(await client().progress(s.id, { question_id: 'big', answer: answerOfBytes(4097) }), 'answer');
    expectValidationError(await client().progress(s.id, { answers: { big: answerOfBytes(4097) } }), 'answers');
  });

  test('an answer of 4096 bytes counts bytes, not characters', async () => {
    const s = await buildSession(api, {}, prefix);
    // 2 quotes + 1365 × 3-byte characters = 4097 bytes in 1367 characters
    expectValidationError(await client().progress(s.id, { question_id: 'utf8', answer: '€'.repeat(1365) }), 'answer');
  });

  test('an answer nested 8 levels deep is accepted; 9 levels answers 400', async () => {
    const s = await buildSession(api, {}, prefix);
    const ok = await client().progress(s.id, { question_id: 'deep', answer: nestedAnswer(8) });
    expect(ok.status).toBe(200);
    expect(ok.body.answers.deep).toEqual(nestedAnswer(8));
    expectValidationError(await client().progress(s.id, { question_id: 'deep', answer: nestedAnswer(9) }), 'answer');
  });

  test('a very deeply nested answer is refused without crashing the server', async () => {
    const s = await buildSession(api, {}, prefix);
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    expectError(await client().progress(s.id, `{"question_id":"q","answer":${deep}}`), 400, 'VALIDATION_ERROR');
    expect((await client().get(s.id)).status).toBe(200);
  });

  test('an answer holding a NUL character answers 400', async () => {
    const s = await buildSession(api, {}, prefix);
    expectValidationError(await client().progress(s.id, { question_id: 'q', answer: 'a\u0000b' }), 'answer');
  });

  test('a body over 256kb answers 413 PAYLOAD_TOO_LARGE', async () => {
    const body = { ...buildStartBody(api), padding: 'x'.repeat(257 * 1024) };
    expectError(await client().start(body), 413, 'PAYLOAD_TOO_LARGE');
    const s = await buildSession(api, {}, prefix);
    expectError(await client().progress(s.id, { current_question: 1, padding: 'x'.repeat(300 * 1024) }), 413, 'PAYLOAD_TOO_LARGE');
  });

  test('a body over 256kb sent chunked, without a Content-Length, answers 413 PAYLOAD_TOO_LARGE', async () => {
    const chunk = new TextEncoder().encode(' '.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 5) controller.enqueue(chunk);
        else {
          controller.enqueue(new TextEncoder().encode(JSON.stringify(buildStartBody(api))));
          controller.close();
        }
      },
    });
    const res = await fetch(`${api.url}${prefix}/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errorCode: string }).errorCode).toBe('PAYLOAD_TOO_LARGE');
  });

  test('a gzip- or deflate-compressed JSON body is accepted', async () => {
    const gz = await client().start(gzipSync(JSON.stringify(buildStartBody(api))), { 'content-encoding': 'gzip' });
    expect(gz.status).toBe(201);
    const df = await client().start(deflateSync(JSON.stringify(buildStartBody(api))), { 'content-encoding': 'deflate' });
    expect(df.status).toBe(201);
  });

  test('an unknown Content-Encoding answers 415', async () => {
    expectError(
      await client().start(JSON.stringify(buildStartBody(api)), { 'content-encoding': 'x-unknown' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });

  test('a body that claims gzip or deflate but is not compressed answers 400, not 500', async () => {
    const body = JSON.stringify(buildStartBody(api));
    expectError(await client().start(body, { 'content-encoding': 'gzip' }), 400, 'VALIDATION_ERROR');
    expectError(await client().start(body, { 'content-encoding': 'deflate' }), 400, 'VALIDATION_ERROR');
  });

  test('a text/plain body answers 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await client().start(JSON.stringify(buildStartBody(api)), { 'content-type': 'text/plain' });
    expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const s = await buildSession(api, {}, prefix);
    expectError(
      await client().progress(s.id, 'current_question=1', { headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });

  test('a JSON body with a charset or a +json type is accepted', async () => {
    const json = await client().start(JSON.stringify(buildStartBody(api)), { 'content-type': 'application/json; charset=utf-8' });
    expect(json.status).toBe(201);
    const vendor = await client().start(JSON.stringify(buildStartBody(api)), { 'content-type': 'application/vnd.api+json' });
    expect(vendor.status).toBe(201);
  });

  test('a __proto__ key answers 400 and does not pollute Object.prototype', async () => {
    const s = await buildSession(api, {}, prefix);
    const top = `{"__proto__": {"polluted": "yes"}, "user_id": "${api.userId()}", "quiz_id": "q"}`;
    expectError(await client().start(top), 400, 'VALIDATION_ERROR');
    const nested = '{"answers": {"__proto__": {"polluted": "yes"}}}';
    expectError(await client().progress(s.id, nested), 400, 'VALIDATION_ERROR');
    const deep = '{"question_id": "q1", "answer": {"a": {"__proto__": {"polluted": "yes"}}}}';
    expectError(await client().progress(s.id, deep), 400, 'VALIDATION_ERROR');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
    expect((await client().get(s.id)).body).toMatchObject({ version: 1, answers: {} });
  });

  test('question ids that look like the stored meta fields (v, status, id, dirty, a:x) are plain data', async () => {
    const s = await buildSession(api, {}, prefix);
    const answers = { v: 'x', status: 'completed', id: 'other', dirty: '1', user_id: 'mallory', 'a:x': 1 };
    const res = await client().progress(s.id, { answers });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: s.id, user_id: s.user_id, status: 'in_progress', version: 2, answers });
    const next = await client().progress(s.id, { current_question: 1, version: 2 });
    expect(next.body).toMatchObject({ version: 3, status: 'in_progress', answers });
    const done = await client().complete(s.id);
    expect(done.body).toMatchObject({ status: 'completed', version: 4 });
    expect((await sessionRow(api, s.id))!.answers).toEqual(answers);
  });

  test('a question id of 129 characters in an answers map answers 400 naming it', async () => {
    const s = await buildSession(api, {}, prefix);
    expectValidationError(await client().progress(s.id, { answers: { [padTo('q', 129)]: 'A' } }), 'answers.');
  });

  test('an answer holding a lone UTF-16 surrogate is refused with 400, so complete stays durable', async () => {
    const s = await buildSession(api, {}, prefix);
    expectValidationError(await client().progress(s.id, '{"question_id": "q1", "answer": "\\ud800"}'), 'answer');
    const done = await client().complete(s.id);
    expect(done.status).toBe(200);
    expect(await sessionRow(api, s.id)).toMatchObject({ status: 'completed' });
  });

  test('constructor and prototype as question ids are stored as plain data', async () => {
    const s = await buildSession(api, {}, prefix);
    const answers = { constructor: 'C', prototype: { x: 1 }, toString: 'T', hasOwnProperty: 'H' };
    const res = await client().progress(s.id, { answers });
    expect(res.status).toBe(200);
    expect(res.body.answers).toEqual(answers);
    const byId = await client().progress(s.id, { question_id: 'constructor', answer: 'C2' });
    expect(byId.body.answers.constructor).toBe('C2');
    expect((await client().get(s.id)).body.answers).toEqual({ ...answers, constructor: 'C2' });
    const done = await client().complete(s.id);
    expect((await sessionRow(api, s.id))!.answers).toEqual(done.body.answers);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('500 INTERNAL_SERVER_ERROR', () => {
  test('an unexpected error answers 500 with the contract and nothing internal leaked', async () => {
    const s = await buildSession(api);
    failReadsWith = new Error('secret-internal-detail at /srv/app/sessionService.ts:42');
    const res = await request(api.url, 'GET', `/api/sessions/${s.id}`);
    const body = expectError(res, 500, 'INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(body)).not.toMatch(/secret-internal-detail|sessionService|\/srv\//);
    expect(body.session).toBeUndefined();
  });
});
