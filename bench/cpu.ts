import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { round } from './stats';

/* The CPU the bench's processes use, from /proc (the processes themselves: test/support/processes.ts). */

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
