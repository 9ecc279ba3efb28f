import { MAX_BACKOFF_MS } from '../src/shared/queues/queue';
import { sleep, waitFor, dirtyTotal } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { useProxyTo } from './support/tcpProxy';
import { AttemptClient, rowsById, waitForRows } from './support/workerScenario';

/*
 * PostgreSQL "down" for the service's processes only: the API and the persist worker reach this
 * file's database through a TCP proxy in the test process, which the test closes and reopens.
 * The shared PostgreSQL server keeps running for everything else.
 */

const stores = useIsolatedStores();
/** PostgreSQL through a proxy the test can cut: `postgres().url`, `postgres().proxy`. */
const postgres = useProxyTo(() => stores().databaseUrl);

test('PostgreSQL unreachable for 10 s under writes: progress is still accepted, and afterwards every acknowledged version is in PostgreSQL', async () => {
  const delay = 2;
  const env = { ...stores().env, DATABASE_URL: postgres().url, PERSIST_DELAY_SECONDS: delay };
  const [api, worker] = await Promise.all([startProcess('api', env), startProcess('persist-worker', env)]);
  const client = new AttemptClient(api.url!);
  const ids: string[] = [];
  for (let n = 0; n < 8; n++) ids.push((await client.start()).id);

  await postgres().proxy.stop();
  const acked = new Map<string, number>();
  const refused: string[] = [];
  const outageEnds = Date.now() + 10_000;
  for (let round = 0; Date.now() < outageEnds; round++) {
    for (const id of ids) {
      const res = await client.progressRaw(id, { [`q${round % 20}`]: { round } }, round % 20);
      if (res.status === 200) acked.set(id, res.body.version);
      else refused.push(`${id}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    await sleep(100);
  }
  // the acknowledged writes live in Redis only; reads still answer from there
  expect(refused).toEqual([]);
  expect((await client.get(ids[0])).body.version).toBe(acked.get(ids[0]));
  for (const row of (await rowsById(stores().knex, ids)).values()) expect(row.version).toBe(1);
  // the write-behind did try, and failed, while PostgreSQL was away
  expect(worker.output()).toMatch(/job persist-(snapshot|window) \S+ failed/);

  await postgres().proxy.start();
  const restoredAt = Date.now();
  const budget = delay * 1000 + MAX_BACKOFF_MS + 3000;
  const seenAt = await waitForRows(stores().knex, ids, (r, id) => r.version === acked.get(id), budget, 'every acknowledged version');
  expect(seenAt - restoredAt).toBeLessThanOrEqual(budget);
  const rows = await rowsById(stores().knex, ids);
  for (const id of ids) {
    expect(rows.get(id)!.version).toBe(acked.get(id));
    expect(Object.keys(rows.get(id)!.answers)).toHaveLength(20);
  }
  await waitFor('the dirty set to empty', async () => (await dirtyTotal(stores().redis)) === 0, 5000);
}, 60_000);
