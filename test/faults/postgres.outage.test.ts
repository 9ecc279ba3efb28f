import { MAX_BACKOFF_MS } from '../../src/shared/queues/queue';
import { sleep, waitFor, dirtyTotal } from '../support/harness';
import { useIsolatedStores } from '../support/isolatedStores';
import { checkDurability, ProgressLoad } from '../support/progressLoad';
import { useProxyTo } from '../support/tcpProxy';
import { pgFinals, printFigures, startAttempts, startFaultStack, waitUntilPersisted } from '../support/faultStack';
import { LoadHttpClient, type LoadResponse } from '../support/http';

/*
 * PostgreSQL unreachable for 30 s under a steady load of versioned progress writes. Every process
 * (API, persist worker, lifecycle worker) reaches this file's database through a TCP proxy in the
 * test process, which the test closes (cutting every connection) and reopens; the shared
 * PostgreSQL server keeps running for everything else.
 */

const OUTAGE_MS = 30_000;
const PERSIST_DELAY_SECONDS = 2;
/** How long a request may take: well under a hang. */
const NO_HANG_MS = 3000;
/** Right after the cut, /ready may still find a pooled connection up for one check. */
const DETECTION_MS = 2000;

const stores = useIsolatedStores();
/** PostgreSQL through a proxy the test can cut: `postgres().url`, `postgres().proxy`. */
const postgres = useProxyTo(() => stores().databaseUrl);

test('PostgreSQL unreachable for 30 s under load: progress is still accepted, /ready names postgres, and afterwards every acknowledged write is persisted', async () => {
  const env = { ...stores().env, DATABASE_URL: postgres().url, PERSIST_DELAY_SECONDS, SWEEP_INTERVAL_SECONDS: 2 };
  const { apis } = await startFaultStack(env);
  const url = apis[0].url!;
  const attempts = await startAttempts(url, 20);
  const ids = attempts.map((a) => a.id);
  // completed during the outage, outside the load
  const closers = await startAttempts(url, 2);
  // a slower pace than the other fault tests: the outage alone is 30 s of writes
  const load = new ProgressLoad({ urls: [url], attempts, thinkMs: 40 }).start();
  await sleep(3000);

  await postgres().proxy.stop();
  const downAt = Date.now();
  const readyProbes: LoadResponse[] = [];
  const probeClient = new LoadHttpClient({ maxSockets: 1, timeoutMs: NO_HANG_MS + 2000 });
  let duringOutage: Record<string, LoadResponse> = {};
  while (Date.now() < downAt + OUTAGE_MS) {
    readyProbes.push(await probeClient.call(url, 'GET', '/ready'));
    if (Object.keys(duringOutage).length === 0 && Date.now() > downAt + 5000) {
      // what needs PostgreSQL answers 503 (never 500, never a hang); reads are served from Redis
      duringOutage = {
        start: await probeClient.call(url, 'POST', '/api/sessions/start', { user_id: `outage-${downAt}`, quiz_id: 1 }),
        complete: await probeClient.call(url, 'POST', `/api/sessions/${closers[0].id}/complete`, {}),
        read: await probeClient.call(url, 'GET', `/api/sessions/${closers[1].id}`),
      };
    }
    await sleep(500);
  }
  // nothing acknowledged during the outage can be in PostgreSQL yet
  const ackedDuringOutage = load.totals(downAt, Date.now()).acked;

  await postgres().proxy.start();
  const upAt = Date.now();
  let readyAgain: LoadResponse;
  for (;;) {
    readyAgain = await probeClient.call(url, 'GET', '/ready');
    if (readyAgain.status === 200 || Date.now() > upAt + 10_000) break;
    await sleep(100);
  }
  const readyMs = readyAgain.at - upAt;
  // the complete refused during the outage, sent again: 200, and durable at once
  const completeAgain = await probeClient.call(url, 'POST', `/api/sessions/${closers[0].id}/complete`, {});
  const closerRow = (await pgFinals(stores().knex, [closers[0].id])).get(closers[0].id);
  await sleep(3000);
  await load.stop();
  const stoppedAt = Date.now();
  probeClient.close();

  const finals = await waitUntilPersisted(stores().knex, url, ids, PERSIST_DELAY_SECONDS * 1000 + MAX_BACKOFF_MS + 15_000);
  await waitFor('the dirty set to empty', async () => (await dirtyTotal(stores().redis)) === 0, 10_000).catch(() => undefined);
  const outage = load.totals(downAt, upAt);
  const all = load.totals();
  const pg = checkDurability(load.writes, finals.pg);
  const api = checkDurability(load.writes, finals.api);
  const afterDetection = readyProbes.filter((p) => p.at > downAt + DETECTION_MS);
  printFigures('postgres-30s', {
    acked: pg.acked,
    ackedDuringOutage,
    foundPg: pg.found,
    foundApi: api.found,
    lost: pg.lost.length,
    s503: all.s503,
    s5xx: all.s5xx,
    timeouts: all.timeouts,
    maxOutageMs: outage.maxMs,
    ready503: readyProbes.filter((p) => p.status === 503).length,
    readyProbes: readyProbes.length,
    readyAgainMs: readyMs,
    startInOutage: duringOutage.start?.status,
    completeInOutage: duringOutage.complete?.status,
    persistedAfterStopMs: finals.at - stoppedAt,
    persistedAfterRestoreMs: finals.at - upAt,
  });

  // progress kept being accepted, every request answered in time
  expect(load.anomalies).toEqual([]);
  expect(all.s503).toBe(0);
  expect(all.s5xx).toBe(0);
  expect(all.timeouts).toBe(0);
  expect(all.maxMs).toBeLessThan(NO_HANG_MS);
  expect(ackedDuringOutage).toBeGreaterThan(200);
  // /ready: 503 naming postgres throughout the outage, 200 once it is back
  expect(afterDetection.length).toBeGreaterThan(OUTAGE_MS / 1000);
  for (const p of afterDetection) {
    expect(p.ms).toBeLessThan(NO_HANG_MS);
    expect(p.status).toBe(503);
    expect(p.body).toMatchObject({ checks: { redis: 'up', postgres: 'down' }, errorCode: 'SERVICE_UNAVAILABLE' });
    expect(p.body.message).toMatch(/postgres/);
  }
  expect(readyAgain.status).toBe(200);
  for (const what of ['start', 'complete'] as const) {
    expect({ what, status: duringOutage[what].status, errorCode: duringOutage[what].body?.errorCode }).toEqual({
      what,
      status: 503,
      errorCode: 'SERVICE_UNAVAILABLE',
    });
    expect(duringOutage[what].ms).toBeLessThan(NO_HANG_MS);
  }
  expect(duringOutage.read).toMatchObject({ status: 200, body: { id: closers[1].id, version: 1 } });
  expect(completeAgain).toMatchObject({ status: 200, body: { status: 'completed', version: 2 } });
  expect(closerRow).toMatchObject({ status: 'completed', version: 2 });
  // every acknowledged write is in PostgreSQL and in the API
  expect(pg.lost).toEqual([]);
  expect(api.lost).toEqual([]);
  expect(pg.behind).toEqual([]);
  expect(await dirtyTotal(stores().redis)).toBe(0);
}, 150_000);
