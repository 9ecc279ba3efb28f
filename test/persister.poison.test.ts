import { createLogger } from '../src/shared/logger';
import { SnapshotPersister } from '../src/workers/persister';
import { buildSession, sessionRow, startTestApi, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * A row PostgreSQL refuses (here: answer text with a lone surrogate escape, which jsonb rejects and
 * which the API no longer accepts, but which an older release could have stored in Redis) must not
 * hold back the other attempts written in the same batch.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api.close());

test('one attempt PostgreSQL refuses fails alone; the rest of its batch is written', async () => {
  const good = await buildSession(api);
  const poison = await buildSession(api);
  const written = await request(api.url, 'PATCH', `/api/sessions/${good.id}/progress`, { question_id: 'q1', answer: 'fine' });
  expect(written.status).toBe(200);
  const stored = (await api.store.get(poison.id))!.attempt;
  await api.store.fill({ ...stored, version: stored.version + 1, answers: new Map([['q1', '"\\ud800"']]) }, Date.now());

  const persister = new SnapshotPersister(api.store, api.repo, createLogger('silent'));
  const outcomes = await persister.write([good.id, poison.id]);

  expect(outcomes.get(good.id)).toBe('written');
  expect(outcomes.get(poison.id)).toBeInstanceOf(Error);
  expect(await sessionRow(api, good.id)).toMatchObject({ version: 2, answers: { q1: 'fine' } });
  expect(await sessionRow(api, poison.id)).toMatchObject({ version: 1 });
  // the refused attempt stays dirty (the sweep retries it); the written one is clean
  expect((await api.store.get(poison.id))!.dirtySince).not.toBeNull();
  expect((await api.store.get(good.id))!.dirtySince).toBeNull();

  // a job waiting on the refused attempt fails; one on the good attempt completes
  await expect(persister.persist(poison.id)).rejects.toThrow(/json/i);
  await expect(persister.persist(good.id)).resolves.toBe('current');
});
