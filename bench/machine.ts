import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** The machine a run was made on (the doc records it beside the figures). */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  loadAverage: number[];
  node: string;
  redis: string;
  postgres: string;
  autocannon: string;
}

const tryRun = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
};

/** Cores, memory, load and the versions of what the run measured. */
export function machineInfo(postgresVersion: string): MachineInfo {
  return {
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memTotalGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    redis: tryRun('redis-server', ['--version']),
    postgres: postgresVersion,
    autocannon: (JSON.parse(readFileSync(require.resolve('autocannon/package.json'), 'utf8')) as { version: string }).version,
  };
}
