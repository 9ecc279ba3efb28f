import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configSchema } from '../src/shared/config';
import { round } from './stats';
import { freePort } from '../test/support/ports';

export { freePort };

/** The compiled service entry point (`npm run build`). */
export const MAIN_JS = path.resolve(__dirname, '../../../dist/src/main.js');
/** The compiled baseline app, beside this file. */
export const BASELINE_JS = path.join(__dirname, 'baseline.js');

/**
 * Every setting the service reads (src/shared/config.ts) and the role: cleared from the children's
 * environment so the caller's shell cannot change a run (an AUTH_JWT_SECRET there would turn auth on).
 */
const SERVICE_SETTINGS = [...Object.keys(configSchema.shape), 'SERVICE_ROLE'];

/** A child process of the run: a service role or the baseline app. */
export interface BenchProcess {
  name: string;
  pid: number;
  /** Where its HTTP server (API or metrics) listens. */
  port: number;
  /** The file its output goes to. */
  logFile: string;
  readonly running: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `node [nodeArgs] script args` with `env` on top of the cleaned environment; output goes to `logFile`. */
export function startProcess(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string | number>,
  port: number,
  logFile: string,
  nodeArgs: string[] = [],
): BenchProcess {
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first (npm run bench does)`);
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const key of SERVICE_SETTINGS) delete childEnv[key];
  for (const [key, value] of Object.entries(env)) childEnv[key] = String(value);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, script, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(logFile);
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  let running = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running = false;
      out.end();
      resolve();
    }),
  );
  return {
    name,
    pid: child.pid!,
    port,
    logFile,
    get running() {
      return running;
    },
    async stop(graceMs = 15_000) {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers 200, the process dies, or `timeoutMs` passes. */
export async function waitForHttp(proc: BenchProcess, url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.running) break;
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = existsSync(proc.logFile) ? readFileSync(proc.logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
  throw new Error(
    `${proc.name} (pid ${proc.pid}) did not answer ${url} within ${timeoutMs} ms${proc.running ? '' : ' (it exited)'}; its log:\n${tail}`,
  );
}

/** Runs `node script args` to completion (the migrate role); throws with its output on failure. */
export async function runToCompletion(script: string, args: string[], env: Record<string, string | number>): Promise<void> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const key of SERVICE_SETTINGS) delete childEnv[key];
  for (const [key, value] of Object.entries(env)) childEnv[key] = String(value);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(script)} ${args.join(' ')} exited ${code}:\n${output}`)),
    );
  });
}

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (user + system) a process has used so far, from /proc; null when it is gone. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** The pids of every process whose command name is `comm` (e.g. the PostgreSQL backends). */
function pidsNamed(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** What the CPU sampler watches: named pids, plus every `postgres` process and this process. */
export type CpuTargets = Record<string, number>;

/** Per process, the share of one core it used between `start()` and the returned function's call. */
export function sampleCpu(targets: CpuTargets): () => Record<string, number> {
  const started = process.hrtime.bigint();
  const self = process.cpuUsage();
  const before = new Map<string, number>();
  for (const [name, pid] of Object.entries(targets)) before.set(name, cpuSecondsOf(pid) ?? NaN);
  const pg = new Map(pidsNamed('postgres').map((pid) => [pid, cpuSecondsOf(pid) ?? 0]));
  return () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(targets)) out[name] = round(((cpuSecondsOf(pid) ?? NaN) - before.get(name)!) / seconds, 2);
    let pgCpu = 0;
    for (const pid of pidsNamed('postgres')) pgCpu += (cpuSecondsOf(pid) ?? 0) - (pg.get(pid) ?? 0);
    out.postgres = round(pgCpu / seconds, 2);
    const used = process.cpuUsage(self);
    out.harness = round((used.user + used.system) / 1e6 / seconds, 2);
    return out;
  };
}
