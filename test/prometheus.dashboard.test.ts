import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { sleepUntil, waitFor } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { AttemptClient, rowOf } from './support/workerScenario';
import { request } from './support/http';
import { freePort } from './support/ports';

/*
 * The Grafana dashboard and the alert rules against a real Prometheus (Debian's, installed by
 * scripts/services.sh --tests, on a port of its own) scraping a real run of every role. Traffic
 * touches every panel: starts, writes, a conflict, a cache miss, an expiry, a completion with its
 * webhook, a 404. Then every expression of every panel is evaluated through Prometheus' HTTP API:
 * each returns series with a number, a panel about failures shows 0 rather than no data, no series
 * arrives as `exported_job`, the request rate has no `/metrics`, and every alert rule evaluates.
 */

const ROOT = path.resolve(__dirname, '..');
const stores = useIsolatedStores();
const SCRAPE_SECONDS = 1;
/** What the panels' $__rate_interval becomes: long enough to hold the whole run's traffic. */
const RATE_INTERVAL = '2m';

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string; legendFormat?: string }>;
}
const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/dashboards/quiz-sessions.json'), 'utf8')) as { panels: Panel[] };
const panels = dashboard.panels.filter((p) => p.type !== 'row');

/** Panels that count failures: with none, they must read 0, not "No data". */
const FAILURE_PANELS = ['Error ratio', '5xx by route and status code', 'Webhook dead letters and backlog'];

let prometheus: ChildProcess | undefined;
let promUrl = '';
let dir = '';
let receiver: Server | undefined;
const received: string[] = [];

type Series = { metric: Record<string, string>; value: [number, string] };

async function query(expr: string): Promise<Series[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: Series[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

const expand = (expr: string) => expr.replace(/\$__rate_interval/g, RATE_INTERVAL).replace(/\$__interval/g, '15s');

beforeAll(async () => {
  if (spawnSync('prometheus', ['--version']).error)
    throw new Error('prometheus is not installed: bash scripts/services.sh --tests installs it');
  dir = mkdtempSync(path.join(os.tmpdir(), 'quiz-prom-'));
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
}, 30_000);

afterAll(async () => {
  prometheus?.kill('SIGKILL');
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('every dashboard panel returns series after real traffic, failures read 0, and every alert rule evaluates', async () => {
  const address = receiver!.address() as { port: number };
  const ports = { persist: await freePort(), lifecycle: await freePort(), webhook: await freePort() };
  const env = {
    ...stores().env,
    PERSIST_DELAY_SECONDS: 1,
    SWEEP_INTERVAL_SECONDS: 600,
    WEBHOOK_URLS: `http://127.0.0.1:${address.port}/hook`,
    WEBHOOK_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
  };
  const [api] = await Promise.all([
    startProcess('api', env),
    startProcess('persist-worker', { ...env, METRICS_PORT: ports.persist }),
    startProcess('lifecycle-worker', { ...env, METRICS_PORT: ports.lifecycle }),
    startProcess('webhook-worker', { ...env, METRICS_PORT: ports.webhook }),
  ]);

  // Prometheus as deploy/prometheus/prometheus.yml has it (same job names and rule file), with
  // static targets for this run's processes and a 1 s scrape
  const apiPort = new URL(api.url!).port;
  const deployed = parse(readFileSync(path.join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: Array<{ job_name: string }>;
  };
  const target: Record<string, string> = {
    api: `127.0.0.1:${apiPort}`,
    'persist-worker': `127.0.0.1:${ports.persist}`,
    'lifecycle-worker': `127.0.0.1:${ports.lifecycle}`,
    'webhook-worker': `127.0.0.1:${ports.webhook}`,
  };
  expect(deployed.scrape_configs.map((s) => s.job_name).sort()).toEqual(Object.keys(target).sort());
  const config = {
    global: { scrape_interval: `${SCRAPE_SECONDS}s`, scrape_timeout: `${SCRAPE_SECONDS}s`, evaluation_interval: `${SCRAPE_SECONDS}s` },
    rule_files: [path.join(ROOT, 'deploy/prometheus/alerts.yml')],
    scrape_configs: Object.entries(target).map(([job, t]) => ({
      job_name: job,
      metrics_path: '/metrics',
      static_configs: [{ targets: [t] }],
    })),
  };
  writeFileSync(path.join(dir, 'prometheus.yml'), JSON.stringify(config));
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  let promLog = '';
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
  await waitFor(
    'Prometheus ready',
    async () => {
      const res = await fetch(`${promUrl}/-/ready`).catch(() => null);
      return res?.status === 200;
    },
    20_000,
  ).catch((err) => {
    throw new Error(`${String(err)}\n${promLog}`);
  });
  await waitFor('every target scraped and up', async () => (await query('up == 1')).length === 4, 20_000);

  // the traffic, twice: a series Prometheus first sees with a count already in it has no rate yet
  // (rate() needs two samples), so the second round, after a scrape, is what the panels show
  const client = new AttemptClient(api.url!);
  const round = async () => {
    const kept = await client.start();
    const done = await client.start();
    const written = await client.progress(kept.id, { q1: 'A' }, 1);
    const stale = await request(api.url!, 'PATCH', `/api/sessions/${kept.id}/progress`, {
      answers: { q2: 'B' },
      version: written.version - 1,
    });
    expect(stale.status).toBe(409);
    await client.progress(done.id, { q1: 'C' });
    await client.complete(done.id);
    expect((await client.get(kept.id)).status).toBe(200);
    expect((await client.get(randomUUID())).status).toBe(404);
    return { kept, done, written };
  };
  await round();
  await waitFor(
    'a scrape of the first round',
    async () => (await query('sum(http_request_duration_seconds_count{status_code="404"}) > 0')).length === 1,
  );
  const timed = await client.start(1);
  const { kept, done, written } = await round();
  await waitFor('kept persisted', async () => (await rowOf(stores().knex, kept.id)).version === written.version, 10_000);
  await sleepUntil(Date.parse(timed.expires_at!), 100);
  await waitFor('timed expired', async () => (await rowOf(stores().knex, timed.id)).status === 'expired', 10_000);
  await waitFor('the completion’s webhook delivered', () => received.some((b) => b.includes(done.id)), 15_000);
  // everything above scraped: Prometheus has seen the persist and expiry jobs and the delivery
  await waitFor(
    'the jobs and the delivery scraped',
    async () =>
      (await query('sum(job_duration_seconds_count{queue="session-lifecycle",job_name="expire-window",outcome="completed"}) > 0'))
        .length === 1 && (await query('sum(quiz_webhook_deliveries_total{outcome="delivered"}) > 0')).length === 1,
    15_000,
  );

  const empty: string[] = [];
  const nonNumeric: string[] = [];
  for (const panel of panels) {
    for (const t of panel.targets ?? []) {
      const result = await query(expand(t.expr));
      if (result.length === 0) empty.push(`${panel.title}: ${t.expr}`);
      // a panel may hold idle series (a quantile of a queue with no jobs is NaN), but it shows a number
      else if (!result.some((s) => Number.isFinite(Number(s.value[1])))) nonNumeric.push(`${panel.title}: ${t.expr}`);
    }
  }
  expect(empty).toEqual([]);
  expect(nonNumeric).toEqual([]);

  // nothing failed: the failure panels read exactly 0
  for (const title of FAILURE_PANELS) {
    const panel = panels.find((p) => p.title === title)!;
    const expr = expand(panel.targets![0].expr);
    const values = (await query(expr)).map((s) => Number(s.value[1]));
    expect({ title, values }).toEqual({ title, values: [0] });
  }
  // the 4xx ratio counts the conflict and the 404
  expect(Number((await query(expand(panels.find((p) => p.title === 'Error ratio')!.targets![1].expr)))[0].value[1])).toBeGreaterThan(0);
  // the jobs panels tell the expiry from the sweep by the service's job_name, and nothing clashed
  const byJob = await query(expand(panels.find((p) => p.title === 'Jobs by outcome')!.targets![0].expr));
  expect(byJob.map((s) => s.metric.job_name)).toEqual(expect.arrayContaining(['expire-window', 'persist-window', 'deliver-webhook']));
  expect(await query('count({exported_job!=""})')).toEqual([]);
  // the request rate is the clients': Prometheus' scrapes of /metrics are not in it
  expect(await query('http_request_duration_seconds_count{route=~".*metrics.*"}')).toEqual([]);
  // every process reaches its dependencies
  const deps = await query('dependency_up');
  expect(deps.map((s) => `${s.metric.job} ${s.metric.dependency} ${s.value[1]}`).sort()).toEqual(
    Object.keys(target)
      .flatMap((job) => [`${job} postgres 1`, `${job} redis 1`])
      .sort(),
  );
  // the backlog gauges: the persist worker reads them, and nothing is waiting now
  expect((await query('session_dirty_oldest_seconds')).map((s) => s.metric.job)).toEqual(['persist-worker']);

  // the alert rules are loaded and evaluate without error against the real series, and none fires
  // (RoleDown and friends read `up` of the same job names as the deployment)
  await waitFor(
    'every rule evaluated',
    async () => {
      const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
        data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; state: string }> }> };
      };
      const rules = res.data.groups.flatMap((g) => g.rules);
      return rules.length === 11 && rules.every((r) => r.health === 'ok');
    },
    10_000,
  );
  const alerts = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: { alertname: string } }> } };
  expect(alerts.data.alerts.map((a) => a.labels.alertname)).toEqual([]);
}, 120_000);
