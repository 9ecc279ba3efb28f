import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { sessionKey, useKeyLayout } from '../../src/shared/store/keys';
import { expectNothingLost, expectRecoveredCountingLoss, failoverUnderLoad, type FailoverTarget } from '../support/failover';
import { useIsolatedStores } from '../support/isolatedStores';
import { startLocalCluster, type LocalCluster } from '../support/localCluster';
import { killAllProcesses } from '../support/processes';
import { redisServerAvailable } from '../support/redisServer';

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

/** A fresh cluster; the victim is the master of the first attempt's slot. */
function clusterTarget(): FailoverTarget {
  const c = (cluster = startLocalCluster(BASE_PORT));
  return {
    env: { REDIS_URL: '', QUEUE_PREFIX: '', REDIS_CLUSTER_NODES: c.nodes },
    killMaster: async (firstId) => {
      const client = new Cluster(c.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })));
      await new Promise((resolve) => client.once('ready', resolve));
      const victim = Number((client.slots[calculateSlot(sessionKey(firstId))][0] as string).split(':')[1]);
      client.disconnect();
      await c.kill(victim);
      return victim;
    },
    waitForPromotion: (victim) => c.waitForFailover(victim),
    rejoin: async () => {
      c.restartDown();
      await c.waitForReplicas();
    },
  };
}

describeWithRedisServer('Redis Cluster: a master SIGKILLed under load', () => {
  test('REDIS_WAIT_REPLICAS=1: the replica is promoted, the service recovers on its own, no acknowledged write is lost, never a 500', async () => {
    expectNothingLost(
      'cluster-master-kill-wait-1',
      await failoverUnderLoad(stores().knex, { ...stores().env, REDIS_WAIT_REPLICAS: 1 }, clusterTarget(), 24),
    );
  }, 180_000);

  test('without WAIT: the service recovers on its own, never a 500; what the failover lost is counted', async () => {
    expectRecoveredCountingLoss('cluster-master-kill-no-wait', await failoverUnderLoad(stores().knex, stores().env, clusterTarget(), 24));
  }, 180_000);
});
