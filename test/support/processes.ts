import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { configSchema } from '../../src/shared/config';
import { sleep } from './harness';
import { freePort } from './ports';

export { freePort };

/** A process role of `node dist/src/main.js <role>`. */
export type ProcessRole = 'api' | 'persist-worker' | 'lifecycle-worker' | 'webhook-worker' | 'all' | 'migrate';

/**
 * The repository root: the nearest directory above this file holding package.json, so the path
 * below holds also when this file is compiled elsewhere (the soak script runs it from dist/soak).
 */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '../..');
  }
}

/** The compiled entry point the worker tests run (`npm run build`; scripts/test.sh builds first). */
export const MAIN_JS = path.join(repoRoot(), 'dist/src/main.js');

/** How a process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running service process started by `startProcess`. */
export interface ServiceProcess {
  role: ProcessRole;
  pid: number;
  /** The API's base URL (roles api and all), else null. */
  url: string | null;
  /** True until the process has exited. */
  readonly running: boolean;
  /** Settles when the process has exited, however that happens, and its output is complete. */
  exited: Promise<ExitInfo>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves once a line of output matches `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /**
   * Sends `signal` and resolves when the process has exited, with how long that took. A process
   * still alive after `escalateAfterMs` gets SIGKILL (`escalated` says so), so this always kills.
   */
  kill(signal?: 'SIGTERM' | 'SIGKILL', escalateAfterMs?: number): Promise<ExitInfo & { ms: number; escalated: boolean }>;
}

const live = new Set<ServiceProcess>();
let exitHookInstalled = false;

/**
 * The child's environment: this process's environment without any service setting (so the
 * caller's shell cannot change a test), then test defaults, then `overrides`.
 */
async function childEnv(role: ProcessRole, overrides: Record<string, string | number>): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(configSchema.shape)) delete env[key];
  const defaults: Record<string, string | number> = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    // workers announce "<role> started" at info; the API logs every request at info, so less there
    LOG_LEVEL: role === 'api' ? 'warn' : 'info',
    METRICS_PORT: await freePort(),
  };
  if (role === 'api' || role === 'all') defaults.PORT = await freePort();
  // the key layout the run tests (REDIS_KEY_LAYOUT=bucketed npm test): the children use the same
  if (process.env.REDIS_KEY_LAYOUT) defaults.REDIS_KEY_LAYOUT = process.env.REDIS_KEY_LAYOUT;
  // and the partitions (PG_PARTITIONS=4 npm run test:cluster): a database a child migrates gets them
  if (process.env.PG_PARTITIONS) defaults.PG_PARTITIONS = process.env.PG_PARTITIONS;
  for (const [key, value] of Object.entries({ ...defaults, ...overrides })) env[key] = String(value);
  return env;
}

function track(role: ProcessRole, child: ChildProcess, url: string | null): ServiceProcess {
  let out = '';
  let running = true;
  const listeners = new Set<(line: string) => void>();
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    out += text;
    // WORKER_TEST_LOGS=1 shows every child's output as it comes, for debugging a failing test
    if (process.env.WORKER_TEST_LOGS) process.stderr.write(text.replace(/^(?=.)/gm, `[${role} ${child.pid}] `));
    for (const line of text.split('\n')) if (line) listeners.forEach((l) => l(line));
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.once('exit', () => (running = false));
  // on 'close', after the exit: then the output holds every byte the process wrote
  const exited = new Promise<ExitInfo>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));

  const proc: ServiceProcess = {
    role,
    pid: child.pid!,
    url,
    get running() {
      return running;
    },
    exited,
    output: () => out,
    waitForLine(pattern, timeoutMs = 15_000) {
      const seen = out.split('\n').find((line) => pattern.test(line));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const done = (err: Error | null, line = '') => {
          clearTimeout(timer);
          listeners.delete(onLine);
          if (err) reject(err);
          else resolve(line);
        };
        const onLine = (line: string) => pattern.test(line) && done(null, line);
        const timer = setTimeout(
          () => done(new Error(`${role} (pid ${child.pid}): no line matching ${pattern} after ${timeoutMs}ms; output:\n${out}`)),
          timeoutMs,
        );
        listeners.add(onLine);
        void exited.then((e) =>
          done(new Error(`${role} (pid ${child.pid}) exited (${e.code ?? e.signal}) before a line matching ${pattern}; output:\n${out}`)),
        );
      });
    },
    async kill(signal = 'SIGKILL', escalateAfterMs = 15_000) {
      const started = Date.now();
      let escalated = false;
      if (running) child.kill(signal);
      const timer = setTimeout(() => {
        escalated = true;
        child.kill('SIGKILL');
      }, escalateAfterMs);
      const info = await exited;
      clearTimeout(timer);
      return { ...info, ms: Date.now() - started, escalated };
    },
  };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return proc;
}

/** Kills every child still alive if the test process itself exits (a crash, a forced jest exit). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () =>
    live.forEach((p) => {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }),
  );
}

/** The run's own stores (globalSetup): its PostgreSQL, and its Redis (one node, or the local cluster). */
export function runStores(): Record<string, string> {
  const redis: Record<string, string> = process.env.REDIS_CLUSTER_NODES
    ? { REDIS_CLUSTER_NODES: process.env.REDIS_CLUSTER_NODES, REDIS_KEY_LAYOUT: 'bucketed' }
    : { REDIS_URL: process.env.REDIS_URL! };
  return { DATABASE_URL: process.env.DATABASE_URL!, ...redis };
}

/** Spawns `node dist/src/main.js <role>` with the test environment plus `env`, without waiting for it. */
export async function spawnProcess(role: ProcessRole, env: Record<string, string | number> = {}): Promise<ServiceProcess> {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` (scripts/test.sh builds before jest)`);
  installExitHook();
  const childEnvironment = await childEnv(role, env);
  const child = spawn(process.execPath, [MAIN_JS, role], { env: childEnvironment, stdio: ['ignore', 'pipe', 'pipe'] });
  const url = role === 'api' || role === 'all' ? `http://127.0.0.1:${childEnvironment.PORT}` : null;
  return track(role, child, url);
}

/**
 * Starts a role and waits until it is ready: the API (api, all) when GET /ready answers 200, a
 * worker when it logs "<role> started". Fails with the process's output when it is not.
 */
export async function startProcess(
  role: Exclude<ProcessRole, 'migrate'>,
  env: Record<string, string | number> = {},
  timeoutMs = 20_000,
): Promise<ServiceProcess> {
  for (let attempt = 1; ; attempt++) {
    const proc = await spawnProcess(role, env);
    try {
      if (proc.url) await waitUntilReady(proc, timeoutMs);
      if (role !== 'api') await proc.waitForLine(new RegExp(`\\b${role} started$`), timeoutMs);
      return proc;
    } catch (err) {
      await proc.kill('SIGKILL');
      // a port freePort() picked can be taken before the child binds it: pick new ones and retry,
      // unless the test chose the ports itself
      const portsChosen = env.PORT !== undefined || env.METRICS_PORT !== undefined;
      if (attempt < 3 && !portsChosen && /EADDRINUSE/.test(proc.output())) continue;
      throw err;
    }
  }
}

async function waitUntilReady(proc: ServiceProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < until) {
    if (!proc.running) throw new Error(`${proc.role} exited before it was ready; output:\n${proc.output()}`);
    try {
      const res = await fetch(`${proc.url}/ready`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(100);
  }
  throw new Error(`${proc.role} not ready after ${timeoutMs}ms (${last}); output:\n${proc.output()}`);
}

/** Runs a role to its end (e.g. migrate) and fails unless it exits 0. */
export async function runToCompletion(role: ProcessRole, env: Record<string, string | number>, timeoutMs = 30_000): Promise<void> {
  const proc = await spawnProcess(role, env);
  const timer = setTimeout(() => void proc.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${role} exited with ${code ?? signal}; output:\n${proc.output()}`);
}

/** SIGKILLs every process the tests started that is still alive and waits until they are gone. */
export async function killAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill('SIGKILL')));
}
