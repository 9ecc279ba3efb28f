import { randomUUID } from 'node:crypto';
import {
  MemoryStateStore,
  ProctorClient,
  SessionClient,
  type Fetch,
  type SessionClientOptions,
  type StreamClientEvent,
} from '../src/client';
import { startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * The client library against the real service (the in-process API over the test Redis and
 * PostgreSQL): two devices on one attempt, a lost connection, the proctor's controls reaching the
 * student's client through the stream, the clock, and the proctor's live view.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ STREAM_TIME_EVENT_SECONDS: 1 });
});
afterAll(async () => {
  stopAll();
  await api.close();
});
const running: Array<{ stop(): void }> = [];
const stopAll = () => running.splice(0).forEach((c) => c.stop());
afterEach(stopAll);

function student(options: SessionClientOptions = {}): SessionClient {
  const c = new SessionClient({ baseUrl: api.url, debounceMs: 5, retryMs: 50, maxRetryMs: 200, ...options });
  running.push(c);
  return c;
}

function proctor(quiz: string): ProctorClient {
  const p = new ProctorClient(quiz, { baseUrl: api.url });
  running.push(p);
  return p;
}

/** A fetch with a switch: while `down`, every request fails as with no network. */
function switchableFetch(): { fetch: Fetch; down: boolean } {
  const net = {
    down: false,
    fetch: ((input: string | URL | Request, init?: RequestInit) => {
      if (net.down) return Promise.reject(new TypeError('fetch failed'));
      return fetch(input, init);
    }) as Fetch,
  };
  return net;
}

const quiz = () => `quiz-${randomUUID().slice(0, 8)}`;

test("two devices write at once: each one's answers are kept, the stale one merged after a 409", async () => {
  const q = quiz();
  const user = api.userId();
  // the phone follows no stream, so its version goes stale: its writes meet 409s
  const laptop = student();
  const phone = student({ follow: false });
  const a = await laptop.start({ quizId: q, userId: user });
  const b = await phone.start({ quizId: q, userId: user });
  expect(b.id).toBe(a.id);

  await laptop.save({ q1: 'from the laptop' });
  const merged = phone.once('conflict-merged');
  const saved = await phone.save({ q2: 'from the phone' });
  const conflict = await merged;
  expect(conflict.remote).toEqual(['q1']);
  expect(conflict.resent).toEqual(['q2']);
  expect(saved?.answers).toEqual({ q1: 'from the laptop', q2: 'from the phone' });
  // the laptop hears the phone's answer on its stream
  await laptop.once('change', ({ attempt }) => attempt.answers.q2 === 'from the phone');
  expect(laptop.answers()).toEqual({ q1: 'from the laptop', q2: 'from the phone' });
  const stored = (await request(api.url, 'GET', `/api/sessions/${a.id}`)).body;
  expect(stored.answers).toEqual({ q1: 'from the laptop', q2: 'from the phone' });

  // the event log has the refused write and the merged one
  const events = (await request(api.url, 'GET', `/api/sessions/${a.id}/events`)).body.events as Array<{
    type: string;
    data: Record<string, unknown>;
  }>;
  expect(events.filter((e) => e.type === 'write_rejected').map((e) => e.data.error_code)).toEqual(['SESSION_CONFLICT']);
  expect(events.filter((e) => e.type === 'answer_saved').map((e) => e.data.answers)).toEqual([
    { q1: 'from the laptop' },
    { q2: 'from the phone' },
  ]);
});

test('the connection drops: answers are kept (offline) and saved when it returns, once', async () => {
  const net = switchableFetch();
  const store = new MemoryStateStore();
  const c = student({ fetch: net.fetch, store, retryMs: 60_000, maxRetryMs: 60_000 });
  const a = await c.start({ quizId: quiz(), userId: api.userId() });
  net.down = true;
  const offline = c.once('offline');
  const saving = c.save({ q1: 'Paris', q2: '6' });
  await offline;
  await c.flush();
  expect(c.state).toBe('offline');
  expect((await request(api.url, 'GET', `/api/sessions/${a.id}`)).body.answers).toEqual({});

  net.down = false;
  c.reconnect();
  const done = await saving;
  expect(done?.answers).toEqual({ q1: 'Paris', q2: '6' });
  expect(c.state).toBe('saved');
  const stored = (await request(api.url, 'GET', `/api/sessions/${a.id}`)).body;
  expect(stored).toMatchObject({ answers: { q1: 'Paris', q2: '6' }, version: a.version + 1 });
});

test('a write whose answer was lost on the way back is sent again with its Idempotency-Key: applied once', async () => {
  let loseNext = false;
  const lossy = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await fetch(input, init);
    if (loseNext && String(input).endsWith('/progress')) {
      loseNext = false;
      await res.text();
      throw new TypeError('fetch failed: the connection dropped');
    }
    return res;
  }) as Fetch;
  const c = student({ fetch: lossy, follow: false });
  const a = await c.start({ quizId: quiz(), userId: api.userId() });
  loseNext = true;
  const saved = await c.save({ q1: 'once' });
  expect(saved?.version).toBe(a.version + 1);
  const stored = (await request(api.url, 'GET', `/api/sessions/${a.id}`)).body;
  expect(stored.version).toBe(a.version + 1);
  const events = (await request(api.url, 'GET', `/api/sessions/${a.id}/events`)).body.events as Array<{ type: string }>;
  expect(events.filter((e) => e.type === 'answer_saved')).toHaveLength(1);
});

test("the proctor's controls reach the student's client: paused (writes wait), extended, resumed; complete closes", async () => {
  const q = quiz();
  const c = student();
  const a = await c.start({ quizId: q, userId: api.userId() });
  await c.once('time');
  const p = proctor(q);

  const paused = c.once('paused');
  await p.pause(a.id, 'medical break');
  await paused;
  const saving = c.save({ q1: 'typed during the pause' });
  await c.flush();
  expect(c.state).toBe('unsaved');

  const before = c.timeRemaining()!;
  const extended = c.once('extended');
  await p.extend(a.id, { seconds: 300, reason: 'fire alarm' });
  expect((await extended).seconds).toBe(300);
  expect(c.timeRemaining()!).toBeGreaterThanOrEqual(before + 299);

  await p.resume(a.id);
  expect((await saving)?.answers).toEqual({ q1: 'typed during the pause' });

  const closed = c.once('closed');
  const completed = await c.complete();
  expect(completed).toMatchObject({ status: 'completed', submitted_by: 'student', answers: { q1: 'typed during the pause' } });
  expect((await closed).unsaved).toEqual([]);
});

test("the stream's time events set the client's clock (same machine: within a second of the local one)", async () => {
  const c = student();
  await c.start({ quizId: quiz(), userId: api.userId() });
  await c.once('time');
  await c.once('time'); // the second comes STREAM_TIME_EVENT_SECONDS later
  expect(c.clock.synced).toBe(true);
  expect(Math.abs(c.clock.offsetMs)).toBeLessThan(1000);
  const left = c.timeRemaining()!;
  expect(left).toBeGreaterThan(1790);
  expect(left).toBeLessThanOrEqual(1800);
});

test("ProctorClient: the quiz's attempts (listing, then live), a new attempt, and the students' client events", async () => {
  const q = quiz();
  const first = student();
  const a = await first.start({ quizId: q, userId: api.userId() });
  const p = proctor(q);
  const seen = new Map<string, number>();
  p.on('attempt', ({ attempt }) => seen.set(attempt.id, Math.max(seen.get(attempt.id) ?? 0, attempt.version)));
  const listed = await p.watch();
  expect(listed.map((x) => x.id)).toEqual([a.id]);

  const clientEvent = p.once('client-event', ({ event }) => event.type === 'page_blurred');
  const second = student();
  const newcomer = p.once('attempt', ({ attempt }) => attempt.id !== a.id);
  const b = await second.start({ quizId: q, userId: api.userId() });
  expect((await newcomer).attempt.id).toBe(b.id);
  second.note('page_blurred');
  const event: StreamClientEvent = (await clientEvent).event;
  expect(event).toMatchObject({ attempt_id: b.id, type: 'page_blurred' });

  const all = await p.extendAll([a.id, b.id], { seconds: 120, reason: 'fire alarm' });
  expect(all.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
  const log = await p.events(a.id);
  expect(log.map((e) => e.type)).toContain('extended');
});
