import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports';
import { startRedisServer, type RedisServer } from './redisServer';

/** The name the Sentinel monitors its master under. */
export const MASTER_NAME = 'quiz-test-master';

/** A master, a replica of it and one Sentinel watching them: real redis-server processes. */
export interface SentinelGroup {
  master: RedisServer;
  replica: RedisServer;
  sentinelPort: number;
  /** The service settings that point at this group (REDIS_URL emptied). */
  env: Record<string, string>;
  /** The port of the master the Sentinel names now. */
  masterPort(): Promise<number>;
  /** Resolves once the Sentinel names another master than `port` (a failover), or fails after `timeoutMs`. */
  waitForFailover(port: number, timeoutMs?: number): Promise<number>;
  /** Resolves once the master of now has `n` replicas online. */
  waitForReplicas(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts the group; the Sentinel calls a master down after 1 s and fails over at once (quorum 1). */
export async function startSentinelGroup(): Promise<SentinelGroup> {
  const master = await startRedisServer({ args: ['--hash-max-listpack-value', '4096'] });
  const replica = await startRedisServer({ args: ['--hash-max-listpack-value', '4096', '--replicaof', '127.0.0.1', String(master.port)] });
  const sentinelPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'quiz-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      '',
    ].join('\n'),
  );
  let output = '';
  const sentinel: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  sentinel.stdout?.on('data', (d) => (output += d));
  sentinel.stderr?.on('data', (d) => (output += d));
  const killOnExit = () => sentinel.kill('SIGKILL');
  process.once('exit', killOnExit);
  const admin = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });

  const masterPort = async (): Promise<number> => {
    const addr = (await admin.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [string, string] | null;
    if (!addr) throw new Error('the Sentinel names no master');
    return Number(addr[1]);
  };
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (await check().catch(() => false)) return;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; sentinel output:\n${output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const group: SentinelGroup = {
    master,
    replica,
    sentinelPort,
    env: { REDIS_URL: '', REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`, REDIS_SENTINEL_NAME: MASTER_NAME },
    masterPort,
    async waitForFailover(port, timeoutMs = 20_000) {
      await until('a failover', async () => (await masterPort()) !== port, timeoutMs);
      return masterPort();
    },
    async waitForReplicas(n, timeoutMs = 20_000) {
      await until(
        `${n} replicas online`,
        async () => {
          const m = new Redis({ port: await masterPort(), host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
          try {
            const info = await m.info('replication');
            const online = (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
            return /^role:master/m.test(info) && online >= n;
          } finally {
            m.disconnect();
          }
        },
        timeoutMs,
      );
    },
    async close() {
      admin.disconnect();
      const exited = new Promise((resolve) => (sentinel.exitCode !== null ? resolve(null) : sentinel.once('exit', resolve)));
      sentinel.kill('SIGKILL');
      await exited;
      process.removeListener('exit', killOnExit);
      await Promise.all([master.close(), replica.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await until('the Sentinel', async () => (await masterPort()) === master.port, 10_000);
  await group.waitForReplicas(1);
  return group;
}
