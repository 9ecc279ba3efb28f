import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';

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

const admin = (port: number) =>
  new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });

async function clusterNodes(ports: number[]): Promise<Array<{ port: number; flags: string[]; linkUp: boolean; slots: boolean }>> {
  for (const port of ports) {
    const r = admin(port);
    try {
      const text = (await r.call('CLUSTER', 'NODES')) as string;
      return text
        .trim()
        .split('\n')
        .map((line) => {
          const f = line.split(' ');
          return {
            port: Number(f[1].split(':')[1].split('@')[0]),
            flags: f[2].split(','),
            linkUp: f[7] === 'connected',
            slots: f.length > 8,
          };
        });
    } catch {
      // that node is down: ask the next
    } finally {
      r.disconnect();
    }
  }
  throw new Error('no node of the cluster answers');
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a cluster on base..base+5 (3 masters, one replica each). */
export function startLocalCluster(base: number): LocalCluster {
  const ports = Array.from({ length: 6 }, (_, i) => base + i);
  const out = script(base, 'start');
  const nodes = /REDIS_CLUSTER_NODES=(\S+)/.exec(out)?.[1];
  if (!nodes) throw new Error(`scripts/cluster.sh printed no nodes:\n${out}`);
  const masters = async () =>
    (await clusterNodes(ports)).filter((n) => n.flags.includes('master') && !n.flags.includes('fail') && n.slots).map((n) => n.port);
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
