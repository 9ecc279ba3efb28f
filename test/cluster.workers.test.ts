import { randomUUID } from 'node:crypto';
import { createKnex } from '../src/shared/db/knex';
import { loadConfig } from '../src/shared/config';
import { dirtySetOf, sessionKey } from '../src/shared/store/keys';
import { createRequestRedis } from '../src/shared/redis';
import { SessionStore } from '../src/shared/store/sessionStore';
import { waitFor } from './support/harness';
import { killAllProcesses, runStores, startProcess, type ServiceProcess } from './support/processes';
import { request } from './support/http';

/*
 * The workers on the run's Redis (in `npm run test:cluster`, the local 3-master Redis Cluster in
 * the bucketed layout; in `npm test`, one Redis): an API process, a persist worker and a lifecycle
 * worker as real processes. The write-behind reaches PostgreSQL through the sharded dirty index,
 * the expiry job closes an attempt at its deadline, the sweep persists an attempt whose job was
 * lost, and /ready checks every master. On one Redis the workers' own tests (workers.*.test.ts,
 * on stores of their own) cover this: here the workers would sweep the whole shared run, so the
 * file runs only in `npm run test:cluster` (serially there).
 */

const onCluster = process.env.REDIS_CLUSTER_NODES !== undefined;
const describeOnCluster = onCluster ? describe : describe.skip;

const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
// made only where the tests run (on one Redis they are skipped and open nothing)
const knex = onCluster ? createKnex(config) : (null as never);
const redis = onCluster ? createRequestRedis(config, 'cluster-workers-test') : (null as never);
const prefix = `clw-${randomUUID().slice(0, 8)}`;
let api: ServiceProcess;

describeOnCluster('workers on the run’s Redis Cluster', () => {
  beforeAll(async () => {
    const env = { ...runStores(), PERSIST_DELAY_SECONDS: 1, SWEEP_INTERVAL_SECONDS: 1 };
    [api] = await Promise.all([startProcess('api', env), startProcess('persist-worker', env), startProcess('lifecycle-worker', env)]);
  }, 60_000);

  afterAll(async () => {
    await killAllProcesses();
    const rows: Array<{ id: string }> = await knex('quiz_sessions').select('id').where('user_id', 'like', `${prefix}%`);
    for (const { id } of rows) {
      await redis.del(sessionKey(id));
      await redis.zrem(dirtySetOf(id), id);
    }
    if (rows.length)
      await knex('attempt_events')
        .whereIn(
          'attempt_id',
          rows.map((r) => r.id),
        )
        .delete();
    await knex('quiz_sessions').where('user_id', 'like', `${prefix}%`).delete();
    await knex.destroy();
    redis.disconnect();
  }, 30_000);

  const start = async (timeLimit: number) => {
    const res = await request(api.url!, 'POST', '/api/sessions/start', {
      user_id: `${prefix}-${randomUUID().slice(0, 6)}`,
      quiz_id: `quiz-${randomUUID().slice(0, 6)}`,
      time_limit_seconds: timeLimit,
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; version: number };
  };
  const row = (id: string) => knex('quiz_sessions').where({ id }).first();

  test('/ready checks Redis (every master of a cluster) and PostgreSQL', async () => {
    const res = await request(api.url!, 'GET', '/ready');
    expect(res.status).toBe(200);
    expect(res.body.checks).toEqual({ redis: 'up', postgres: 'up' });
  });

  test('progress reaches PostgreSQL through the write-behind, with its events', async () => {
    const s = await start(600);
    for (const answer of ['A', 'B', 'C'])
      expect((await request(api.url!, 'PATCH', `/api/sessions/${s.id}/progress`, { question_id: 'q1', answer })).status).toBe(200);
    await waitFor('the row at version 4', async () => (await row(s.id))?.version === s.version + 3, 15_000);
    expect((await row(s.id)).answers).toMatchObject({ q1: 'C' });
    await waitFor(
      'the events in PostgreSQL',
      async () => Number((await knex('attempt_events').where({ attempt_id: s.id }).count())[0].count) >= 4,
      10_000,
    );
    await waitFor('the attempt clean', async () => (await redis.zscore(dirtySetOf(s.id), s.id)) === null, 10_000);
  });

  test('the expiry job closes an attempt at its deadline, durably', async () => {
    const s = await start(2);
    await waitFor('the row expired', async () => (await row(s.id))?.status === 'expired', 15_000);
  });

  test('the sweep persists an attempt whose persist job was never enqueued (only the dirty index knows)', async () => {
    const s = await start(600);
    // a write straight through the store: the service's hooks (which enqueue the job) are not run
    const store = new SessionStore(redis, config.SESSION_CACHE_TTL_SECONDS);
    const written = await store.progress(s.id, Date.now(), { answers: new Map([['q1', '"swept"']]), maxAnswers: 500 });
    expect(written.code).toBe('OK');
    expect(await redis.zscore(dirtySetOf(s.id), s.id)).not.toBeNull();
    // the sweep persists what has stayed dirty longer than the window (1 s here)
    await waitFor('the row written', async () => (await row(s.id))?.version === s.version + 1, 15_000);
    expect((await row(s.id)).answers).toMatchObject({ q1: 'swept' });
  });
});
