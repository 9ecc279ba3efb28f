import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { sessionKey, useKeyLayout } from '../../src/shared/store/keys';
import { sleep } from '../support/harness';
import { useIsolatedStores } from '../support/isolatedStores';
import { startLocalCluster, type LocalCluster } from '../support/localCluster';
import { killAllProcesses } from '../support/processes';
import { checkDurability, ProgressLoad } from '../support/progressLoad';
import { redisServerAvailable } from '../support/redisServer';
import { printFigures, startAttempts, startFaultStack, waitUntilPersisted } from '../support/faultStack';

/*
 * A Redis Cluster master SIGKILLed under load: a local cluster of this test's own (3 masters, one
 * replica each, ports 7200-7205), the service's processes on it (REDIS_CLUSTER_NODES), a steady
 * load of versioned progress writes. The master serving the first attempt is killed; the cluster
 * promotes its replica; the service recovers on its own; the killed node comes back as a replica.
 * With REDIS_WAIT_REPLICAS=1 no acknowledged write is lost; without, the loss is counted.
 */

const BASE_PORT = 7200;
const haveRedisServer = redisServerAvailable();
const describeWithRedisServer = haveRedisServer ? describe : describe.skip;
useKeyLayout('bucketed');

const stores = useIsolatedStores();
let cluster: LocalCluster | undefined;

afterEach(async () => {
  await killAllProcesses();
  cluster?.stop();
  cluster = undefined;
  await stores().knex.raw('truncate quiz_sessions');
}, 60_000);

async function masterKillUnderLoad(settings: Record<string, string | number>) {
  cluster = startLocalCluster(BASE_PORT);
  const env = {
    ...stores().env,
    REDIS_URL: '',
    QUEUE_PREFIX: '',
    REDIS_CLUSTER_NODES: cluster.nodes,
    PERSIST_DELAY_SECONDS: 2,
    SWEEP_INTERVAL_SECONDS: 2,
    ...settings,
  };
  const { apis } = await startFaultStack(env);
  const url = apis[0].url!;
  const attempts = await startAttempts(url, 24);
  const ids = attempts.map((a) => a.id);
  const load = new ProgressLoad({ urls: [url], attempts, thinkMs: 20, startSpreadMs: 20 }).start();
  await sleep(3000);

  // the master of the first attempt's slot
  const client = new Cluster(cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })));
  await new Promise((resolve) => client.once('ready', resolve));
  const victim = Number((client.slots[calculateSlot(sessionKey(ids[0]))][0] as string).split(':')[1]);
  client.disconnect();

  await cluster.kill(victim);
  const downAt = Date.now();
  await cluster.waitForFailover(victim);
  const promotedAt = Date.now();
  cluster.restartDown();
  await cluster.waitForReplicas();
  const replicatedAt = Date.now();
  await sleep(4000);
  await load.stop();
  const finals = await waitUntilPersisted(stores().knex, url, ids, 30_000);
  return { load, finals, downAt, promotedAt, replicatedAt, victim };
}

describeWithRedisServer('Redis Cluster: a master SIGKILLed under load', () => {
  test('REDIS_WAIT_REPLICAS=1: the replica is promoted, the service recovers on its own, no acknowledged write is lost, never a 500', async () => {
    const run = await masterKillUnderLoad({ REDIS_WAIT_REPLICAS: 1 });
    const all = run.load.totals();
    const pg = checkDurability(run.load.writes, run.finals.pg);
    const api = checkDurability(run.load.writes, run.finals.api);
    printFigures('cluster-master-kill-wait-1', {
      victim: run.victim,
      acked: pg.acked,
      lost: pg.lost.length,
      lostApi: api.lost.length,
      s503: all.s503,
      s5xx: all.s5xx,
      timeouts: all.timeouts,
      promotedAfterMs: run.promotedAt - run.downAt,
      replicaBackAfterMs: run.replicatedAt - run.downAt,
      recoverMs: (run.load.firstAckAfter(run.promotedAt) ?? Number.NaN) - run.downAt,
    });
    expect(run.load.anomalies).toEqual([]);
    expect(all.s5xx).toBe(0);
    expect(all.timeouts).toBe(0);
    expect(pg.acked).toBeGreaterThan(200);
    expect(pg.lost).toEqual([]);
    expect(api.lost).toEqual([]);
    expect(pg.behind).toEqual([]);
  }, 180_000);

  test('without WAIT: the service recovers on its own, never a 500; what the failover lost is counted', async () => {
    const run = await masterKillUnderLoad({});
    const all = run.load.totals();
    const pg = checkDurability(run.load.writes, run.finals.pg);
    const lostWindowMs = pg.lost.length ? run.downAt - Math.min(...pg.lost.map((w) => w.ackedAt!)) : 0;
    printFigures('cluster-master-kill-no-wait', {
      victim: run.victim,
      acked: pg.acked,
      lost: pg.lost.length,
      lostWindowMs,
      s503: all.s503,
      s5xx: all.s5xx,
      timeouts: all.timeouts,
      promotedAfterMs: run.promotedAt - run.downAt,
      recoverMs: (run.load.firstAckAfter(run.promotedAt) ?? Number.NaN) - run.downAt,
    });
    expect(run.load.anomalies).toEqual([]);
    expect(all.s5xx).toBe(0);
    expect(all.timeouts).toBe(0);
    expect(pg.acked).toBeGreaterThan(200);
    // asynchronous replication: what is lost was acknowledged just before the kill
    for (const w of pg.lost) expect(run.downAt - w.ackedAt!).toBeLessThan(1000);
    expect(run.load.firstAckAfter(run.promotedAt)).not.toBeNull();
  }, 180_000);
});
