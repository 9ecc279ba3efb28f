import { expectNothingLost, expectRecoveredCountingLoss, failoverUnderLoad, type FailoverTarget } from '../support/failover';
import { useIsolatedStores } from '../support/isolatedStores';
import { killAllProcesses } from '../support/processes';
import { redisServerAvailable } from '../support/redisServer';
import { startSentinelGroup, type SentinelGroup } from '../support/sentinel';

/*
 * Redis behind Sentinel: a master, one replica, one Sentinel (real redis-server processes). Under a
 * steady load of versioned progress writes the master is SIGKILLed; the Sentinel promotes the
 * replica; the service (API and workers, REDIS_SENTINELS) follows on its own. With
 * REDIS_WAIT_REPLICAS=1 no acknowledged write is lost; without it, what is lost is counted (the
 * README's durability section gives the window).
 */

const haveRedisServer = redisServerAvailable();
const describeWithRedisServer = haveRedisServer ? describe : describe.skip;

const stores = useIsolatedStores();
let group: SentinelGroup | undefined;

afterEach(async () => {
  await killAllProcesses();
  await group?.close();
  group = undefined;
  await stores().knex.raw('truncate quiz_sessions');
}, 30_000);

/** A fresh group; the old master's host comes back and the Sentinel makes it a replica of the new master. */
async function sentinelTarget(): Promise<FailoverTarget> {
  const g = (group = await startSentinelGroup());
  return {
    env: g.env,
    killMaster: async () => {
      await g.master.stop(); // SIGKILL
      return g.master.port;
    },
    waitForPromotion: async (victim) => void (await g.waitForFailover(victim)),
    rejoin: async () => {
      await g.master.start();
      await g.waitForReplicas(1);
    },
  };
}

describeWithRedisServer('Sentinel failover under load', () => {
  test('REDIS_WAIT_REPLICAS=1: the replica is promoted, the service recovers on its own, no acknowledged write is lost, never a 500', async () => {
    const run = await failoverUnderLoad(stores().knex, { ...stores().env, REDIS_WAIT_REPLICAS: 1 }, await sentinelTarget(), 20);
    const { recoverMs } = expectNothingLost('sentinel-wait-1', run);
    expect(Number.isFinite(recoverMs)).toBe(true);
  }, 150_000);

  test('without WAIT: the service recovers on its own, never a 500; what the failover lost is counted', async () => {
    expectRecoveredCountingLoss('sentinel-no-wait', await failoverUnderLoad(stores().knex, stores().env, await sentinelTarget(), 20));
  }, 150_000);
});
