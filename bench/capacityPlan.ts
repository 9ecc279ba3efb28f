/*
 * The capacity plan (docs/SCALING.md) as arithmetic over what `npm run bench -- --capacity` measured:
 * the CPU one read, one write and one persisted row cost each component. Nothing here is measured
 * or guessed: the workload and the headroom are stated inputs, the costs come from the run.
 */

/** CPU microseconds one unit of work costs each component (a process, or a group of Redis servers). */
export type Costs = Record<string, number>;

/** What one read, one write and one persisted row cost, per component, as measured. */
export interface UnitCosts {
  read: Costs;
  write: Costs;
  row: Costs;
}

/** The exam the plan is for. */
export interface Workload {
  students: number;
  /** Seconds between one student's saves, and between its reads (the 10 s each). */
  writeIntervalSeconds: number;
  readIntervalSeconds: number;
  /** PERSIST_DELAY_SECONDS: an attempt changed within a window is written once per window. */
  persistWindowSeconds: number;
}

/** The share of a core a single-threaded process (a Node process, a Redis server) is planned to use. */
export const HEADROOM = 0.6;

/** How the components map onto processes: Node processes and Redis servers are one core each. */
export interface ComponentNeed {
  component: string;
  /** Cores of CPU the workload needs from it. */
  cores: number;
  /** Single-threaded instances at HEADROOM: API processes, Redis masters, queue shards, workers. */
  instances: number;
}

export interface Plan {
  workload: Workload;
  readsPerSecond: number;
  writesPerSecond: number;
  rowsPerSecond: number;
  needs: ComponentNeed[];
}

/** The work per second a workload makes: every student reads and writes at its intervals; each attempt is persisted once a window. */
export function rates(w: Workload): { reads: number; writes: number; rows: number } {
  return {
    reads: w.students / w.readIntervalSeconds,
    writes: w.students / w.writeIntervalSeconds,
    rows: w.students / w.persistWindowSeconds,
  };
}

/** Each component's cores and instances for the workload, from the unit costs; largest first. */
export function plan(costs: UnitCosts, w: Workload): Plan {
  const { reads, writes, rows } = rates(w);
  const components = new Set([...Object.keys(costs.read), ...Object.keys(costs.write), ...Object.keys(costs.row)]);
  const needs: ComponentNeed[] = [];
  for (const component of components) {
    const micros = reads * (costs.read[component] ?? 0) + writes * (costs.write[component] ?? 0) + rows * (costs.row[component] ?? 0);
    const cores = micros / 1e6;
    needs.push({ component, cores, instances: Math.max(1, Math.ceil(cores / HEADROOM)) });
  }
  needs.sort((a, b) => b.cores - a.cores);
  return { workload: w, readsPerSecond: reads, writesPerSecond: writes, rowsPerSecond: rows, needs };
}

/** How many students one instance of the component carries at HEADROOM: what breaks first is the smallest. */
export function studentsPerInstance(costs: UnitCosts, w: Omit<Workload, 'students'>, component: string): number {
  const perStudent =
    (costs.read[component] ?? 0) / w.readIntervalSeconds +
    (costs.write[component] ?? 0) / w.writeIntervalSeconds +
    (costs.row[component] ?? 0) / w.persistWindowSeconds;
  return perStudent > 0 ? (HEADROOM * 1e6) / perStudent : Infinity;
}
