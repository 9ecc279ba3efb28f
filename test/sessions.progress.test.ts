import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { assertAsyncProperty } from './support/property';
import { buildSession, startTestApi, type TestApi } from './support/harness';
import { expectAttemptShape, expectError, expectValidationError } from './support/contract';
import { buildAnswers, questionId } from './support/factories';
import { sessionKey } from '../src/shared/store/sessionStore';
import { SESSION_PREFIXES } from '../src/api/routes/sessions';
import { sessionClient } from './support/http';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api.close();
});

const METHODS = ['PATCH', 'PUT'] as const;

describe.each(SESSION_PREFIXES)('progress on %s', (prefix) => {
  const client = () => sessionClient(api, prefix);

  describe.each(METHODS)('%s', (method) => {
    const progress = (id: string, body: unknown, headers?: Record<string, string>) => client().progress(id, body, { method, headers });

    test('a question_id and answer are recorded; status becomes in_progress and version goes up by one', async () => {
      const s = await buildSession(api, {}, prefix);
      const q = questionId();
      const res = await progress(s.id, { question_id: q, answer: 'B', version: 1 });
      expect(res.status).toBe(200);
      expectAttemptShape(res.body);
      expect(res.body).toMatchObject({ id: s.id, status: 'in_progress', version: 2, answers: { [q]: 'B' }, current_question: 0 });
      expect(res.headers.get('etag')).toBe('"2"');
      expect(Date.parse(res.body.last_updated)).toBeGreaterThanOrEqual(Date.parse(s.last_updated));
    });

    test('the written state is what a later read returns', async () => {
      const s = await buildSession(api, {}, prefix);
      const written = await progress(s.id, { answers: { q1: 'A' }, current_question: 1 });
      const read = await client().get(s.id);
      expect(read.body).toEqual({ ...written.body, time_remaining: expect.any(Number) });
    });

    test('an answers map merges per question: new questions added, answered ones replaced, others kept', async () => {
      const s = await buildSession(api, {}, prefix);
      expect((await progress(s.id, { answers: { q1: 'A', q2: 'B' } })).status).toBe(200);
      const res = await progress(s.id, { answers: { q2: 'C', q3: 'D' } });
      expect(res.status).toBe(200);
      expect(res.body.answers).toEqual({ q1: 'A', q2: 'C', q3: 'D' });
      expect(res.body.version).toBe(3);
    });

    test('question_id + answer and an answers map in one request are both applied', async () => {
      const s = await buildSession(api, {}, prefix);
      const res = await progress(s.id, { question_id: 'single', answer: 1, answers: { m1: 2, m2: 3 } });
      expect(res.status).toBe(200);
      expect(res.body.answers).toEqual({ single: 1, m1: 2, m2: 3 });
      expect(res.body.version).toBe(2);
    });

    test('answers keep their JSON type: strings, numbers, booleans, null, arrays and objects', async () => {
      const s = await buildSession(api, {}, prefix);
      const answers = { s: 'text', n: 42.5, b: false, z: null, arr: [1, 'two', [3]], obj: { choice: ['a', 'c'], note: 'é 漢字 😀' } };
      const res = await progress(s.id, { answers });
      expect(res.status).toBe(200);
      expect(res.body.answers).toEqual(answers);
      expect((await client().get(s.id)).body.answers).toEqual(answers);
    });

    test('an integer question_id is stored under its decimal text', async () => {
      const s = await buildSession(api, {}, prefix);
      const res = await progress(s.id, { question_id: 7, answer: 'D' });
      expect(res.status).toBe(200);
      expect(res.body.answers).toEqual({ 7: 'D' });
    });

    test('current_question alone moves the attempt and counts as a write', async () => {
      const s = await buildSession(api, {}, prefix);
      const res = await progress(s.id, { current_question: 5 });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ current_question: 5, version: 2, status: 'in_progress', answers: {} });
    });

    test('each accepted write increments version by exactly one', async () => {
      const s = await buildSession(api, {}, prefix);
      const versions: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await progress(s.id, { question_id: `q${i}`, answer: i, version: i + 1 });
        expect(res.status).toBe(200);
        versions.push(res.body.version);
      }
      expect(versions).toEqual([2, 3, 4, 5, 6]);
    });

    test.each([
      ['bare', (v: number) => `${v}`],
      ['quoted', (v: number) => `"${v}"`],
      ['weak', (v: number) => `W/"${v}"`],
    ])('accepts the version as an If-Match header (%s)', async (_form, format) => {
      const s = await buildSession(api, {}, prefix);
      expect((await progress(s.id, { current_question: 1 })).status).toBe(200);
      const res = await progress(s.id, { current_question: 2 }, { 'if-match': format(2) });
      expect(res.status).toBe(200);
      expect(res.body.version).toBe(3);
      const stale = await progress(s.id, { current_question: 3 }, { 'if-match': format(2) });
      expectError(stale, 409, 'SESSION_CONFLICT');
    });

    test('If-Match equal to the body version is accepted', async () => {
      const s = await buildSession(api, {}, prefix);
      const res = await progress(s.id, { current_question: 1, version: 1 }, { 'if-match': '"1"' });
      expect(res.status).toBe(200);
    });

    test('If-Match: * means no version check', async () => {
      const s = await buildSession(api, {}, prefix);
      await progress(s.id, { current_question: 1 });
      const res = await progress(s.id, { current_question: 2 }, { 'if-match': '*' });
      expect(res.status).toBe(200);
      expect(res.body.version).toBe(3);
    });

    test('a body version that contradicts If-Match is refused with 400 naming version, and nothing is written', async () => {
      const s = await buildSession(api, {}, prefix);
      const res = await progress(s.id, { current_question: 1, version: 1 }, { 'if-match': '"2"' });
      expectValidationError(res, 'version');
      expect((await client().get(s.id)).body.version).toBe(1);
    });

    test('a malformed If-Match is refused with 400 naming If-Match', async () => {
      const s = await buildSession(api, {}, prefix);
      expectValidationError(await progress(s.id, { current_question: 1 }, { 'if-match': 'abc' }), 'If-Match');
      expectValidationError(await progress(s.id, { current_question: 1 }, { 'if-match': '"0"' }), 'If-Match');
    });

    test('a stale version answers 409 SESSION_CONFLICT, retryable after 1 s, with the current attempt, and writes nothing', async () => {
      const s = await buildSession(api, {}, prefix);
      const current = await progress(s.id, { question_id: 'q1', answer: 'first', version: 1 });
      const res = await progress(s.id, { question_id: 'q1', answer: 'second', version: 1 });
      const body = expectError(res, 409, 'SESSION_CONFLICT');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(body).toMatchObject({ retryable: true, retryAfterSeconds: 1, sessionId: s.id });
      expect(body.message).toMatch(/version/i);
      expectAttemptShape(body.session);
      expect(body.session).toEqual({ ...current.body, time_remaining: expect.any(Number) });
      expect((await client().get(s.id)).body).toMatchObject({ version: 2, answers: { q1: 'first' } });
    });

    test('a version ahead of the current one is a conflict too', async () => {
      const s = await buildSession(api, {}, prefix);
      expectError(await progress(s.id, { current_question: 1, version: 9 }), 409, 'SESSION_CONFLICT');
    });

    test('progress on a completed attempt answers 409 SESSION_COMPLETED, not retryable, with the attempt', async () => {
      const s = await buildSession(api, {}, prefix);
      const completed = await client().complete(s.id);
      const res = await progress(s.id, { question_id: 'q1', answer: 'late' });
      const body = expectError(res, 409, 'SESSION_COMPLETED');
      expect(body.retryable).toBe(false);
      expect(body.retryAfterSeconds).toBeUndefined();
      expect(res.headers.get('retry-after')).toBeNull();
      expect(body.session).toEqual(completed.body);
    });

    test('progress on a completed attempt with a stale version still says SESSION_COMPLETED', async () => {
      const s = await buildSession(api, {}, prefix);
      await client().complete(s.id);
      expectError(await progress(s.id, { current_question: 1, version: 1 }), 409, 'SESSION_COMPLETED');
    });

    test('progress for an unknown attempt answers 404 SESSION_NOT_FOUND', async () => {
      expectError(await progress(randomUUID(), { current_question: 1 }), 404, 'SESSION_NOT_FOUND');
    });

    test('progress with an invalid id answers 400 naming id', async () => {
      expectValidationError(await progress('nope', { current_question: 1 }), 'id');
    });

    test('a body with nothing to write answers 400', async () => {
      const s = await buildSession(api, {}, prefix);
      expectError(await progress(s.id, {}), 400, 'VALIDATION_ERROR');
      expectError(await progress(s.id, { version: 1 }), 400, 'VALIDATION_ERROR');
    });

    test('question_id without answer, or answer without question_id, answers 400 naming the missing field', async () => {
      const s = await buildSession(api, {}, prefix);
      expectValidationError(await progress(s.id, { question_id: 'q1' }), 'answer');
      expectValidationError(await progress(s.id, { answer: 'A' }), 'question_id');
    });

    test('accepts the camelCase aliases questionId and currentQuestion', async () => {
      const s = await buildSession(api, {}, prefix);
      const res = await progress(s.id, { questionId: 'q-camel', answer: 'A', currentQuestion: 3 });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ answers: { 'q-camel': 'A' }, current_question: 3 });
    });

    test('a field given both as snake_case and camelCase with different values is refused', async () => {
      const s = await buildSession(api, {}, prefix);
      expectValidationError(await progress(s.id, { current_question: 1, currentQuestion: 2 }), 'current_question');
    });

    test('an accepted write refreshes the Redis key TTL to the cache TTL; a refused one does not', async () => {
      const s = await buildSession(api, {}, prefix);
      await api.redis.expire(sessionKey(s.id), 100);
      expectError(await progress(s.id, { current_question: 1, version: 7 }), 409, 'SESSION_CONFLICT');
      expect(await api.redis.ttl(sessionKey(s.id))).toBeLessThanOrEqual(100);
      expect((await progress(s.id, { current_question: 1 })).status).toBe(200);
      expect(await api.redis.ttl(sessionKey(s.id))).toBeGreaterThan(api.config.SESSION_CACHE_TTL_SECONDS - 5);
    });

    test('an attempt holds at most 500 answers', async () => {
      const s = await buildSession(api, {}, prefix);
      for (let i = 0; i < 5; i++) expect((await progress(s.id, { answers: buildAnswers(100, `batch${i}`) })).status).toBe(200);
      expectValidationError(await progress(s.id, { question_id: 'one-too-many', answer: 'x' }), 'answers');
      const replaced = await progress(s.id, { question_id: 'batch0-0', answer: 'changed' });
      expect(replaced.status).toBe(200);
      expect(Object.keys(replaced.body.answers)).toHaveLength(500);
    });
  });
});

describe('the answers text and its index, over any sequence of writes (property)', () => {
  // keys with quotes, a slash and non-ASCII, so that JSON escaping changes their length, and
  // answers that hold the same keys nested (or a key's text inside a string), so that a key's
  // text occurs more than once in the answers: the script then places it by the index's lengths
  const KEYS = ['q1', 'q2', 'q3', 'qq', 'a/b', 'é"', 'x\\y', '10'];
  const answer = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.dictionary(fc.constantFrom(...KEYS), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
    fc.constantFrom(...KEYS).map((k) => `${JSON.stringify(k)}:`),
  );
  const write = fc.record({
    entries: fc.array(fc.tuple(fc.constantFrom(...KEYS), answer), { minLength: 1, maxLength: 4 }),
    single: fc.boolean(),
  });

  /**
   * The stored index (each `\n<key's JSON text, unquoted>\t<value length in bytes>`) walked over
   * the stored text: every entry, in order, and the text exactly covered.
   */
  function entriesOf(stored: string, index: string): Array<[string, unknown]> {
    const text = Buffer.from(stored);
    const entries = index === '' ? [] : index.slice(1).split('\n');
    const out: Array<[string, unknown]> = [];
    let pos = 1;
    for (const entry of entries) {
      const [inner, length] = entry.split('\t');
      const key = `"${inner}"`;
      expect(length).toMatch(/^\d+$/);
      const keyLength = Buffer.byteLength(key);
      expect(text.subarray(pos, pos + keyLength).toString()).toBe(key);
      const value = text.subarray(pos + keyLength + 1, pos + keyLength + 1 + Number(length)).toString();
      out.push([JSON.parse(key) as string, JSON.parse(value)]);
      pos += keyLength + Number(length) + 2;
    }
    expect(pos).toBe(Math.max(2, text.length));
    return out;
  }

  test('a replaced answer keeps its place, a new one is appended, the index always matches the text, and the reply is what a read shows', async () => {
    await assertAsyncProperty(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 8 }), async (writes) => {
        const s = await buildSession(api);
        const model = new Map<string, unknown>();
        let version = s.version;
        for (const w of writes) {
          // one pair as question_id + answer, the rest (distinct keys, the last of a repeat wins) as answers
          const [first, ...rest] = w.entries;
          const body: Record<string, unknown> = { version };
          const answers: Record<string, unknown> = {};
          if (w.single) {
            body.question_id = first[0];
            body.answer = first[1];
            for (const [k, v] of rest) if (k !== first[0]) answers[k] = v;
          } else {
            for (const [k, v] of w.entries) answers[k] = v;
          }
          if (Object.keys(answers).length > 0) body.answers = answers;
          const res = await sessionClient(api, '/api/sessions').progress(s.id, body);
          expect(res.status).toBe(200);
          version = res.body.version as number;
          // as the service takes them: the answers map first, then question_id + answer; each
          // value as JSON carries it (the body is JSON: -0 arrives as 0)
          const sent = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
          for (const [k, v] of Object.entries(answers)) model.set(k, sent(v));
          if (w.single) model.set(first[0], sent(first[1]));
          const hash = await api.redis.hmget(sessionKey(s.id), 'answers', 'answer_index');
          expect(entriesOf(hash[0]!, hash[1]!)).toEqual([...model.entries()]);
          expect(res.body.answers).toEqual(Object.fromEntries(model));
          // the reply is rendered from what the script wrote, not read back: it is what a read then shows
          const read = await sessionClient(api, '/api/sessions').get(s.id);
          expect(read.body).toEqual({ ...res.body, time_remaining: read.body.time_remaining });
        }
        await api.redis.del(sessionKey(s.id));
      }),
      { numRuns: 40 },
    );
  });

  test('an answer that holds a later key nested: the later key is replaced at its own entry, not inside the answer', async () => {
    const s = await buildSession(api);
    const client = sessionClient(api, '/api/sessions');
    const first = await client.progress(s.id, { version: s.version, answers: { q1: { q2: 'nested', 'é"': 1 }, q2: 'top', 'é"': [2] } });
    expect(first.status).toBe(200);
    const second = await client.progress(s.id, { version: first.body.version, answers: { q2: 'changed', 'é"': { q2: 3 } } });
    expect(second.status).toBe(200);
    const expected = { q1: { q2: 'nested', 'é"': 1 }, q2: 'changed', 'é"': { q2: 3 } };
    expect(second.body.answers).toEqual(expected);
    const hash = await api.redis.hmget(sessionKey(s.id), 'answers', 'answer_index');
    expect(entriesOf(hash[0]!, hash[1]!)).toEqual(Object.entries(expected));
    await api.redis.del(sessionKey(s.id));
  });

  test('an index of the earlier form (the lengths alone) is converted by the next write, the answers kept', async () => {
    const s = await buildSession(api);
    const client = sessionClient(api, '/api/sessions');
    const first = await client.progress(s.id, { version: s.version, answers: { q1: { q2: 1 }, q2: 'two', 'a/b': 'é' } });
    expect(first.status).toBe(200);
    // the index as it was written before 2026-12-02: each entry's key and value lengths in bytes
    const [text, index] = await api.redis.hmget(sessionKey(s.id), 'answers', 'answer_index');
    const earlier = index!
      .slice(1)
      .split('\n')
      .flatMap((entry) => {
        const [inner, length] = entry.split('\t');
        return [Buffer.byteLength(inner) + 2, Number(length)];
      })
      .join(',');
    expect(earlier).toBe('4,8,4,5,5,4');
    await api.redis.hset(sessionKey(s.id), 'answer_index', earlier);
    const second = await client.progress(s.id, { version: first.body.version, answers: { q2: 'changed', q3: 3 } });
    expect(second.status).toBe(200);
    const expected = { q1: { q2: 1 }, q2: 'changed', 'a/b': 'é', q3: 3 };
    expect(second.body.answers).toEqual(expected);
    const after = await api.redis.hmget(sessionKey(s.id), 'answers', 'answer_index');
    expect(after[0]).not.toBe(text);
    expect(entriesOf(after[0]!, after[1]!)).toEqual(Object.entries(expected));
    await api.redis.del(sessionKey(s.id));
  });
});
