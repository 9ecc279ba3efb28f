import { QUEUES, shardOf } from '../src/shared/queues/jobs';
import { shardPrefix } from '../src/shared/queues/queue';
import { waitFor } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { AttemptClient, rowOf } from './support/workerScenario';

/*
 * QUEUE_SHARDS: each job type spread over that many BullMQ queues, each with its own prefix; an
 * attempt's jobs always on the shard of its bucket; workers consume every shard (or those of
 * QUEUE_SHARDS_CONSUMED). Real API and worker processes over the file's own stores.
 */

const stores = useIsolatedStores({ resetAfterEach: true });
const SHARDS = 3;

/** The shards holding a job of `queue` for these attempts, by the keys in Redis. */
async function shardsWithJobs(queue: string, ids: readonly string[]): Promise<Set<number>> {
  const found = new Set<number>();
  const config = { QUEUE_PREFIX: stores().queuePrefix, QUEUE_SHARDS: SHARDS };
  for (const id of ids) {
    for (let k = 0; k < SHARDS; k++) {
      const keys = await stores().redis.keys(`${shardPrefix(config, k)}:${queue}:*${id}*`);
      if (keys.length) {
        expect(k).toBe(shardOf(id, SHARDS)); // one attempt's jobs: its own shard only
        found.add(k);
      }
    }
  }
  return found;
}

test('jobs spread over the shards by attempt, every shard is consumed: the write-behind and expiry happen', async () => {
  const env = { ...stores().env, QUEUE_SHARDS: SHARDS, PERSIST_DELAY_SECONDS: 1 };
  const [api] = await Promise.all([startProcess('api', env), startProcess('persist-worker', env), startProcess('lifecycle-worker', env)]);
  const client = new AttemptClient(api.url!);
  const attempts = await Promise.all(Array.from({ length: 12 }, () => client.start(2)));
  const ids = attempts.map((a) => a.id);
  for (const a of attempts) await client.progress(a.id, { q1: `answer of ${a.id}` });
  // every attempt persisted (its persist job ran on its shard), then expired (its expiry job too)
  await waitFor(
    'every attempt expired in PostgreSQL',
    async () => {
      const rows = await Promise.all(ids.map((id) => rowOf(stores().knex, id)));
      return rows.every((r) => r?.status === 'expired');
    },
    20_000,
  );
  for (const a of attempts) expect((await rowOf(stores().knex, a.id))!.answers).toEqual({ q1: `answer of ${a.id}` });
  // the write-behind's jobs are shared by the attempts of a shard (persist-window): one shard's each
  const persistShards = new Set<number>();
  const config = { QUEUE_PREFIX: stores().queuePrefix, QUEUE_SHARDS: SHARDS };
  for (let k = 0; k < SHARDS; k++) {
    if ((await stores().redis.keys(`${shardPrefix(config, k)}:${QUEUES.persist}:persist-window-${k}-*`)).length) persistShards.add(k);
    expect(await stores().redis.keys(`${shardPrefix(config, k)}:${QUEUES.persist}:persist-window-*`)).toEqual(
      await stores().redis.keys(`${shardPrefix(config, k)}:${QUEUES.persist}:persist-window-${k}-*`),
    );
  }
  expect(persistShards.size).toBeGreaterThan(1);
  await shardsWithJobs(QUEUES.lifecycle, ids);
}, 60_000);

test('QUEUE_SHARDS_CONSUMED: a worker takes only its shards; the others wait for theirs', async () => {
  const env = { ...stores().env, QUEUE_SHARDS: SHARDS, PERSIST_DELAY_SECONDS: 1 };
  const [api] = await Promise.all([startProcess('api', env), startProcess('persist-worker', { ...env, QUEUE_SHARDS_CONSUMED: '0' })]);
  const client = new AttemptClient(api.url!);
  const attempts = await Promise.all(Array.from({ length: 12 }, () => client.start(600)));
  for (const a of attempts) await client.progress(a.id, { q1: 'A' });
  const onZero = attempts.filter((a) => shardOf(a.id, SHARDS) === 0);
  const elsewhere = attempts.filter((a) => shardOf(a.id, SHARDS) !== 0);
  expect(onZero.length).toBeGreaterThan(0);
  expect(elsewhere.length).toBeGreaterThan(0);
  await waitFor(
    'shard 0 persisted',
    async () => (await Promise.all(onZero.map((a) => rowOf(stores().knex, a.id)))).every((r) => r?.version === 2),
    15_000,
  );
  // the other shards' jobs are still waiting: nobody consumes them
  for (const a of elsewhere) expect((await rowOf(stores().knex, a.id))!.version).toBe(1);
  // a worker for the rest catches up
  await startProcess('persist-worker', { ...env, QUEUE_SHARDS_CONSUMED: '1,2' });
  await waitFor(
    'every shard persisted',
    async () => (await Promise.all(elsewhere.map((a) => rowOf(stores().knex, a.id)))).every((r) => r?.version === 2),
    15_000,
  );
}, 60_000);
