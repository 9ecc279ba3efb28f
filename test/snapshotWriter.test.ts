import { sessionKey } from '../src/shared/store/keys';
import { writeSnapshots } from '../src/shared/store/snapshotWriter';
import { buildSession, sessionRow, startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * Redis can come back from an older state (a host crash with AOF everysec loses up to a second)
 * and hand out again versions PostgreSQL already holds. The snapshot writer notices the row is
 * "ahead" with other content, moves the Redis copy above it, and writes it.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api.close());

const progress = (id: string, answer: string) => request(api.url, 'PATCH', `/api/sessions/${id}/progress`, { question_id: 'q1', answer });

test('a version PostgreSQL already holds with other content is rebased above it and written', async () => {
  const s = await buildSession(api);
  const v1 = (await api.store.get(s.id))!.attempt;
  expect((await progress(s.id, 'before the crash')).status).toBe(200);
  await writeSnapshots(api.store, api.repo, [(await api.store.get(s.id))!.attempt]);
  expect(await sessionRow(api, s.id)).toMatchObject({ version: 2, answers: { q1: 'before the crash' } });

  // Redis restored from before that write: it hands out version 2 again, with other content
  await api.redis.del(sessionKey(s.id));
  await api.store.fill(v1);
  const again = await progress(s.id, 'after the restart');
  expect(again.body.version).toBe(2);

  const held = await writeSnapshots(api.store, api.repo, [(await api.store.get(s.id))!.attempt]);
  expect(held.get(s.id)).toMatchObject({ wrote: true, attempt: { version: 3 } });
  expect(await sessionRow(api, s.id)).toMatchObject({ version: 3, answers: { q1: 'after the restart' } });
  expect((await api.store.get(s.id))!.attempt.version).toBe(3);
});

test('a replayed snapshot (same version, same content) is left alone and not rebased', async () => {
  const s = await buildSession(api);
  expect((await progress(s.id, 'once')).status).toBe(200);
  const snapshot = (await api.store.get(s.id))!.attempt;
  await writeSnapshots(api.store, api.repo, [snapshot]);
  const replay = await writeSnapshots(api.store, api.repo, [snapshot]);
  expect(replay.get(s.id)).toMatchObject({ wrote: false, attempt: { version: 2 } });
  expect((await api.store.get(s.id))!.attempt.version).toBe(2);
  expect(await sessionRow(api, s.id)).toMatchObject({ version: 2, persist_count: 2 });
});

test('complete after a Redis regression is durable: the completed attempt is what PostgreSQL holds', async () => {
  const s = await buildSession(api);
  const v1 = (await api.store.get(s.id))!.attempt;
  expect((await progress(s.id, 'lost')).status).toBe(200);
  await writeSnapshots(api.store, api.repo, [(await api.store.get(s.id))!.attempt]);
  await api.redis.del(sessionKey(s.id));
  await api.store.fill(v1);
  // version 2 again (a different write), then complete: version 3 in Redis, which PostgreSQL would see as newer anyway;
  // regress twice so complete lands on a version PostgreSQL holds
  expect((await progress(s.id, 'kept')).status).toBe(200);
  const done = await request(api.url, 'POST', `/api/sessions/${s.id}/complete`);
  expect(done.status).toBe(200);
  const row = await sessionRow(api, s.id);
  expect(row).toMatchObject({ status: 'completed', version: done.body.version, answers: { q1: 'kept' } });
});
