import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { openApiDocument } from '../src/api/openapi';

/*
 * The OpenAPI document passes Redocly's recommended ruleset and Spectral's spectral:oas with no
 * problem at all, errors and warnings alike (the project's redocly.yaml and .spectral.yaml only
 * extend those rulesets). Both CLIs run as a user runs them (`npm run lint:openapi` too), on the
 * document the service serves, written to a file.
 */

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..');
const REDOCLY = path.join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');
const SPECTRAL = path.join(ROOT, 'node_modules/@stoplight/spectral-cli/dist/index.js');
// no telemetry, no update check: the run is offline and says only what it found
const ENV = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' };

interface RedoclyReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }>;
}
interface SpectralResult {
  code: string;
  severity: number;
  message: string;
  path: string[];
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'openapi-lint-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `doc` as `name` and lints it with both tools (exit codes aside: the reports say it all). */
async function lint(doc: unknown, name: string): Promise<{ redocly: RedoclyReport; spectral: SpectralResult[] }> {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  const redocly = await run(process.execPath, [REDOCLY, 'lint', file, '--config', path.join(ROOT, 'redocly.yaml'), '--format=json'], {
    env: ENV,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }));
  const spectralOut = path.join(dir, `${name}.spectral.json`);
  await run(
    process.execPath,
    [
      SPECTRAL,
      'lint',
      file,
      '--ruleset',
      path.join(ROOT, '.spectral.yaml'),
      '--format',
      'json',
      '--output',
      spectralOut,
      '--fail-severity',
      'hint',
    ],
    { env: ENV, maxBuffer: 64 * 1024 * 1024 },
  ).catch(() => undefined);
  return {
    redocly: JSON.parse(redocly.stdout) as RedoclyReport,
    spectral: JSON.parse(readFileSync(spectralOut, 'utf8')) as SpectralResult[],
  };
}

const summary = (r: { redocly: RedoclyReport; spectral: SpectralResult[] }) => [
  ...r.redocly.problems.map((p) => `redocly ${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`),
  ...r.spectral.map((p) => `spectral ${['error', 'warning', 'info', 'hint'][p.severity]} ${p.code} at ${p.path.join('.')}: ${p.message}`),
];

test('redocly (recommended) and spectral (spectral:oas) find nothing: 0 errors, 0 warnings', async () => {
  const result = await lint(openApiDocument(), 'openapi.json');
  expect(summary(result)).toEqual([]);
  expect(result.redocly.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
}, 60_000);

test('the lint is not vacuous: the rules the document once broke are still checked', async () => {
  // the document with what issue 16 found missing taken out again
  const doc = structuredClone(openApiDocument()) as {
    info: Record<string, unknown>;
    tags: Array<Record<string, unknown>>;
    paths: Record<string, Record<string, Record<string, unknown>>>;
  };
  delete doc.info.license;
  delete doc.info.contact;
  delete doc.paths['/health'].get.security;
  delete doc.paths['/health'].get.description;
  const health = doc.paths['/health'].get.responses as Record<string, unknown>;
  for (const status of Object.keys(health)) if (status.startsWith('4')) delete health[status];
  delete doc.tags.find((t) => t.name === 'Operations')!.description;
  const result = await lint(doc, 'broken.json');
  const rules = new Set([
    ...result.redocly.problems.map((p) => `redocly ${p.ruleId}`),
    ...result.spectral.map((p) => `spectral ${p.code}`),
  ]);
  expect([...rules].sort()).toEqual(
    [
      'redocly info-license',
      'redocly operation-4xx-response',
      'redocly security-defined',
      'redocly tag-description',
      'spectral info-contact',
      'spectral operation-description',
    ].sort(),
  );
}, 60_000);
