// npm run lint:openapi: the OpenAPI document the service serves (from dist/: the npm script builds
// first) through Redocly's recommended ruleset and Spectral's spectral:oas (redocly.yaml and
// .spectral.yaml only extend them). Fails on any problem, warnings included, as the test that CI
// runs does (test/openapi.lint.test.ts).
const { spawnSync } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const { openApiDocument } = require(path.join(root, 'dist/src/api/openapi'));
const dir = mkdtempSync(path.join(tmpdir(), 'lint-openapi-'));
const file = path.join(dir, 'openapi.json');
writeFileSync(file, JSON.stringify(openApiDocument(), null, 2));
const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
let problems = 0;
try {
  // redocly fails on errors only, so its report decides (warnings count too)
  const redocly = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules/@redocly/cli/bin/cli.js'), 'lint', file, '--config', path.join(root, 'redocly.yaml'), '--format=json'],
    { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const report = JSON.parse(redocly.stdout);
  for (const p of report.problems) console.log(`redocly ${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
  console.log(`redocly (recommended): ${report.totals.errors} errors, ${report.totals.warnings} warnings`);
  problems += report.problems.length;
  // spectral fails on any result with --fail-severity hint
  const spectral = spawnSync(
    process.execPath,
    [
      path.join(root, 'node_modules/@stoplight/spectral-cli/dist/index.js'),
      'lint',
      file,
      '--ruleset',
      path.join(root, '.spectral.yaml'),
      '--fail-severity',
      'hint',
    ],
    { env, stdio: 'inherit' },
  );
  if (spectral.status !== 0) problems += 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (problems > 0) process.exit(1);
