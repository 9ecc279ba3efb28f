import { HEADROOM, plan, rates, studentsPerInstance, type UnitCosts } from '../bench/capacityPlan';

/* The capacity plan's arithmetic (bench/capacityPlan.ts) over made-up unit costs. */

const costs: UnitCosts = {
  read: { api: 100, redis: 50 },
  write: { api: 200, redis: 150 },
  row: { worker: 600, redis: 60 },
};
const exam = { students: 1_000_000, writeIntervalSeconds: 10, readIntervalSeconds: 10, persistWindowSeconds: 30 };

test('a workload makes one read and one write per student per interval and one row per attempt per window', () => {
  expect(rates(exam)).toEqual({ reads: 100_000, writes: 100_000, rows: 1_000_000 / 30 });
});

test('each component needs the CPU its units cost, in instances of one core at HEADROOM, largest first', () => {
  const p = plan(costs, exam);
  const api = (100_000 * 100 + 100_000 * 200) / 1e6; // 30 cores
  const redis = (100_000 * 50 + 100_000 * 150 + (1_000_000 / 30) * 60) / 1e6; // 22 cores
  const worker = ((1_000_000 / 30) * 600) / 1e6; // 20 cores
  expect(p.needs.map((n) => n.component)).toEqual(['api', 'redis', 'worker']);
  const apiNeed = p.needs.find((n) => n.component === 'api')!;
  expect(apiNeed.cores).toBeCloseTo(api, 9);
  expect(apiNeed.instances).toBe(Math.ceil(api / HEADROOM));
  expect(p.needs.find((n) => n.component === 'redis')!.cores).toBeCloseTo(redis, 9);
  expect(p.needs.find((n) => n.component === 'worker')!.cores).toBeCloseTo(worker, 9);
});

test('students per instance: the load one core at HEADROOM carries', () => {
  // api: 10 µs + 20 µs per student-second
  expect(studentsPerInstance(costs, exam, 'api')).toBeCloseTo((HEADROOM * 1e6) / 30, 6);
  expect(studentsPerInstance(costs, exam, 'nothing')).toBe(Infinity);
  // a tiny workload still needs one of each
  expect(plan(costs, { ...exam, students: 1 }).needs.every((n) => n.instances === 1)).toBe(true);
});
