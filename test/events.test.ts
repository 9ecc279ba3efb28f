import fc from 'fast-check';
import { foldAnswers, type AttemptEvent } from '../src/shared/domain/events';
import { eventsKey, sessionKey } from '../src/shared/store/sessionStore';
import { bearerFor, SECRET, startAuthApi } from './support/authApi';
import { expectError, expectValidationError } from './support/contract';
import { buildSession, startTestApi, type AttemptJson, type TestApi } from './support/harness';
import { assertAsyncProperty } from './support/property';
import { request, type TestResponse } from './support/http';

/*
 * The event log over HTTP: every accepted change and every refused write is an event with an
 * increasing seq, the server's time, the actor and the request id; client events are recorded
 * with the server's time; the log reaches PostgreSQL (attempt_events) and reads back the same
 * after the Redis copy is gone; folding answer_saved rebuilds the answers at any version.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api.close());

type EventJson = Omit<AttemptEvent, 'at'> & { at: string };

async function eventsOf(id: string, query = ''): Promise<{ events: EventJson[]; next_after: number }> {
  const res = await request(api.url, 'GET', `/api/sessions/${id}/events${query}`);
  expect(res.status).toBe(200);
  return res.body;
}

const patch = (id: string, body: unknown, headers: Record<string, string> = {}) =>
  request(api.url, 'PATCH', `/api/sessions/${id}/progress`, body, headers);
const post = (path: string, body: unknown = {}) => request(api.url, 'POST', path, body);

/** The attempt's rows of attempt_events, in seq order. */
const pgEvents = async (id: string) => api.knex('attempt_events').where({ attempt_id: id }).orderBy('seq');

test('every accepted change and every refused write is an event: seq 1, 2, …, server time, actor, the request id', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const saved = await patch(s.id, { answers: { q1: 'A', q2: { choice: 3 } }, current_question: 2 }, { 'x-request-id': 'req-save-1' });
  expect(saved.status).toBe(200);
  const stale = await patch(s.id, { question_id: 'q1', answer: 'B', version: 1 }, { 'x-request-id': 'req-stale' });
  expectError(stale, 409, 'SESSION_CONFLICT');
  await post(`/api/sessions/${s.id}/pause`, { reason: 'medical break' });
  expectError(await patch(s.id, { question_id: 'q3', answer: 'C' }), 423, 'SESSION_PAUSED');
  await post(`/api/sessions/${s.id}/resume`, {});
  await post(`/api/sessions/${s.id}/extend`, { seconds: 120, reason: 'fire alarm' });
  const done = await post(`/api/sessions/${s.id}/complete`);
  expect(done.status).toBe(200);

  const { events, next_after } = await eventsOf(s.id);
  expect(events.map((e) => e.type)).toEqual([
    'started',
    'answer_saved',
    'write_rejected',
    'paused',
    'write_rejected',
    'resumed_by_proctor',
    'extended',
    'completed',
  ]);
  expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(next_after).toBe(8);
  for (const e of events) {
    expect(e.actor).toEqual({ id: null, role: 'open' });
    expect(Date.parse(e.at)).toBeGreaterThanOrEqual(Date.parse(s.started_at));
  }
  expect(events[1]).toMatchObject({
    request_id: 'req-save-1',
    data: { answers: { q1: 'A', q2: { choice: 3 } }, current_question: 2, version: 2 },
  });
  expect(events[2]).toMatchObject({
    request_id: 'req-stale',
    data: { status: 409, error_code: 'SESSION_CONFLICT', version: 1, attempt_status: 'in_progress' },
  });
  expect(events[4].data).toMatchObject({ status: 423, error_code: 'SESSION_PAUSED', version: null, attempt_status: 'paused' });
  expect(events[3].data).toMatchObject({ reason: 'medical break' });
  expect(events[6].data).toMatchObject({ reason: 'fire alarm', seconds: 120, from: 'deadline', granted_seconds: 120 });
  expect(events[7].data).toMatchObject({ by: 'student', submitted_by: 'student', version: done.body.version });

  // the complete is durable, and so is every event before it
  const rows = await pgEvents(s.id);
  expect(rows.map((r) => [r.seq, r.type, r.request_id])).toEqual(events.map((e) => [e.seq, e.type, e.request_id]));
  expect(rows[1].data).toEqual(events[1].data);
});

test('a backlog larger than one statement may carry (after an outage) is written whole, each event once', async () => {
  const s = await buildSession(api);
  const events = Array.from({ length: 10_001 }, (_, i) => ({
    attempt: { id: s.id, userId: s.user_id },
    event: {
      seq: i + 2,
      type: 'page_focused' as const,
      at: Date.now(),
      actor: { id: null, role: 'open' as const },
      request_id: null,
      data: { client_time: '2026-12-01T09:00:00Z' },
    },
  }));
  await api.repo.insertEvents(events);
  await api.repo.insertEvents(events.slice(0, 3000)); // a replay writes nothing twice
  expect(await api.knex('attempt_events').where({ attempt_id: s.id }).count('* as n')).toEqual([{ n: '10002' }]);
});

test('pages: after and limit, in seq order; a bad query is a 400', async () => {
  const s = await buildSession(api);
  for (let i = 0; i < 5; i++) expect((await patch(s.id, { question_id: `q${i}`, answer: i })).status).toBe(200);
  const first = await eventsOf(s.id, '?limit=2');
  expect(first.events.map((e) => e.seq)).toEqual([1, 2]);
  const second = await eventsOf(s.id, `?after=${first.next_after}&limit=3`);
  expect(second.events.map((e) => e.seq)).toEqual([3, 4, 5]);
  const last = await eventsOf(s.id, `?after=${second.next_after}`);
  expect(last.events.map((e) => e.seq)).toEqual([6]);
  const none = await eventsOf(s.id, `?after=${last.next_after}`);
  expect(none).toEqual({ events: [], next_after: 6 });
  expectValidationError(await request(api.url, 'GET', `/api/sessions/${s.id}/events?limit=0`), 'limit');
  expectValidationError(await request(api.url, 'GET', `/api/sessions/${s.id}/events?after=-1`), 'after');
  expectValidationError(await request(api.url, 'GET', `/api/sessions/${s.id}/events?since=3`), 'since');
});

test('the log reads back the same from PostgreSQL once the Redis copy is gone, and its numbering goes on from there', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  await patch(s.id, { question_id: 'q1', answer: 'A' });
  await post(`/api/sessions/${s.id}/pause`, { reason: 'break' }); // durable, its events too
  const before = await eventsOf(s.id);
  await api.redis.del(sessionKey(s.id), eventsKey(s.id));
  expect(await eventsOf(s.id)).toEqual(before);

  // refilled from PostgreSQL: the next event is numbered after the last one there
  expect((await post(`/api/sessions/${s.id}/resume`)).status).toBe(200);
  const after = await eventsOf(s.id);
  expect(after.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  expect(after.events[3].type).toBe('resumed_by_proctor');
});

describe('client events', () => {
  const report = (id: string, body: unknown) => post(`/api/sessions/${id}/events`, body);

  test('are recorded with the server time and the client time, 202', async () => {
    const s = await buildSession(api);
    const res = await report(s.id, {
      events: [
        { type: 'page_blurred', client_time: '2026-12-01T09:00:00Z' },
        { type: 'question_viewed', client_time: '2026-12-01T09:00:05+01:00', data: { question_id: 'q3' } },
      ],
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, last_seq: 3 });
    const { events } = await eventsOf(s.id);
    expect(events.slice(1)).toMatchObject([
      { seq: 2, type: 'page_blurred', data: { client_time: '2026-12-01T09:00:00Z' } },
      { seq: 3, type: 'question_viewed', data: { question_id: 'q3', client_time: '2026-12-01T09:00:05+01:00' } },
    ]);
    // the attempt itself did not change
    expect((await request(api.url, 'GET', `/api/sessions/${s.id}`)).body.version).toBe(s.version);
  });

  test.each([
    [{ events: [{ type: 'completed', client_time: '2026-12-01T09:00:00Z' }] }, 'events.0.type'],
    [{ events: [{ type: 'answer_saved', client_time: '2026-12-01T09:00:00Z' }] }, 'events.0.type'],
    [{ events: [{ type: 'page_blurred' }] }, 'events.0.client_time'],
    [{ events: [{ type: 'page_blurred', client_time: 'yesterday' }] }, 'events.0.client_time'],
    [{ events: [{ type: 'page_blurred', client_time: '2026-12-01T09:00:00Z', at: 'now' }] }, 'events.0'],
    [{ events: [] }, 'events'],
    [{ events: Array.from({ length: 51 }, () => ({ type: 'page_focused', client_time: '2026-12-01T09:00:00Z' })) }, 'events'],
    [{ events: [{ type: 'page_blurred', client_time: '2026-12-01T09:00:00Z', data: { blob: 'x'.repeat(2100) } }] }, 'events.0.data'],
    [{ events: [{ type: 'page_blurred', client_time: '2026-12-01T09:00:00Z' }], extra: 1 }, 'extra'],
  ])('a bad report %# is a 400 naming %s, and nothing is recorded', async (body, field) => {
    const s = await buildSession(api);
    expectValidationError(await report(s.id, body), field);
    expect((await eventsOf(s.id)).events.map((e) => e.type)).toEqual(['started']);
  });
});

describe('with real tokens', () => {
  let auth: Awaited<ReturnType<typeof startAuthApi>>;
  beforeAll(async () => {
    auth = await startAuthApi({ AUTH_JWT_SECRET: SECRET });
  });
  afterAll(async () => auth.close());

  const as = bearerFor;

  test('the owner reads and reports; a proctor (of the quiz) reads; another student and a proctor of another quiz may not', async () => {
    const owner = await as(auth.user('olga'));
    const started = await request(auth.url, 'POST', '/api/sessions/start', { quiz_id: auth.user('quiz') }, owner);
    expect(started.status).toBe(201);
    const id = started.body.id as string;
    const path = `/api/sessions/${id}/events`;
    const clientEvent = { events: [{ type: 'page_focused', client_time: '2026-12-01T09:00:00Z' }] };

    expect((await request(auth.url, 'POST', path, clientEvent, owner)).status).toBe(202);
    const read = await request(auth.url, 'GET', path, undefined, owner);
    expect(read.status).toBe(200);
    expect(read.body.events.map((e: EventJson) => [e.type, e.actor])).toEqual([
      ['started', { id: auth.user('olga'), role: 'student' }],
      ['page_focused', { id: auth.user('olga'), role: 'student' }],
    ]);

    const proctor = await as(auth.user('pia'), { role: 'proctor', quiz_ids: [auth.user('quiz')] });
    expect((await request(auth.url, 'GET', path, undefined, proctor)).status).toBe(200);
    expectError(await request(auth.url, 'POST', path, clientEvent, proctor), 403, 'FORBIDDEN');
    const elsewhere = await as(auth.user('pia'), { role: 'proctor', quiz_ids: ['another-quiz'] });
    expectError(await request(auth.url, 'GET', path, undefined, elsewhere), 403, 'FORBIDDEN');
    const other = await as(auth.user('oscar'));
    expectError(await request(auth.url, 'GET', path, undefined, other), 403, 'FORBIDDEN');
    expectError(await request(auth.url, 'POST', path, clientEvent, other), 403, 'FORBIDDEN');
  });
});

test('folding answer_saved in seq order rebuilds the answers at every version (property)', async () => {
  const write = fc.record({
    answers: fc.dictionary(
      fc.constantFrom('q1', 'q2', 'q3', 'q4'),
      fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null)),
      {
        minKeys: 1,
        maxKeys: 3,
      },
    ),
    stale: fc.boolean(),
  });
  await assertAsyncProperty(
    fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 8 }), async (writes) => {
      const s = await buildSession(api);
      const seen = new Map<number, Record<string, unknown>>([[s.version, {}]]);
      let version = s.version;
      for (const w of writes) {
        const res: TestResponse = await patch(s.id, { answers: w.answers, version: w.stale ? version + 5 : version });
        if (res.status === 200) {
          const a = res.body as AttemptJson;
          version = a.version;
          seen.set(a.version, a.answers);
        } else {
          expect(res.status).toBe(409);
        }
      }
      const { events } = await eventsOf(s.id, '?limit=1000');
      const asEvents = events.map((e) => ({ ...e, at: Date.parse(e.at) })) as AttemptEvent[];
      for (const [v, answers] of seen) expect(foldAnswers(asEvents, v)).toEqual(answers);
      expect(events.filter((e) => e.type === 'write_rejected')).toHaveLength(writes.filter((w) => w.stale).length);
    }),
    { numRuns: 25 },
  );
});
