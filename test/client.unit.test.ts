import {
  MemoryStateStore,
  ServerClock,
  SessionClient,
  SseParser,
  WebStateStore,
  formatRemaining,
  type SaveState,
  type SessionClientOptions,
  type WebStorage,
} from '../src/client';
import { FakeSessionApi } from './support/fakeSessionApi';

/*
 * The client library over a fake of the API's HTTP surface (test/support/fakeSessionApi.ts): the
 * save loop, the merge on 409, idempotency keys on retries, the kept answers, the stream's events
 * and the clock. The same behaviours against the real service: test/client.integration.test.ts.
 */

const clients: SessionClient[] = [];
afterEach(() => clients.splice(0).forEach((c) => c.stop()));

function client(fake: FakeSessionApi, options: SessionClientOptions = {}): SessionClient {
  const c = new SessionClient({ fetch: fake.fetch, debounceMs: 5, retryMs: 20, maxRetryMs: 50, ...options });
  clients.push(c);
  return c;
}

/** Every save state a client goes through, in order. */
function states(c: SessionClient): SaveState[] {
  const seen: SaveState[] = [];
  c.on('state', ({ state }) => seen.push(state));
  return seen;
}

describe('SessionClient over a fake API', () => {
  test('save sends the version it has and an Idempotency-Key; unsaved, saving, saved; resolves with the attempt', async () => {
    const fake = new FakeSessionApi();
    const c = client(fake, { follow: false });
    const started = await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    expect(started.version).toBe(1);
    const seen = states(c);
    const saved = c.once('saved');
    const result = await c.save({ q1: 'Paris' });
    expect(result?.answers).toEqual({ q1: 'Paris' });
    expect((await saved).attempt.version).toBe(2);
    const [write] = fake.requests('/progress', 'PATCH');
    expect(write.body).toEqual({ answers: { q1: 'Paris' }, version: 1 });
    expect(write.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen).toEqual(['unsaved', 'saving', 'saved']);
    expect(c.state).toBe('saved');
    // the start carried a key too
    expect(fake.requests('/start')[0].headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('answers typed in quick succession go as one write (debounced), each key once', async () => {
    const fake = new FakeSessionApi();
    const c = client(fake, { follow: false, debounceMs: 30 });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    const all = Promise.all([c.save({ q1: 'P' }), c.save({ q1: 'Pa' }), c.save({ q1: 'Paris', q2: '6' })]);
    await all;
    const writes = fake.requests('/progress', 'PATCH');
    expect(writes).toHaveLength(1);
    expect(writes[0].body).toEqual({ answers: { q1: 'Paris', q2: '6' }, version: 1 });
  });

  test('a save made while the client events are on their way is sent right after them', async () => {
    const fake = new FakeSessionApi();
    const c = client(fake, { follow: false });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    let release!: () => void;
    fake.holdEvents = new Promise((resolve) => (release = resolve));
    c.note('page_blurred');
    // the events are on their way (held) when the answer is given
    while (fake.requests('/events', 'POST').length === 0) await new Promise((resolve) => setImmediate(resolve));
    const saving = c.save({ q1: 'Paris' });
    await new Promise((resolve) => setTimeout(resolve, 20)); // the save's debounce (5 ms) runs out meanwhile
    expect(fake.requests('/progress', 'PATCH')).toHaveLength(0);
    release();
    expect((await saving)?.answers).toEqual({ q1: 'Paris' });
  });

  test("a 409 merges only this client's unsaved answers into the returned attempt and retries with its version, under a new key", async () => {
    const fake = new FakeSessionApi();
    const c = client(fake, { follow: false });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    await c.save({ q1: 'mine' });
    // another device writes q2 and q1's neighbour q3; this client still has version 2
    fake.change({ answers: { q2: 'theirs', q3: 'theirs too' } });
    const merged = c.once('conflict-merged');
    const result = await c.save({ q4: 'mine again' });
    const event = await merged;
    expect(event.remote.sort()).toEqual(['q2', 'q3']);
    expect(event.resent).toEqual(['q4']);
    const writes = fake.requests('/progress', 'PATCH');
    expect(writes.map((w) => w.body)).toEqual([
      { answers: { q1: 'mine' }, version: 1 },
      { answers: { q4: 'mine again' }, version: 2 },
      { answers: { q4: 'mine again' }, version: 3 },
    ]);
    expect(writes[2].headers['idempotency-key']).not.toBe(writes[1].headers['idempotency-key']);
    // nothing of the other device's was overwritten
    expect(result?.answers).toEqual({ q1: 'mine', q2: 'theirs', q3: 'theirs too', q4: 'mine again' });
    expect(c.answers()).toEqual(result?.answers);
  });

  test('a write whose response was lost is retried with the same key and body: applied once', async () => {
    const fake = new FakeSessionApi();
    const c = client(fake, { follow: false });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    fake.loseNextResponse = true;
    const offline = c.once('offline');
    const result = await c.save({ q1: 'Paris' });
    await offline;
    const writes = fake.requests('/progress', 'PATCH');
    expect(writes).toHaveLength(2);
    expect(writes[1].headers['idempotency-key']).toBe(writes[0].headers['idempotency-key']);
    expect(writes[1].body).toEqual(writes[0].body);
    // the kept first answer: version 2, not 3
    expect(result?.version).toBe(2);
    expect(fake.attempt!.version).toBe(2);
  });

  test('offline: the answers are kept in the store, the state is offline, and they are sent when the connection returns', async () => {
    const fake = new FakeSessionApi();
    const store = new MemoryStateStore();
    const c = client(fake, { follow: false, store, retryMs: 10_000, maxRetryMs: 10_000 });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    fake.offline = true;
    const offline = c.once('offline');
    const saved = c.save({ q1: 'Paris' });
    await offline;
    await c.flush();
    expect(c.state).toBe('offline');
    expect(store.load('quiz-1|u-1')?.sending?.answers).toEqual({ q1: 'Paris' });
    expect(fake.attempt!.answers).toEqual({});

    fake.offline = false;
    const online = c.once('online');
    c.reconnect(); // what the browser's online event does
    await online;
    expect((await saved)?.answers).toEqual({ q1: 'Paris' });
    expect(c.state).toBe('saved');
    expect(store.load('quiz-1|u-1')?.sending).toBeNull();
    // the connection's loss and return were reported as client events
    const notes = fake.requests('/events', 'POST').flatMap((r) => (r.body!.events as Array<{ type: string }>).map((e) => e.type));
    expect(notes).toEqual(expect.arrayContaining(['connection_lost', 'connection_restored']));
  });

  test('offline with nothing to send: the retry timer finds the connection back by itself', async () => {
    const fake = new FakeSessionApi();
    const c = client(fake, { follow: false });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    fake.offline = true;
    const saving = c.save({ q2: '6' });
    await c.once('offline');
    fake.offline = false;
    expect((await saving)?.answers).toEqual({ q2: '6' });
  });

  test('a closed tab loses nothing: a new client with the same store sends the kept write with its key, then the rest', async () => {
    const fake = new FakeSessionApi();
    const store = new MemoryStateStore();
    const first = client(fake, { follow: false, store, retryMs: 10_000 });
    await first.start({ quizId: 'quiz-1', userId: 'u-1' });
    fake.offline = true;
    void first.save({ q1: 'Paris' });
    await first.once('offline');
    void first.save({ q2: '6' });
    await first.flush();
    first.stop(); // the tab is closed
    const kept = store.load('quiz-1|u-1')!;
    expect(kept.sending?.answers).toEqual({ q1: 'Paris' });
    expect(kept.pending).toEqual({ q2: '6' });

    fake.offline = false;
    const second = client(fake, { follow: false, store });
    await second.start({ quizId: 'quiz-1', userId: 'u-1' });
    expect(second.answers()).toEqual({ q1: 'Paris', q2: '6' });
    await second.flush();
    await second.flush();
    expect(fake.attempt!.answers).toEqual({ q1: 'Paris', q2: '6' });
    const writes = fake.requests('/progress', 'PATCH');
    expect(writes[writes.length - 2].headers['idempotency-key']).toBe(kept.sending!.key);
    expect(second.state).toBe('saved');
  });

  test('offline at start with something kept: the kept attempt is shown and the start is retried', async () => {
    const fake = new FakeSessionApi();
    const store = new MemoryStateStore();
    const first = client(fake, { follow: false, store });
    await first.start({ quizId: 'quiz-1', userId: 'u-1' });
    await first.save({ q1: 'Paris' });
    first.stop();
    fake.offline = true;
    const second = client(fake, { follow: false, store });
    const shown = await second.start({ quizId: 'quiz-1', userId: 'u-1' });
    expect(shown.answers).toEqual({ q1: 'Paris' });
    expect(second.state).toBe('offline');
    void second.save({ q3: 'CO2' });
    fake.offline = false;
    await second.once('saved');
    expect(fake.attempt!.answers).toEqual({ q1: 'Paris', q3: 'CO2' });
  });

  test('offline at start with nothing kept: start throws NetworkError', async () => {
    const fake = new FakeSessionApi();
    fake.offline = true;
    await expect(client(fake, { follow: false }).start({ quizId: 'quiz-1', userId: 'u-1' })).rejects.toThrow(/network/);
  });

  test('the stream: changes from elsewhere are adopted; paused holds the writes until resumed; extended; closed', async () => {
    const fake = new FakeSessionApi();
    const c = client(fake);
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    await c.once('time');
    expect(fake.streams[0].lastEventId).toBe('1');

    const paused = c.once('paused');
    fake.change({ status: 'paused', paused_at: new Date().toISOString() });
    await paused;
    const saving = c.save({ q1: 'during the pause' });
    await c.flush();
    expect(c.state).toBe('unsaved');
    expect(fake.attempt!.answers).toEqual({});

    const extended = c.once('extended');
    const resumed = c.once('resumed');
    fake.change({ status: 'in_progress', paused_at: null, extra_time_seconds: 300 });
    expect((await extended).seconds).toBe(300);
    await resumed;
    expect((await saving)?.answers).toEqual({ q1: 'during the pause' });

    const closed = c.once('closed');
    await c.complete();
    expect((await closed).attempt.status).toBe('completed');
    expect(await c.save({ q2: 'too late' })).toBeNull();
  });

  test('a write refused with 423 (paused between two stream events) waits, then goes once resumed', async () => {
    const fake = new FakeSessionApi();
    const c = client(fake, { follow: false });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    fake.attempt = { ...fake.attempt!, status: 'paused', version: 2 };
    const paused = c.once('paused');
    const saving = c.save({ q1: 'Paris' });
    await paused;
    expect(c.state).toBe('unsaved');
    fake.attempt = { ...fake.attempt!, status: 'in_progress', version: 3 };
    // the resume reaches this client (it follows no stream here): through a read
    await c.resume(fake.attempt.id);
    expect((await saving)?.answers).toEqual({ q1: 'Paris' });
    const writes = fake.requests('/progress', 'PATCH');
    expect(writes[1].headers['idempotency-key']).not.toBe(writes[0].headers['idempotency-key']); // the 423 was kept under the first
  });

  test("time events correct the clock: the time left is counted from the server's clock, not the local one", async () => {
    let local = 1_000_000;
    const fake = new FakeSessionApi({ now: () => local + 90_000 }); // the server's clock is 90 s ahead
    const c = client(fake, { now: () => local });
    await c.start({ quizId: 'quiz-1', userId: 'u-1' });
    await c.once('time');
    expect(c.clock.offsetMs).toBe(90_000);
    // the deadline is 30 min after the server's start: 30 min left by the server's clock
    expect(c.timeRemaining()).toBe(1800);
    local += 60_000;
    expect(c.timeRemaining()).toBe(1740);
  });
});

describe('the pieces', () => {
  test('SseParser: events, ids, multi-line data, comments, retry and CRLF, across chunk boundaries', () => {
    const p = new SseParser();
    const out = [
      ...p.push('retry: 2000\n\n: a comment\n\nevent: attempt\nid: 3\ndata: {"a":'),
      ...p.push('1}\n\nevent: time\r\ndata: line one\r\ndata: line two\r\n\r\n'),
      ...p.push('data: plain\n'),
    ];
    expect(out).toEqual([
      { event: 'attempt', id: '3', data: '{"a":1}' },
      { event: 'time', id: undefined, data: 'line one\nline two' },
    ]);
    expect(p.retryMs).toBe(2000);
    expect(p.lastEventId).toBe('3');
    expect(p.push('\n')).toEqual([{ event: 'message', id: undefined, data: 'plain' }]);
  });

  test('ServerClock: the largest offset of the last samples (the least delayed), forgetting old ones', () => {
    let local = 10_000;
    const clock = new ServerClock(() => local);
    expect(clock.synced).toBe(false);
    clock.observe(new Date(15_000).toISOString(), 10_400); // 4.6 s ahead, seen 400 ms late
    clock.observe(new Date(15_000).toISOString(), 10_050); // the same, seen 50 ms late
    expect(clock.offsetMs).toBe(4_950);
    local = 20_000;
    expect(clock.now()).toBe(24_950);
    for (let i = 0; i < 8; i++) clock.observe(new Date(20_000).toISOString(), 20_000);
    expect(clock.offsetMs).toBe(0);
    clock.observe('not a time');
    expect(clock.offsetMs).toBe(0);
  });

  test('formatRemaining: m:ss under an hour, h:mm:ss from an hour; never negative', () => {
    expect(formatRemaining(0)).toBe('0:00');
    expect(formatRemaining(59.9)).toBe('0:59');
    expect(formatRemaining(1800)).toBe('30:00');
    expect(formatRemaining(3599)).toBe('59:59');
    expect(formatRemaining(3600)).toBe('1:00:00');
    expect(formatRemaining(7325)).toBe('2:02:05');
    expect(formatRemaining(-5)).toBe('0:00');
  });

  test('WebStateStore: keeps and restores a state; unreadable content or a full storage is no crash', () => {
    const map = new Map<string, string>();
    const storage: WebStorage = {
      getItem: (k) => map.get(k) ?? null,
      setItem: (k, v) => void map.set(k, v),
      removeItem: (k) => void map.delete(k),
    };
    const store = new WebStateStore(storage);
    const fake = new FakeSessionApi();
    const attempt = fake.newAttempt('q', 'u');
    store.save('q|u', { attemptId: attempt.id, attempt, sending: null, pending: { q1: 'x' }, notes: [] });
    expect(store.load('q|u')?.pending).toEqual({ q1: 'x' });
    map.set('quiz-session:bad', '{not json');
    expect(store.load('bad')).toBeNull();
    map.set('quiz-session:other', '{"something":"else"}');
    expect(store.load('other')).toBeNull();
    const full = new WebStateStore({
      ...storage,
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    });
    expect(() => full.save('q|u', { attemptId: attempt.id, attempt, sending: null, pending: {}, notes: [] })).not.toThrow();
    store.remove('q|u');
    expect(store.load('q|u')).toBeNull();
  });
});
