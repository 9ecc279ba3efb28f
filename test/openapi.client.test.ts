import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { openApiDocument } from '../src/api/openapi';
import { startTestApi, type TestApi } from './support/harness';
import { runStores, startProcess, type ServiceProcess } from './support/processes';

/*
 * The document as a client generator sees it: openapi-typescript makes the types from
 * /openapi.json, a small openapi-fetch program (test/openapi-client/program.ts) is typechecked
 * against them with tsc (strict; `error.session.version` on the 409 compiles without a check, and
 * `error.session` before the error code is known does not), then runs against a real API process
 * (dist/: `npm run build` first, as npm test does).
 */

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const bin = (pkg: string, file: string) => path.join(ROOT, 'node_modules', pkg, file);
const PROGRAM = readFileSync(path.join(__dirname, 'openapi-client', 'program.ts'), 'utf8');

/** The compiler options of the client's project: strict; the packages' own declarations skipped, schema.ts and the program checked in full. */
const COMPILER_OPTIONS = {
  strict: true,
  target: 'ES2022',
  lib: ['ES2022', 'DOM'],
  module: 'node16',
  moduleResolution: 'node16',
  types: ['node'],
  skipLibCheck: true,
  outDir: 'out',
};

/** tsc over `program` (a file in the client's folder) and the generated schema.ts: its output, and whether it passed. */
async function typecheck(program: string): Promise<{ ok: boolean; output: string }> {
  const project = `tsconfig.${program.replace(/\.ts$/, '')}.json`;
  writeFileSync(path.join(dir, project), JSON.stringify({ compilerOptions: COMPILER_OPTIONS, files: [program, 'schema.ts'] }));
  return run(process.execPath, [bin('typescript', 'bin/tsc'), '-p', project], { cwd: dir }).then(
    ({ stdout, stderr }) => ({ ok: true, output: stdout + stderr }),
    (err: { stdout?: string; stderr?: string }) => ({ ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
  );
}

let dir: string;
let api: ServiceProcess;
let stores: TestApi; // the run's stores, for the clean-up of this file's users
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'openapi-client-'));
  // the program resolves openapi-fetch (and tsc the Node types) from the project's packages
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  // the types, from the document as the service serves it
  writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(openApiDocument()));
  await run(process.execPath, [bin('openapi-typescript', 'bin/cli.js'), 'openapi.json', '-o', 'schema.ts'], { cwd: dir });
  [api, stores] = await Promise.all([startProcess('api', runStores()), startTestApi()]);
}, 60_000);
afterAll(async () => {
  await api?.kill();
  await stores?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a client generated with openapi-typescript and openapi-fetch typechecks (strict) and runs: start, save, a 409 merged from its session, complete', async () => {
  writeFileSync(path.join(dir, 'program.ts'), PROGRAM);
  const tsc = await typecheck('program.ts');
  if (!tsc.ok) throw new Error(`tsc refused the generated client:\n${tsc.output}`);
  expect(tsc.output).toBe('');

  const userId = stores.userId('client');
  const quizId = `quiz-${userId}`;
  const { stdout } = await run(process.execPath, [path.join(dir, 'out', 'program.js'), api.url!, userId, quizId], {
    cwd: dir,
    timeout: 30_000,
  }).catch((err: { stderr?: string }) => {
    throw new Error(`the generated client failed:\n${err.stderr ?? String(err)}\napi output:\n${api.output()}`);
  });
  const result = JSON.parse(stdout) as {
    seen: Array<{ step: string; status: number; version: number }>;
    location: string;
    attempt: { id: string; user_id: string; status: string; version: number; answers: Record<string, unknown> };
  };
  expect(result.seen).toEqual([
    { step: 'start', status: 201, version: 1 },
    { step: 'save', status: 200, version: 2 },
    { step: 'other device', status: 200, version: 3 },
    { step: 'conflict', status: 409, version: 3 },
    { step: 'retry', status: 200, version: 4 },
    { step: 'complete', status: 200, version: 5 },
  ]);
  expect(result.location).toBe(`/api/sessions/${result.attempt.id}`);
  expect(result.attempt).toMatchObject({ user_id: userId, status: 'completed', version: 5, answers: { q1: 'A', q2: 'B', q3: 'C' } });
}, 120_000);

test('the typecheck is not vacuous: without the error code check, `error.session.version` does not compile', async () => {
  // the same program with the narrowing removed (and the expectation of an error lifted)
  const unchecked = PROGRAM.replace(
    "  if (error.errorCode !== 'SESSION_CONFLICT') throw new Error(`a stale save answered ${error.errorCode}`);\n",
    '',
  ).replace('  // @ts-expect-error -- not every error of this route carries the attempt: the error code tells which\n', '');
  expect(unchecked).not.toContain('SESSION_CONFLICT');
  expect(unchecked).not.toContain('@ts-expect-error');
  writeFileSync(path.join(dir, 'unchecked.ts'), unchecked);
  const tsc = await typecheck('unchecked.ts');
  expect(tsc.ok).toBe(false);
  expect(tsc.output).toMatch(/unchecked\.ts\(\d+,\d+\): error TS2339: Property 'session' does not exist on type/);
}, 60_000);
