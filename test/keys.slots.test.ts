import calculateSlot from 'cluster-key-slot';
import { BUCKET_TAGS, DIRTY_BUCKETS, bucketOf, keyLayout } from '../src/shared/store/keys';
import { attemptChannel, quizBucketChannel, quizFeed } from '../src/shared/store/channels';
import { buildSession, startTestApi, type TestApi } from './support/harness';
import { SseClient } from './support/sse';
import { request } from './support/http';

/*
 * The bucketed key layout (REDIS_KEY_LAYOUT=bucketed, for a Redis Cluster): every script call the
 * service makes touches keys of one hash slot. The API runs a whole attempt's life over HTTP (and
 * the write-behind, a refill, a rebase) on a real Redis, and every EVAL/EVALSHA it sends is checked
 * with cluster-key-slot, Redis Cluster's own slot function.
 */

let api: TestApi;
const calls: Array<{ name: string; keys: string[] }> = [];

beforeAll(async () => {
  api = await startTestApi({ REDIS_KEY_LAYOUT: 'bucketed' });
  const redis = api.redis as unknown as { sendCommand: (command: { name: string; args: unknown[] }, ...rest: unknown[]) => unknown };
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, ...rest) => {
    if (command.name === 'evalsha' || command.name === 'eval' || command.name === 'fcall') {
      const keyCount = Number(command.args[1]);
      calls.push({ name: command.name, keys: command.args.slice(2, 2 + keyCount).map(String) });
    }
    return send(command, ...rest);
  };
});
afterAll(async () => api.close());

test('the layout: keys of an attempt, its dirty set and its channel share its bucket’s slot; buckets spread over the slots', () => {
  expect(keyLayout().name).toBe('bucketed');
  const id = '1b7e4f6a-0c2d-4e8f-9a1b-2c3d4e5f6a7b';
  const slot = calculateSlot(keyLayout().session(id));
  for (const key of [keyLayout().dirtySetOf(id), `${keyLayout().session(id)}:events`, attemptChannel(id)])
    expect(calculateSlot(key)).toBe(slot);
  // the quiz's channel a script publishes on is its bucket's (and a quiz id with braces keeps it there)
  for (const quiz of ['final-exam', 7, 'a{b}c']) expect(calculateSlot(quizBucketChannel(quiz, BUCKET_TAGS[bucketOf(id)]))).toBe(slot);
  expect(quizFeed('final-exam').channels).toHaveLength(DIRTY_BUCKETS);
  expect(keyLayout().idOf(keyLayout().session(id))).toBe(id);
  expect(keyLayout().idOf(`${keyLayout().session(id)}:events`)).toBeNull();
  // the dirty sets land on many slots (so on every master of a cluster), and ids spread over them
  const slots = new Set(
    keyLayout()
      .dirtySets()
      .map((k) => calculateSlot(k)),
  );
  expect(slots.size).toBeGreaterThan(DIRTY_BUCKETS * 0.95);
  const counts = new Map<number, number>();
  for (let i = 0; i < 20_000; i++) {
    const bucket = bucketOf(crypto.randomUUID());
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
  }
  expect(counts.size).toBeGreaterThan(DIRTY_BUCKETS * 0.95);
});

test('every script call of an attempt’s whole life touches keys of one slot', async () => {
  const s = await buildSession(api, { time_limit_seconds: 600 });
  const stream = await SseClient.open(`${api.url}/api/sessions/${s.id}/stream`);
  const patch = (body: unknown, headers: Record<string, string> = {}) =>
    request(api.url, 'PATCH', `/api/sessions/${s.id}/progress`, body, headers);
  expect((await patch({ question_id: 'q1', answer: 'A' })).status).toBe(200);
  expect((await patch({ question_id: 'q2', answer: 'B' }, { 'idempotency-key': 'k-1' })).status).toBe(200);
  expect((await patch({ question_id: 'q2', answer: 'B' }, { 'idempotency-key': 'k-1' })).status).toBe(200);
  expect((await patch({ question_id: 'q3', answer: 'C', version: 1 })).status).toBe(409);
  expect(
    (
      await request(api.url, 'POST', `/api/sessions/${s.id}/events`, {
        events: [{ type: 'page_blurred', client_time: '2026-12-01T10:00:00Z' }],
      })
    ).status,
  ).toBe(202);
  for (const action of ['extend', 'pause', 'resume'])
    expect((await request(api.url, 'POST', `/api/sessions/${s.id}/${action}`, action === 'extend' ? { seconds: 60 } : {})).status).toBe(
      200,
    );
  // a refill from PostgreSQL, then a write on it
  await api.redis.del(keyLayout().session(s.id));
  expect((await request(api.url, 'GET', `/api/sessions/${s.id}`)).status).toBe(200);
  expect((await patch({ question_id: 'q4', answer: 'D' })).status).toBe(200);
  // the write-behind's marks, the rebase, the worker's close
  const stored = (await api.store.get(s.id))!;
  await api.store.markPersistedMany([{ id: s.id, version: stored.attempt.version }], Date.now());
  await api.store.rebase(s.id, stored.attempt.version, stored.attempt.version + 5, Date.now());
  await api.service.close(s.id, { by: 'idle', idleMs: 1 });
  expect((await request(api.url, 'POST', `/api/sessions/${s.id}/complete`, {})).status).toBeLessThan(500);
  stream.client?.close();

  const kinds = new Set(calls.map((c) => c.keys.length));
  expect(calls.length).toBeGreaterThan(12);
  expect(kinds.size).toBeGreaterThan(1); // scripts of 1 to 4 keys were seen
  for (const call of calls) {
    const slots = new Set(call.keys.map((k) => calculateSlot(k)));
    if (slots.size !== 1) throw new Error(`a script call touches ${slots.size} slots: ${call.keys.join(', ')}`);
  }
  // and the slot is the attempt's
  for (const call of calls.filter((c) => c.keys.some((k) => k.includes(s.id))))
    expect(calculateSlot(call.keys[0])).toBe(calculateSlot(keyLayout().session(s.id)));
});
