import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/*
 * The bench harness (bench/, `npm run bench`) is not run by the tests, but its smoke preset is, so
 * the harness cannot rot: a few-second run with tiny N over its own Redis DB and PostgreSQL
 * database. Nothing here asserts on a timing; only that the run completes and reports every figure.
 * Needs dist/src (scripts/test.sh builds it); the harness itself is compiled here, to dist/bench.
 */

const ROOT = path.resolve(__dirname, '..');

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/** Every path in `obj` (dotted) whose value is not a finite number, among `paths`. */
function notNumeric(obj: unknown, paths: string[]): string[] {
  return paths.filter((p) => {
    const value = p.split('.').reduce<unknown>((o, key) => (o as Record<string, unknown> | undefined)?.[key], obj);
    return typeof value !== 'number' || !Number.isFinite(value);
  });
}

let resultsDir: string;

beforeAll(() => {
  resultsDir = mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
});

afterAll(() => {
  rmSync(resultsDir, { recursive: true, force: true });
});

test('the bench smoke run exits 0, prints the table and writes every figure as a number', async () => {
  const tsc = await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'bench/tsconfig.json']);
  expect(tsc.output).toBe('');
  expect(tsc.code).toBe(0);

  const bench = await run(process.execPath, ['dist/bench/bench/run.js', '--smoke', '--results', resultsDir]);
  if (bench.code !== 0) throw new Error(`bench exited ${bench.code}:\n${bench.output}`);
  expect(bench.output).toMatch(/Targets/);

  const report = JSON.parse(readFileSync(path.join(resultsDir, 'latest-smoke.json'), 'utf8'));
  const run0 = 'http.runs.0';
  expect(report.http.runs.map((r: { profile: string }) => r.profile)).toEqual(['get', 'write', 'mixed']);
  expect(
    notNumeric(report, [
      ...['baseline', 'service'].flatMap((t) => [`${run0}.${t}.rps`, `${run0}.${t}.latency.p50`, `${run0}.${t}.latency.p99`]),
      `${run0}.ratio`,
      `${run0}.cpuMicrosPerRequest.ratio`,
      `${run0}.ratioBySlice.min`,
      `${run0}.ratioBySlice.max`,
      'http.features.ratio',
      'http.features.steps.3.cpuRatio',
      'http.runs.1.ratio',
      'http.runs.2.ratio',
      'http.memory.startedBytesPerAttempt',
      'http.memory.dirtyBytesPerAttempt',
      'http.memory.cleanBytesPerAttempt',
      'http.memory.deadlineIndexBytesPerEntry',
      'http.memory.deadlineIndexEntries',
      'writeBehind.acceptedWrites',
      'writeBehind.rowsWritten',
      'writeBehind.rowsPerWrite',
      'writeBehind.persistLagP50Seconds.value',
      'writeBehind.persistLagP99Seconds.value',
      'writeBehind.queueLagP99Seconds.persist.value',
      'writeBehind.queueLagP99Seconds.lifecycle.value',
      'writeBehind.expiry.latenessP99Ms',
      'scale.bytesPerAttempt',
      'scale.hashMemoryUsageBytes',
      'scale.small.run.latency.p99',
      'scale.large.run.latency.p99',
      'scale.p99Ratio',
      'scale.p99RatioOverBaseline',
      'scale.rpsRatioOverBaselineBySlice.min',
      'scale.rpsRatioOverBaselineBySlice.max',
      'scale.sameRun.rpsRatioBySlice.min',
      'scale.sameRun.rpsRatioBySlice.max',
    ]),
  ).toEqual([]);
  // every compared run keeps its slices one by one, each with its own figures
  for (const run of [report.http.runs[0].baseline, report.http.runs[0].service, report.scale.small.run]) {
    expect(run.slices).toHaveLength(report.options.slices);
    for (const slice of run.slices) expect(slice.rps).toBeGreaterThan(0);
  }
  expect(report.http.runs[0].ratioBySlice.min).toBeLessThanOrEqual(report.http.runs[0].ratioBySlice.max);
  // as fast as they go, the features' figure is the all-on arm's throughput ratio
  expect(report.http.features.rate).toBeNull();
  expect(report.http.features.ratio).toBe(report.http.features.steps[3].ratio);
  expect(report.targets.length).toBeGreaterThan(0);
  for (const target of report.targets) expect(typeof target.value === 'number' && typeof target.met === 'boolean').toBe(true);
}, 90_000);

test('with --features-rate the features arms run at that rate and their figure is the CPU per write', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-rate-'));
  try {
    const args = [
      'dist/bench/bench/run.js',
      '--smoke',
      '--phases',
      'http',
      '--profiles',
      'write',
      '--features-rate',
      '100',
      '--results',
      dir,
    ];
    const bench = await run(process.execPath, args);
    if (bench.code !== 0) throw new Error(`bench exited ${bench.code}:\n${bench.output}`);
    const features = JSON.parse(readFileSync(path.join(dir, 'latest-smoke.json'), 'utf8')).http.features;
    expect(features.rate).toBe(100);
    expect(features.ratio).toBe(features.steps[3].cpuRatio);
    expect(features.steps[0].cpuRatio).toBe(1);
    // held to the rate: autocannon's overall rate gives each connection its share of 100 requests
    // in each one-second window, the first opening at the start and one more at each whole second,
    // so a run of s seconds answers at most 100 * (floor(s) + 1); unthrottled it answers thousands
    for (const step of features.steps) {
      expect(step.run.ok).toBeGreaterThan(0);
      expect(step.run.ok).toBeLessThanOrEqual(100 * (Math.floor(step.run.seconds) + 1));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);

test('the capacity smoke run exits 0 and reports a cost per unit of work and a plan for each component', async () => {
  const bench = await run(process.execPath, ['dist/bench/bench/run.js', '--smoke', '--capacity', '--results', resultsDir]);
  if (bench.code !== 0) throw new Error(`bench --capacity exited ${bench.code}:\n${bench.output}`);
  expect(bench.output).toMatch(/Students per instance/);
  const file = readdirSync(resultsDir).find((f) => /^capacity-single-.*\.json$/.test(f));
  const report = JSON.parse(readFileSync(path.join(resultsDir, file!), 'utf8'));
  expect(report.steps.map((s: { unit: string }) => s.unit)).toEqual(['row', 'read', 'write']);
  const components = ['api', 'persist-worker', 'lifecycle-worker', 'redis state', 'redis queues', 'postgres'];
  for (const unit of ['read', 'write', 'row']) {
    expect(notNumeric(report.costs[unit], components)).toEqual([]);
  }
  // the work the steps did cost the components that do it
  expect(report.costs.read.api).toBeGreaterThan(0);
  expect(report.costs.write['redis state']).toBeGreaterThan(0);
  expect(report.costs.row['persist-worker']).toBeGreaterThan(0);
  expect(report.steps[0].units).toBeGreaterThan(0);
  for (const p of report.plans) {
    for (const need of p.needs) expect(Number.isInteger(need.instances) && need.instances >= 1).toBe(true);
  }
}, 90_000);
