import { randomUUID } from 'node:crypto';
import { expectError } from './support/contract';
import { buildSession, startTestApi, type TestApi } from './support/harness';
import { killAllProcesses, runStores, startProcess, type ServiceProcess } from './support/processes';
import { SseClient } from './support/sse';
import { request } from './support/http';

/*
 * Live streams (Server-Sent Events) over HTTP: the current attempt on connect (id = version), one
 * attempt event per change from any writer (progress, a control, the deadline), `time` events, a
 * resume with Last-Event-ID, a quiz's stream, the bound per process, the end on shutdown, and the
 * fan-out between two API processes through Redis pub/sub.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ STREAM_TIME_EVENT_SECONDS: 1 });
});
afterAll(async () => {
  await killAllProcesses();
  await api.close();
});

const opened: SseClient[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

/** Opens a stream that must answer 200. */
async function connect(base: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const res = await SseClient.open(base + path, headers);
  if (!res.client) throw new Error(`stream ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  opened.push(res.client);
  return res.client;
}

const patch = (id: string, body: unknown, base = api.url) => request(base, 'PATCH', `/api/sessions/${id}/progress`, body);

test('on connect: the attempt (id = its version) and a time event; then one attempt event per change, in order', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const stream = await connect(api.url, `/api/sessions/${s.id}/stream`);
  expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  expect(stream.response.headers.get('cache-control')).toContain('no-cache');
  const first = await stream.nextAttempt();
  expect(first.id).toBe(String(s.version));
  expect(first.attempt).toMatchObject({ id: s.id, version: s.version, status: 'started' });
  const time = JSON.parse((await stream.next('time')).data);
  expect(time.time_remaining).toBeGreaterThan(590);
  expect(Math.abs(Date.parse(time.server_time) - Date.now())).toBeLessThan(2000);
  expect(stream.retryMs).toBeGreaterThan(0);

  for (const answer of ['A', 'B', 'C']) expect((await patch(s.id, { question_id: 'q1', answer })).status).toBe(200);
  for (const [i, answer] of ['A', 'B', 'C'].entries()) {
    const e = await stream.nextAttempt();
    expect(e.id).toBe(String(s.version + i + 1));
    expect(e.attempt).toMatchObject({ version: s.version + i + 1, status: 'in_progress', answers: { q1: answer } });
  }

  // controls and the student's close are changes too
  await request(api.url, 'POST', `/api/sessions/${s.id}/extend`, { seconds: 60 });
  expect((await stream.nextAttempt()).attempt).toMatchObject({ extra_time_seconds: 60 });
  await request(api.url, 'POST', `/api/sessions/${s.id}/pause`, {});
  expect((await stream.nextAttempt()).attempt).toMatchObject({ status: 'paused' });
  await request(api.url, 'POST', `/api/sessions/${s.id}/resume`, {});
  expect((await stream.nextAttempt()).attempt).toMatchObject({ status: 'in_progress' });
  await request(api.url, 'POST', `/api/sessions/${s.id}/complete`, {});
  expect((await stream.nextAttempt()).attempt).toMatchObject({ status: 'completed', submitted_by: 'student' });
});

test('a refused write is no change: nothing is sent for it', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const stream = await connect(api.url, `/api/sessions/${s.id}/stream`);
  await stream.nextAttempt();
  expectError(await patch(s.id, { question_id: 'q1', answer: 'A', version: s.version + 5 }), 409, 'SESSION_CONFLICT');
  expect((await patch(s.id, { question_id: 'q1', answer: 'B' })).status).toBe(200);
  // the next attempt event is the accepted write's
  expect((await stream.nextAttempt()).attempt).toMatchObject({ version: s.version + 1, answers: { q1: 'B' } });
});

test('a keyed write with the stream open: the stream gets the change, and a retry is answered from the record with the same body', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const stream = await connect(api.url, `/api/sessions/${s.id}/stream`);
  await stream.nextAttempt();
  const headers = { 'idempotency-key': randomUUID() };
  const body = { question_id: 'q1', answer: { text: 'say "hi"', n: [1, 2.5] }, version: s.version };
  const first = await request(api.url, 'PATCH', `/api/sessions/${s.id}/progress`, body, headers);
  expect(first.status).toBe(200);
  // the record keeps the text the script published (encoded once for both)
  expect((await stream.nextAttempt()).attempt).toEqual(first.body);
  const retry = await request(api.url, 'PATCH', `/api/sessions/${s.id}/progress`, body, headers);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect(retry.body).toEqual(first.body);
});

test('time events follow at the set interval with the time remaining, frozen while paused', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const stream = await connect(api.url, `/api/sessions/${s.id}/stream`);
  await stream.next('time');
  const a = await stream.next('time', 3000);
  const b = await stream.next('time', 3000);
  expect(b.at - a.at).toBeGreaterThan(500);
  expect(b.at - a.at).toBeLessThan(2500);
  await request(api.url, 'POST', `/api/sessions/${s.id}/pause`, {});
  await stream.nextAttempt();
  const frozen = JSON.parse((await stream.next('time', 3000)).data).time_remaining;
  await new Promise((r) => setTimeout(r, 1100));
  expect(JSON.parse((await stream.next('time', 3000)).data).time_remaining).toBe(frozen);
});

test('the deadline passing is sent as the attempt expires (a write or a worker moves it)', async () => {
  const s = await buildSession(api, { time_limit_seconds: 1 });
  const stream = await connect(api.url, `/api/sessions/${s.id}/stream`);
  await stream.nextAttempt();
  await new Promise((r) => setTimeout(r, 1200));
  // a write past the deadline settles it: refused, and the expiry is a change
  expectError(await patch(s.id, { question_id: 'q1', answer: 'late' }), 410, 'SESSION_EXPIRED');
  const e = await stream.nextAttempt();
  expect(e.attempt).toMatchObject({ status: 'expired', time_remaining: 0 });
});

test('Last-Event-ID: a client at the current version gets only the clock; one behind gets the newer state at once', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const first = await connect(api.url, `/api/sessions/${s.id}/stream`);
  const seen = await first.nextAttempt();
  first.close();

  // reconnect with nothing new: no attempt event, a time event
  const same = await connect(api.url, `/api/sessions/${s.id}/stream`, { 'last-event-id': seen.id! });
  expect((await same.next()).event).toBe('time');
  same.close();

  // changes while disconnected: the reconnect sends the newest state first
  await patch(s.id, { question_id: 'q1', answer: 'A' });
  await patch(s.id, { question_id: 'q2', answer: 'B' });
  const resumed = await connect(api.url, `/api/sessions/${s.id}/stream`, { 'last-event-id': seen.id! });
  const e = await resumed.next();
  expect(e.event).toBe('attempt');
  expect(JSON.parse(e.data)).toMatchObject({ version: s.version + 2, answers: { q1: 'A', q2: 'B' } });
  expect(e.id).toBe(String(s.version + 2));

  // the same with the query parameter, for clients that cannot set the header
  const byQuery = await connect(api.url, `/api/sessions/${s.id}/stream?last_event_id=${s.version + 2}`);
  expect((await byQuery.next()).event).toBe('time');

  const bad = await SseClient.open(`${api.url}/api/sessions/${s.id}/stream`, { 'last-event-id': 'x1' });
  expect(bad.status).toBe(400);
  const unknown = await SseClient.open(`${api.url}/api/sessions/${s.id}/stream?since=1`);
  expect(unknown.status).toBe(400);
});

test('a stream of an attempt that does not exist is 404 and of a malformed id 400, before any event', async () => {
  const missing = await SseClient.open(`${api.url}/api/sessions/${randomUUID()}/stream`);
  expect(missing.status).toBe(404);
  expect(missing.client).toBeNull();
  expect((await SseClient.open(`${api.url}/api/sessions/not-a-uuid/stream`)).status).toBe(400);
});

test("a quiz's stream: every change of any attempt of that quiz (new attempts included), none of another quiz", async () => {
  const quiz = `quiz-${randomUUID().slice(0, 8)}`;
  const stream = await connect(api.url, `/api/quizzes/${quiz}/stream`);
  const a = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
  const other = await buildSession(api, { time_limit_seconds: 600 });
  const b = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
  await patch(other.id, { question_id: 'q1', answer: 'X' });
  await patch(a.id, { question_id: 'q1', answer: 'A' });
  await request(api.url, 'POST', `/api/sessions/${b.id}/pause`, {});

  const got: Array<Record<string, unknown> & { version: number; status: string }> = [];
  for (let i = 0; i < 4; i++) got.push((await stream.nextAttempt()).attempt);
  // each attempt's changes in its version order; across attempts, on a cluster, the order of
  // publications from different masters is not kept (the cluster bus carries them)
  const byAttempt = (id: string) => got.filter((x) => x.id === id).map((x) => [x.version, x.status]);
  expect(got).toHaveLength(4);
  expect(byAttempt(a.id)).toEqual([
    [a.version, 'started'],
    [a.version + 1, 'in_progress'],
  ]);
  expect(byAttempt(b.id)).toEqual([
    [b.version, 'started'],
    [b.version + 1, 'paused'],
  ]);
  expect(got.every((x) => x.quiz_id === quiz)).toBe(true);
  expect(stream.comments.length).toBeGreaterThan(0);
});

test("a quiz's stream: the client events students' pages report, as `client_event` frames with the attempt and seq", async () => {
  const quiz = `quiz-${randomUUID().slice(0, 8)}`;
  const stream = await connect(api.url, `/api/quizzes/${quiz}/stream`);
  const a = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
  const other = await buildSession(api, { time_limit_seconds: 600 });
  await stream.nextAttempt(); // a's start
  const events = [
    { type: 'connection_lost', client_time: '2026-12-14T09:41:07Z' },
    { type: 'connection_restored', client_time: '2026-12-14T09:41:19Z', data: { offline_ms: 12000 } },
  ];
  // another quiz's client events do not reach this stream
  expect((await request(api.url, 'POST', `/api/sessions/${other.id}/events`, { events: [events[0]] })).status).toBe(202);
  const accepted = await request(api.url, 'POST', `/api/sessions/${a.id}/events`, { events });
  expect(accepted.status).toBe(202);
  const first = await stream.next('client_event');
  const second = await stream.next('client_event');
  const parsed = [JSON.parse(first.data), JSON.parse(second.data)];
  expect(parsed).toEqual([
    expect.objectContaining({ attempt_id: a.id, user_id: a.user_id, type: 'connection_lost', seq: accepted.body.last_seq - 1 }),
    expect.objectContaining({ attempt_id: a.id, type: 'connection_restored', seq: accepted.body.last_seq }),
  ]);
  expect(parsed[1].data).toEqual({ offline_ms: 12000, client_time: '2026-12-14T09:41:19Z' });
  expect(Date.parse(parsed[0].at)).not.toBeNaN();
  expect(first.id).toBeUndefined();
  // nothing else came: the attempt itself did not change
  expect(stream.pending().filter((e) => e.event === 'attempt')).toHaveLength(0);
});

test('MAX_STREAMS bounds the streams of one process: past it 503 retryable; a closed stream frees its place', async () => {
  const small = await startTestApi({ MAX_STREAMS: 2 });
  try {
    const s = await buildSession(small, { time_limit_seconds: 600 });
    const one = await connect(small.url, `/api/sessions/${s.id}/stream`);
    await connect(small.url, `/api/quizzes/q-${randomUUID().slice(0, 8)}/stream`);
    const third = await SseClient.open(`${small.url}/api/sessions/${s.id}/stream`);
    expect(third.status).toBe(503);
    expect(third.client).toBeNull();
    expect('body' in third ? third.body : null).toMatchObject({ errorCode: 'SERVICE_UNAVAILABLE', retryable: true });
    one.close();
    await waitForSize(small, 1);
    await connect(small.url, `/api/sessions/${s.id}/stream`);
  } finally {
    await small.close();
  }
});

async function waitForSize(t: TestApi, n: number): Promise<void> {
  const until = Date.now() + 5000;
  while (t.streams.size !== n) {
    if (Date.now() > until) throw new Error(`streams: ${t.streams.size}, expected ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('shutdown ends every stream cleanly (the server closes without waiting for them)', async () => {
  const other = await startTestApi();
  const s = await buildSession(other, { time_limit_seconds: 600 });
  const stream = await connect(other.url, `/api/sessions/${s.id}/stream`);
  await stream.nextAttempt();
  const started = Date.now();
  await other.close();
  await stream.waitEnded(3000);
  expect(Date.now() - started).toBeLessThan(3000);
});

describe('two API processes', () => {
  let second: ServiceProcess;
  beforeAll(async () => {
    second = await startProcess('api', { ...runStores(), STREAM_TIME_EVENT_SECONDS: 1 });
  }, 30_000);

  test('a write on one process reaches the streams of the other, at once, for the attempt and its quiz', async () => {
    const quiz = `quiz-${randomUUID().slice(0, 8)}`;
    const s = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
    const attemptStream = await connect(second.url!, `/api/sessions/${s.id}/stream`);
    const quizStream = await connect(second.url!, `/api/quizzes/${quiz}/stream`);
    await attemptStream.nextAttempt();
    const before = Date.now();
    expect((await patch(s.id, { question_id: 'q1', answer: 'from process one' })).status).toBe(200);
    const e = await attemptStream.nextAttempt();
    expect(e.attempt).toMatchObject({ version: s.version + 1, answers: { q1: 'from process one' } });
    expect(e.id).toBe(String(s.version + 1));
    expect((await quizStream.nextAttempt()).attempt).toMatchObject({ id: s.id, version: s.version + 1 });
    expect(Date.now() - before).toBeLessThan(2000);

    // and the other way round
    const here = await connect(api.url, `/api/sessions/${s.id}/stream`, { 'last-event-id': String(s.version + 1) });
    expect((await patch(s.id, { question_id: 'q2', answer: 'from process two' }, second.url!)).status).toBe(200);
    expect((await here.nextAttempt()).attempt).toMatchObject({ version: s.version + 2, answers: { q2: 'from process two' } });
  });

  test('SSE reconnect: the process serving a stream is killed; the client reconnects to the other with Last-Event-ID and misses nothing', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 });
    const stream = await connect(second.url!, `/api/sessions/${s.id}/stream`);
    const last = await stream.nextAttempt();
    await second.kill('SIGKILL');
    await stream.waitEnded(5000);
    // written while the client was away
    await patch(s.id, { question_id: 'q1', answer: 'while away' });
    const again = await connect(api.url, `/api/sessions/${s.id}/stream`, { 'last-event-id': last.id! });
    const e = await again.next();
    expect(e.event).toBe('attempt');
    expect(JSON.parse(e.data)).toMatchObject({ version: s.version + 1, answers: { q1: 'while away' } });
    expect((await patch(s.id, { question_id: 'q2', answer: 'after' })).status).toBe(200);
    expect((await again.nextAttempt()).attempt).toMatchObject({ version: s.version + 2 });
  });
});
