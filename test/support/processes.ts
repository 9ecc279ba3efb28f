import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configSchema } from '../../src/shared/config';
import type { Role } from '../../src/shared/roles';
import { freePort } from './ports';

/*
 * The one process harness of the tests, the bench and the soak: it spawns `node` scripts (the
 * service's dist/src/main.js with a role, the bench's baseline app) with a clean environment,
 * collects their output (in memory, or in a log file for long bench runs), waits until they are
 * ready, and stops or kills them, every child killed if this process exits.
 */

/** A process role of `node dist/src/main.js <role>` (src/shared/roles.ts). */
export type ProcessRole = Role;

/**
 * The repository root: the nearest directory above this file holding package.json, so the paths
 * below hold also when this file is compiled elsewhere (dist/soak, dist/bench).
 */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '../..');
  }
}

/** The compiled entry point (`npm run build`; scripts/test.sh and npm run bench build first). */
export const MAIN_JS = path.join(repoRoot(), 'dist/src/main.js');
/** The bench's compiled baseline app (`tsc -p bench/tsconfig.json`). */
export const BASELINE_JS = path.join(repoRoot(), 'dist/bench/bench/baseline.js');

/** How a process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running child started by this harness. */
export interface NodeProcess {
  /** What the messages call it: the role, or the bench's name for it. */
  name: string;
  pid: number;
  /** True until the process has exited. */
  readonly running: boolean;
  /** Settles when the process has exited, however that happens, and its output is complete. */
  exited: Promise<ExitInfo>;
  /** Everything the process wrote to stdout and stderr so far (its log file's, when it has one). */
  output(): string;
  /** Resolves once a line of output matches `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /**
   * Sends `signal` and resolves when the process has exited, with how long that took. A process
   * still alive after `escalateAfterMs` gets SIGKILL (`escalated` says so), so this always kills.
   */
  kill(signal?: 'SIGTERM' | 'SIGKILL', escalateAfterMs?: number): Promise<ExitInfo & { ms: number; escalated: boolean }>;
}

/** A service process of the tests and the soak (startProcess, spawnProcess). */
export interface ServiceProcess extends NodeProcess {
  role: ProcessRole;
  /** The API's base URL (roles api and all), else null. */
  url: string | null;
}

/** A child of a bench run (startLoggedProcess): a service role or the baseline app, its output in a file. */
export interface BenchProcess extends NodeProcess {
  /** Where its HTTP server (API or metrics) listens. */
  port: number;
  /** The file its output goes to. */
  logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Every setting the service reads (src/shared/config.ts) and the role: cleared from the children's
 * environment so the caller's shell cannot change a run (an AUTH_JWT_SECRET there would turn auth on).
 */
const SERVICE_SETTINGS = [...Object.keys(configSchema.shape), 'SERVICE_ROLE'];

/** This process's environment without any service setting, then `env`. */
function cleanEnv(env: Record<string, string | number>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  for (const key of SERVICE_SETTINGS) delete out[key];
  for (const [key, value] of Object.entries(env)) out[key] = String(value);
  return out;
}

const live = new Set<NodeProcess>();
let exitHookInstalled = false;

/** Kills every child still alive if this process itself exits (a crash, a forced jest exit). */
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

/**
 * Spawns `node [nodeArgs] script args` with `env` over the cleaned environment and tracks it: its
 * output kept in memory, or written to `logFile` (a bench run's output is too long to keep).
 */
function spawnNode(
  name: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  nodeArgs: string[],
  logFile?: string,
): NodeProcess {
  installExitHook();
  // a log file is the child's own stdout and stderr: its output costs this process nothing (the
  // bench's load generator runs here)
  const fd = logFile ? openSync(logFile, 'a') : null;
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, script, ...args], {
    env,
    stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'],
  });
  if (fd !== null) closeSync(fd);
  let out = '';
  let running = true;
  const listeners = new Set<(line: string) => void>();
  const file = fd !== null;
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    if (!file) out += text;
    // WORKER_TEST_LOGS=1 shows every child's output as it comes, for debugging a failing test
    if (process.env.WORKER_TEST_LOGS) process.stderr.write(text.replace(/^(?=.)/gm, `[${name} ${child.pid}] `));
    if (listeners.size) for (const line of text.split('\n')) if (line) listeners.forEach((l) => l(line));
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.once('exit', () => (running = false));
  // on 'close', after the exit: then the output holds every byte the process wrote
  const exited = new Promise<ExitInfo>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const output = () => (logFile ? (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') : out);

  const proc: NodeProcess = {
    name,
    pid: child.pid!,
    get running() {
      return running;
    },
    exited,
    output,
    waitForLine(pattern, timeoutMs = 15_000) {
      const seen = output()
        .split('\n')
        .find((line) => pattern.test(line));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        let poll: NodeJS.Timeout | null = null;
        const done = (err: Error | null, line = '') => {
          clearTimeout(timer);
          if (poll) clearInterval(poll);
          listeners.delete(onLine);
          if (err) reject(err);
          else resolve(line);
        };
        const onLine = (line: string) => pattern.test(line) && done(null, line);
        const timer = setTimeout(
          () => done(new Error(`${name} (pid ${child.pid}): no line matching ${pattern} after ${timeoutMs}ms; output:\n${output()}`)),
          timeoutMs,
        );
        listeners.add(onLine);
        // a child writing to its log file directly is read back from it
        if (file)
          poll = setInterval(() => {
            const line = output()
              .split('\n')
              .find((l) => pattern.test(l));
            if (line) done(null, line);
          }, 100);
        void exited.then((e) =>
          done(
            new Error(`${name} (pid ${child.pid}) exited (${e.code ?? e.signal}) before a line matching ${pattern}; output:\n${output()}`),
          ),
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

/** The last `lines` lines of a process's output, for an error message. */
const tail = (proc: NodeProcess, lines: number) => proc.output().split('\n').slice(-lines).join('\n');

/**
 * Polls `url` until it answers 200 (each try bounded to 2 s); fails with the process's output when
 * the process exits first or `timeoutMs` passes.
 */
export async function waitForHttp(proc: NodeProcess, url: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < until) {
    if (!proc.running) break;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${text}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(
    `${proc.name} (pid ${proc.pid}) did not answer 200 at ${url} within ${timeoutMs} ms${proc.running ? ` (${last})` : ' (it exited)'}; its output:\n${tail(proc, 200)}`,
  );
}

/** Waits for the process to end and fails unless it exits 0; SIGKILLs it after `timeoutMs` when given. */
async function succeeded(proc: NodeProcess, what: string, timeoutMs?: number): Promise<void> {
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => void proc.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${what} exited with ${code ?? signal}; output:\n${proc.output()}`);
}

// ---------------------------------------------------------------------------------------------
// the service's roles, as the tests and the soak start them

/**
 * The child's environment: this process's environment without any service setting (so the
 * caller's shell cannot change a test), then test defaults, then `overrides`.
 */
async function testEnv(role: ProcessRole, overrides: Record<string, string | number>): Promise<NodeJS.ProcessEnv> {
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
  return cleanEnv({ ...defaults, ...overrides });
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
  const childEnvironment = await testEnv(role, env);
  const url = role === 'api' || role === 'all' ? `http://127.0.0.1:${childEnvironment.PORT}` : null;
  return Object.assign(spawnNode(role, MAIN_JS, [role], childEnvironment, []), { role, url });
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
      if (proc.url) await waitForHttp(proc, `${proc.url}/ready`, timeoutMs);
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

/** Runs a role to its end (e.g. migrate) and fails unless it exits 0. */
export async function runToCompletion(role: ProcessRole, env: Record<string, string | number>, timeoutMs = 30_000): Promise<void> {
  await succeeded(await spawnProcess(role, env), role, timeoutMs);
}

/** SIGKILLs every process this harness started that is still alive and waits until they are gone. */
export async function killAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill('SIGKILL')));
}

// ---------------------------------------------------------------------------------------------
// any script, with exactly the environment given, as the bench starts its processes

/** Starts `node [nodeArgs] script args` with `env` on top of the cleaned environment; output goes to `logFile`. */
export function startLoggedProcess(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string | number>,
  port: number,
  logFile: string,
  nodeArgs: string[] = [],
): BenchProcess {
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first (npm run bench does)`);
  const proc = spawnNode(name, script, args, cleanEnv(env), nodeArgs, logFile);
  return Object.assign(proc, {
    port,
    logFile,
    async stop(graceMs = 15_000) {
      if (proc.running) await proc.kill('SIGTERM', graceMs);
    },
  });
}

/** Runs `node script args` with `env` on top of the cleaned environment to completion; throws with its output on failure. */
export async function runScriptToCompletion(
  script: string,
  args: string[],
  env: Record<string, string | number>,
  timeoutMs?: number,
): Promise<void> {
  await succeeded(
    spawnNode(path.basename(script), script, args, cleanEnv(env), []),
    `${path.basename(script)} ${args.join(' ')}`,
    timeoutMs,
  );
}
