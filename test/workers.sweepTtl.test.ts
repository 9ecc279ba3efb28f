import { dirtySetOf } from '../src/shared/store/keys';
import { sessionKey } from '../src/shared/store/sessionStore';
import { waitFor } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { useProxyTo } from './support/tcpProxy';
import { AttemptClient, rowOf } from './support/workerScenario';

/*
 * An unpersisted attempt whose key would expire during a PostgreSQL outage: the sweep refreshes
 * its TTL with Redis alone, so the progress survives until PostgreSQL returns and is persisted.
 */

const stores = useIsolatedStores();
/** PostgreSQL through a proxy the test can cut: `postgres().url`, `postgres().proxy`. */
const postgres = useProxyTo(() => stores().databaseUrl);

test('during a PostgreSQL outage the sweep keeps a dirty attempt alive in Redis, and persists it afterwards', async () => {
  const api = await startProcess('api', { ...stores().env, PERSIST_DELAY_SECONDS: 1 });
  // no persist worker: only the sweep can persist, and it reaches PostgreSQL through the proxy
  await startProcess('lifecycle-worker', {
    ...stores().env,
    DATABASE_URL: postgres().url,
    PERSIST_DELAY_SECONDS: 1,
    SWEEP_INTERVAL_SECONDS: 1,
  });
  const client = new AttemptClient(api.url!);
  const attempt = await client.start();
  await postgres().proxy.stop();
  const written = await client.progress(attempt.id, { q1: 'kept through the outage' });

  // a straggler (dirty long ago) whose key is about to expire
  await stores().redis.zadd(dirtySetOf(attempt.id), Date.now() - 60_000, attempt.id);
  // about to expire, but with room for several sweeps (one a second) on a loaded machine
  await stores().redis.expire(sessionKey(attempt.id), 10);
  await waitFor('the sweep to refresh the TTL', async () => (await stores().redis.ttl(sessionKey(attempt.id))) > 60, 9000);
  expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ version: 1 });

  await postgres().proxy.start();
  await waitFor('the sweep to persist it', async () => (await rowOf(stores().knex, attempt.id)).version === written.version, 10_000);
  expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ answers: { q1: 'kept through the outage' } });
}, 40_000);
