import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';

/** A private redis-server process for tests that stop, pause and restart Redis. */
export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  /** The server's working directory (its AOF lives in appendonlydir/ there). */
  dir: string;
  /** Starts (or restarts) the server on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  /** Kills the process (SIGKILL, like a crash) and waits until it has exited. */
  stop(): Promise<void>;
  /**
   * Stops the process gracefully (SIGTERM: Redis flushes and fsyncs its AOF, then exits) and
   * waits until it has exited; SIGKILL after `escalateAfterMs`. Resolves with how long it took.
   */
  terminate(escalateAfterMs?: number): Promise<{ ms: number; escalated: boolean }>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing is answered. */
  pause(): void;
  /** Thaws a paused process (SIGCONT). */
  resume(): void;
  /** Stops the server and removes its directory. */
  close(): Promise<void>;
}

/** True when a `redis-server` binary is on PATH. */
export function redisServerAvailable(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** True when the server on `port` answers PING with PONG. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/** How a private redis-server persists its data. */
export interface RedisServerOptions {
  /**
   * `everysec` or `always`: AOF on, with that fsync policy, and `noeviction`, as production runs
   * it (README, Durability); the AOF lives in the server's directory and survives a restart.
   * Unset: no persistence at all (a restart starts empty).
   */
  appendfsync?: 'everysec' | 'always';
  /** More redis-server arguments, e.g. ['--hash-max-listpack-value', '512']. */
  args?: readonly string[];
}

/**
 * Spawns redis-server on a free port with a temporary directory; no persistence unless `options`
 * asks for AOF. A port another process takes between the probe and the start is retried on a new one.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    const server = createRedisServer(await freePort(), options);
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.close();
      if (attempt >= 5 || !/Address already in use/i.test(String(err))) throw err;
    }
  }
}

function createRedisServer(port: number, options: RedisServerOptions): RedisServer {
  const dir = mkdtempSync(join(tmpdir(), 'quiz-redis-'));
  let child: ChildProcess | null = null;
  let output = '';
  const persistence = options.appendfsync
    ? ['--appendonly', 'yes', '--appendfsync', options.appendfsync, '--maxmemory-policy', 'noeviction']
    : ['--appendonly', 'no'];
  const extra = options.args ?? [];
  // never leave a server behind, even when the test process dies
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    async start() {
      if (child) throw new Error('redis-server is already running');
      output = '';
      const proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', ...persistence, ...extra],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      proc.stdout?.on('data', (d) => (output += d));
      proc.stderr?.on('data', (d) => (output += d));
      proc.once('exit', () => {
        if (child === proc) child = null;
      });
      child = proc;
      const until = Date.now() + 10_000;
      while (!(await answersPing(port))) {
        if (child !== proc) throw new Error(`redis-server exited on start:\n${output}`);
        if (Date.now() > until) throw new Error(`redis-server did not answer on port ${port}:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const proc = child;
      if (!proc) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGCONT'); // a paused process must be able to die
      proc.kill('SIGKILL');
      await exited;
      child = null;
    },
    async terminate(escalateAfterMs = 10_000) {
      const proc = child;
      if (!proc) return { ms: 0, escalated: false };
      const started = Date.now();
      let escalated = false;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => {
        escalated = true;
        proc.kill('SIGKILL');
      }, escalateAfterMs);
      await exited;
      clearTimeout(timer);
      child = null;
      return { ms: Date.now() - started, escalated };
    },
    pause() {
      if (!child) throw new Error('redis-server is not running');
      child.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async close() {
      await server.stop();
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
