import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

/*
 * The alert rules (deploy/prometheus/alerts.yml) with Prometheus' own tools, installed from
 * Debian's packages by scripts/services.sh --tests: promtool checks the Prometheus config and the
 * rules and runs their unit tests (alerts.test.yml: every alert fires on synthetic series and clears
 * again), amtool checks the Alertmanager config. Every alert has a runbook entry in docs/OPERATIONS.md.
 */

const ROOT = path.resolve(__dirname, '..');
const PROM = path.join(ROOT, 'deploy/prometheus');

function tool(command: string, args: string[], cwd = ROOT): string {
  const run = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (run.error) throw new Error(`${command} is not installed (bash scripts/services.sh --tests installs it): ${run.error.message}`);
  const output = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${run.status}:\n${output}`);
  return output;
}

interface Rule {
  alert: string;
  expr: string;
  annotations: { runbook: string; summary: string };
}
const rules: Rule[] = parse(readFileSync(path.join(PROM, 'alerts.yml'), 'utf8')).groups.flatMap((g: { rules: Rule[] }) => g.rules);
const tests = parse(readFileSync(path.join(PROM, 'alerts.test.yml'), 'utf8')).tests as Array<{
  alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }>;
}>;

test('promtool: the Prometheus config with its rule file, and the rules, are valid', () => {
  expect(tool('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml'])).toMatch(/SUCCESS: 1 rule files found/);
  expect(tool('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yml'])).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('promtool: the rules’ unit tests pass', () => {
  expect(tool('promtool', ['test', 'rules', 'alerts.test.yml'], PROM)).toMatch(/SUCCESS/);
});

test('every alert is tested firing and cleared', () => {
  for (const { alert } of rules) {
    const cases = tests.flatMap((t) => t.alert_rule_test).filter((c) => c.alertname === alert);
    expect({ alert, fires: cases.some((c) => c.exp_alerts.length > 0) }).toEqual({ alert, fires: true });
    expect({ alert, quiet: cases.some((c) => c.exp_alerts.length === 0) }).toEqual({ alert, quiet: true });
  }
});

test('the issue’s alerts are all there', () => {
  expect(rules.map((r) => r.alert).sort()).toEqual(
    [
      'DependencyDown',
      'HighErrorRatio',
      'InstanceDown',
      'JobsFailedSetGrowing',
      'JobsFailing',
      'PersistLagHigh',
      'QueueLagHigh',
      'RoleDown',
      'ServiceUnavailableBurst',
      'UnpersistedAttemptsOld',
      'WebhookDeadLettered',
    ].sort(),
  );
});

test('every alert links a runbook entry of docs/OPERATIONS.md that says what it means and what to do', () => {
  const runbook = readFileSync(path.join(ROOT, 'docs/OPERATIONS.md'), 'utf8');
  for (const { alert, annotations } of rules) {
    expect(annotations.runbook).toBe(`docs/OPERATIONS.md#${alert.toLowerCase()}`);
    const section = runbook.split(/^### /m).find((s) => s.startsWith(`${alert}\n`));
    expect({ alert, section: section !== undefined }).toEqual({ alert, section: true });
    expect(section).toMatch(/\*\*What it means\.\*\*/);
    expect(section).toMatch(/\*\*What to do\.\*\*/);
  }
});

test('amtool: the Alertmanager config is valid', () => {
  expect(tool('amtool', ['check-config', 'deploy/alertmanager/alertmanager.yml'])).toMatch(/SUCCESS/);
});
