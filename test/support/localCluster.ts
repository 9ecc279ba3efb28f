import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { adminConnection as admin, clusterNodes, isServingMaster, until } from './clusterAdmin';

/** A local Redis Cluster of its own for a fault test (scripts/cluster.sh on ports base..base+5). */
export interface LocalCluster {
  nodes: string;
  /** The master ports, as the cluster has them now. */
  masters(): Promise<number[]>;
  /** SIGKILLs the node on `port` (as a crash). */
  kill(port: number): Promise<void>;
  /** Starts every node that is down again (a killed master rejoins as a replica). */
  restartDown(): void;
  /** Resolves once every slot is served again and `port` is no longer a master. */
  waitForFailover(port: number, timeoutMs?: number): Promise<void>;
  /** Resolves once every master has a replica online again. */
  waitForReplicas(timeoutMs?: number): Promise<void>;
  stop(): void;
}

/** scripts/cluster.sh, from test/support (jest) or from dist/bench/test/support (the bench, compiled). */
const SCRIPT = [path.resolve(__dirname, '../../scripts/cluster.sh'), path.resolve(__dirname, '../../../../scripts/cluster.sh')].find((p) =>
  existsSync(p),
)!;

function script(base: number, ...args: string[]): string {
  const run = spawnSync('bash', [SCRIPT, ...args], { env: { ...process.env, REDIS_CLUSTER_BASE_PORT: String(base) }, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`scripts/cluster.sh ${args.join(' ')} failed:\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

/** Starts a cluster on base..base+5 (3 masters, one replica each). */
export function startLocalCluster(base: number): LocalCluster {
  const ports = Array.from({ length: 6 }, (_, i) => base + i);
  const out = script(base, 'start');
  const nodes = /REDIS_CLUSTER_NODES=(\S+)/.exec(out)?.[1];
  if (!nodes) throw new Error(`scripts/cluster.sh printed no nodes:\n${out}`);
  const masters = async () => (await clusterNodes(ports)).filter(isServingMaster).map((n) => n.port);
  return {
    nodes,
    masters,
    async kill(port) {
      const r = admin(port);
      const pid = Number(/process_id:(\d+)/.exec(await r.info('server'))![1]);
      r.disconnect();
      process.kill(pid, 'SIGKILL');
      await until(
        `node ${port} gone`,
        async () => {
          try {
            process.kill(pid, 0);
            return false;
          } catch {
            return true;
          }
        },
        5000,
      );
    },
    restartDown: () => void script(base, 'start'),
    async waitForFailover(port, timeoutMs = 30_000) {
      await until(
        `the failover of ${port}`,
        async () => {
          const live = await masters();
          if (live.includes(port) || live.length < 3) return false;
          const r = admin(live[0]);
          try {
            return /^cluster_state:ok/m.test((await r.call('CLUSTER', 'INFO')) as string);
          } finally {
            r.disconnect();
          }
        },
        timeoutMs,
      );
    },
    async waitForReplicas(timeoutMs = 60_000) {
      await until(
        'a replica online for every master',
        async () => {
          for (const port of await masters()) {
            const r = admin(port);
            try {
              if (!/^slave0:.*state=online/m.test(await r.info('replication'))) return false;
            } finally {
              r.disconnect();
            }
          }
          return true;
        },
        timeoutMs,
      );
    },
    stop: () => void script(base, 'stop'),
  };
}
