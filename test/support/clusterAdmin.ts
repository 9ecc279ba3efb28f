import { Redis } from 'ioredis';

/*
 * Asking a Redis Cluster's nodes directly (CLUSTER NODES, PUBSUB, failover, moving a slot), for the
 * tests that check where things sit on a cluster and what the service does when they move.
 */

/** One node as CLUSTER NODES describes it. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  flags: string[];
  /** The master it replicates, for a replica. */
  masterId: string | null;
  linkUp: boolean;
  /** The slot ranges it serves (a master), inclusive. */
  slots: Array<[number, number]>;
}

/** A connection to one node that never retries (ask, then disconnect). */
export const adminConnection = (port: number): Redis =>
  new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });

/** Runs `run` on a fresh connection to `port`, then disconnects. */
export async function onNode<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = adminConnection(port);
  try {
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}

/** CLUSTER NODES as the first of `ports` that answers sees it. */
export async function clusterNodes(ports: readonly number[]): Promise<ClusterNodeInfo[]> {
  for (const port of ports) {
    try {
      const text = await onNode(port, async (r) => (await r.call('CLUSTER', 'NODES')) as string);
      return text
        .trim()
        .split('\n')
        .map((line) => {
          const f = line.split(' ');
          return {
            id: f[0],
            port: Number(f[1].split(':')[1].split('@')[0]),
            flags: f[2].split(','),
            masterId: f[3] === '-' ? null : f[3],
            linkUp: f[7] === 'connected',
            // ranges, single slots; not the [slot->-id] of a slot being moved
            slots: f
              .slice(8)
              .filter((s) => !s.startsWith('['))
              .map((s) => {
                const [from, to] = s.split('-').map(Number);
                return [from, to ?? from] as [number, number];
              }),
          };
        });
    } catch {
      // that node is down: ask the next
    }
  }
  throw new Error('no node of the cluster answers');
}

/** A live master (not failed), serving slots. */
export const isServingMaster = (n: ClusterNodeInfo): boolean =>
  n.flags.includes('master') && !n.flags.includes('fail') && n.slots.length > 0;

/** The port of the master serving `slot`, as `nodes` describe the cluster. */
export function ownerOf(nodes: readonly ClusterNodeInfo[], slot: number): number {
  const owner = nodes.find((n) => isServingMaster(n) && n.slots.some(([from, to]) => slot >= from && slot <= to));
  if (!owner) throw new Error(`no master serves slot ${slot}`);
  return owner.port;
}

/** Resolves once `check` holds (tried every 100 ms), or throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when every live master of the cluster reports cluster_state:ok and sees `check` hold. */
async function everyMasterAgrees(ports: readonly number[], check: (nodes: ClusterNodeInfo[]) => boolean): Promise<boolean> {
  const masters = (await clusterNodes(ports)).filter(isServingMaster);
  for (const master of masters) {
    const ok = await onNode(master.port, async (r) => {
      if (!/^cluster_state:ok/m.test((await r.call('CLUSTER', 'INFO')) as string)) return false;
      return check(await clusterNodes([master.port]));
    });
    if (!ok) return false;
  }
  return masters.length > 0;
}

/** True once `replica` is linked to its master and the master counts it as an online replica. */
async function replicaInSync(replica: number): Promise<boolean> {
  const nodes = await clusterNodes([replica]);
  const me = nodes.find((n) => n.port === replica);
  const master = nodes.find((n) => n.id === me?.masterId);
  if (!master) return false;
  if (!/^master_link_status:up/m.test(await onNode(replica, (r) => r.info('replication')))) return false;
  const seen = await onNode(master.port, (r) => r.info('replication'));
  return new RegExp(`^slave\\d+:ip=[^,]+,port=${replica},state=online`, 'm').test(seen);
}

/**
 * A manual failover: `replica` takes over its master's slots (CLUSTER FAILOVER); resolves once every
 * master sees it. A replica that just changed roles is waited for until its master counts it, and
 * a manual failover that timed out (the master had not heard of it yet) is asked again.
 */
export async function failOverTo(ports: readonly number[], replica: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  const tookOver = () => everyMasterAgrees(ports, (nodes) => nodes.some((n) => n.port === replica && isServingMaster(n)));
  while (!(await tookOver().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${replica} to take over`);
    await until(`${replica} in sync with its master`, () => replicaInSync(replica), end - Date.now());
    await onNode(replica, (r) => r.call('CLUSTER', 'FAILOVER'));
    // a manual failover times out after 5 s on the replica's side
    await until(`${replica} to take over`, tookOver, 7000).catch(() => undefined);
  }
}

/** Moves `slot` and its keys from master `from` to master `to` (as resharding does, one slot). */
export async function moveSlot(ports: readonly number[], slot: number, from: number, to: number, timeoutMs = 20_000): Promise<void> {
  const nodes = await clusterNodes(ports);
  const idOf = (port: number) => nodes.find((n) => n.port === port)!.id;
  const [fromId, toId] = [idOf(from), idOf(to)];
  await onNode(to, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId));
  await onNode(from, async (r) => {
    await r.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
    for (;;) {
      const keys = (await r.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await r.call('MIGRATE', '127.0.0.1', to, '', 0, 5000, 'KEYS', ...keys);
    }
  });
  // the new owner first, then the old one (which then drops the slot's subscribers), then the rest
  for (const port of [to, from, ...nodes.filter(isServingMaster).map((n) => n.port)].filter((p, i, all) => all.indexOf(p) === i))
    await onNode(port, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId));
  await until(`slot ${slot} on ${to}`, () => everyMasterAgrees(ports, (seen) => ownerOf(seen, slot) === to), timeoutMs);
}

/** The channels subscribed on node `port` that match `pattern`: plain (PUBSUB CHANNELS) and sharded (PUBSUB SHARDCHANNELS). */
export async function channelsOn(port: number, pattern: string): Promise<{ plain: string[]; sharded: string[] }> {
  return onNode(port, async (r) => ({
    plain: (await r.call('PUBSUB', 'CHANNELS', pattern)) as string[],
    sharded: (await r.call('PUBSUB', 'SHARDCHANNELS', pattern)) as string[],
  }));
}
