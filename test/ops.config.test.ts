import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, loadConfig } from '../src/shared/config';
import { createLogger } from '../src/shared/logger';
import { Metrics } from '../src/shared/metrics';
import { Shutdown } from '../src/shared/shutdown';
import { ROLES as PROCESS_ROLES } from '../src/shared/roles';

/*
 * The deployment files agree with each other and with the code: docker-compose.yml, the Procfile,
 * the package scripts, the Prometheus scrape config and the Grafana dashboard. Docker cannot run on
 * the development machines, so this stands in for `docker compose config` and a look at Grafana.
 */

const ROOT = join(__dirname, '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const yamlFile = <T>(path: string): T => parseYaml(read(path), { merge: true }) as T;

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: Array<string | { published?: string | number; target?: number }>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string | string[] };
  container_name?: string;
  restart?: string;
}

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  dns_sd_configs?: Array<{ names: string[]; type?: string; port?: number }>;
  static_configs?: Array<{ targets: string[] }>;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
}

const compose = yamlFile<{ services: Record<string, ComposeService>; volumes?: Record<string, unknown> }>('docker-compose.yml');
const services = compose.services;
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
const prometheus = yamlFile<{ scrape_configs: ScrapeConfig[] }>('deploy/prometheus/prometheus.yml');

/** The process roles src/main.ts serves (their list lives in src/shared/roles.ts). */
const ROLES: string[] = [...PROCESS_ROLES];
/** Roles an operator runs: `all` is for local development only. */
const DEPLOYED_ROLES = ROLES.filter((role) => role !== 'all');
/** Roles that run until stopped (migrate is one-shot). */
const LONG_RUNNING_ROLES = DEPLOYED_ROLES.filter((role) => role !== 'migrate');
const WORKER_ROLES = LONG_RUNNING_ROLES.filter((role) => role !== 'api');

/** Where the build puts src/main.ts: tsconfig.build.json's outDir and rootDir. */
const ENTRY_POINT: string = (() => {
  const base = JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir?: string; rootDir?: string } };
  const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { outDir?: string; rootDir?: string }; include: string[] };
  const outDir = build.compilerOptions.outDir ?? base.compilerOptions.outDir ?? '.';
  const rootDir = build.compilerOptions.rootDir ?? base.compilerOptions.rootDir ?? '.';
  if (!build.include.includes('src')) throw new Error('tsconfig.build.json does not build src/');
  return posix.join(outDir, posix.relative(rootDir, 'src/main.ts')).replace(/\.ts$/, '.js');
})();

/** `${NAME:-default}` and `${NAME}` as Compose interpolates them with an empty environment. */
const interpolate = (value: string): string =>
  value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, (_, fallback: string | undefined) => fallback ?? '');

const commandText = (command: string | string[] | undefined): string => (Array.isArray(command) ? command.join(' ') : (command ?? ''));

/** Every `node <script> <role>` a command runs. */
function entryPointCalls(command: string): Array<{ script: string; role: string }> {
  return [...command.matchAll(/\bnode\s+(?:--[\w-]+(?:=\S+)?\s+)*(\S*main\.js)\s+([A-Za-z0-9_-]+)/g)].map((m) => ({
    script: m[1],
    role: m[2],
  }));
}

/** Every package script a command runs (`npm run <script>`, `npm start`, `npm test`); comment lines skipped. */
function npmScripts(command: string): string[] {
  const code = command
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n');
  return [...code.matchAll(/\bnpm\s+(?:run(?:-script)?\s+(?:--silent\s+)?([A-Za-z0-9:_-]+)|(start|test|stop|restart)\b)/g)].map(
    (m) => m[1] ?? m[2],
  );
}

function procfile(): Map<string, string> {
  const lines = new Map<string, string>();
  for (const line of read('Procfile').split('\n')) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const match = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line);
    if (!match) throw new Error(`Procfile line is not "name: command": ${line}`);
    lines.set(match[1], match[2]);
  }
  return lines;
}

/** The compose service that runs a role (by its command). */
function serviceForRole(role: string): [string, ComposeService] {
  const found = Object.entries(services).filter(([, s]) => entryPointCalls(commandText(s.command)).some((c) => c.role === role));
  expect(found.map(([name]) => name)).toHaveLength(1);
  return found[0];
}

/** The environment a compose service gives the process, interpolated with the defaults. */
function environmentOf(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.environment ?? {})) env[key] = interpolate(String(value ?? ''));
  return env;
}

const healthcheckText = (service: ComposeService): string => commandText(service.healthcheck?.test);

/** The API's HTTP port in compose. */
const apiPort = (): number => loadConfig(environmentOf(serviceForRole('api')[1])).PORT;

/** The port a role serves /metrics on in compose: the API's PORT (or API_METRICS_PORT), a worker's METRICS_PORT. */
function metricsPortOf(role: string): number {
  const config = loadConfig(environmentOf(serviceForRole(role)[1]));
  return role === 'api' ? (config.API_METRICS_PORT ?? config.PORT) : config.METRICS_PORT;
}

/** Bind mounts of a service as [host path relative to the repo, container path]. */
function bindMounts(service: ComposeService): Array<[string, string]> {
  return (service.volumes ?? [])
    .filter((v) => v.startsWith('./') || v.startsWith('../'))
    .map((v) => {
      const [host, container] = v.split(':');
      return [posix.normalize(host), container];
    });
}

describe('Procfile', () => {
  const lines = procfile();

  test('has a line for every deployed role, and release runs the migrations', () => {
    const covered = [...lines.values()].flatMap((command) => entryPointCalls(command).map((c) => c.role));
    for (const role of DEPLOYED_ROLES) expect(covered).toContain(role);
    expect(entryPointCalls(lines.get('release') ?? '')).toEqual([{ script: ENTRY_POINT, role: 'migrate' }]);
  });

  test('every command runs the build output with a real role, or an npm script that exists', () => {
    for (const [name, command] of lines) {
      const calls = entryPointCalls(command);
      const scripts = npmScripts(command);
      expect({ name, runs: calls.length + scripts.length }).toEqual({ name, runs: 1 });
      for (const call of calls) {
        expect(call.script).toBe(ENTRY_POINT);
        expect(ROLES).toContain(call.role);
      }
      for (const script of scripts) expect(Object.keys(pkg.scripts)).toContain(script);
    }
  });

  test('every long-running role gets the young generation the benchmarks were measured with', () => {
    for (const [name, command] of lines) {
      if (name === 'release') continue;
      expect({ name, flag: /--max-semi-space-size=64\b/.test(command) }).toEqual({ name, flag: true });
    }
    expect(read('Dockerfile')).toMatch(/^ENV NODE_OPTIONS=--max-semi-space-size=64$/m);
    expect(read('scripts/start.sh')).toMatch(/NODE_OPTIONS="--max-semi-space-size=64/);
  });

  test('worker roles get distinct metrics ports, so they can run side by side', () => {
    const ports = WORKER_ROLES.map((role) => {
      const command = [...lines.values()].find((c) => entryPointCalls(c).some((call) => call.role === role)) ?? '';
      const match = /\bMETRICS_PORT=(\S+)/.exec(command);
      expect(match).not.toBeNull();
      return interpolate(match![1]);
    });
    expect(new Set(ports).size).toBe(WORKER_ROLES.length);
  });
});

describe('package scripts', () => {
  test('every role they start is real and every script file they run exists', () => {
    const texts = Object.values(pkg.scripts);
    for (const text of texts) {
      for (const call of entryPointCalls(text)) {
        expect(call.script).toBe(ENTRY_POINT);
        expect(ROLES).toContain(call.role);
      }
      for (const [, file] of text.matchAll(/\bbash\s+(\S+\.sh)/g)) expect(existsSync(join(ROOT, file))).toBe(true);
    }
  });

  test('npm start runs every long-running role and the migrations, as the Procfile does', () => {
    expect(pkg.scripts.start).toBe('bash scripts/start.sh');
    const roles = entryPointCalls(read('scripts/start.sh')).map((c) => c.role);
    for (const role of [...LONG_RUNNING_ROLES, 'migrate']) expect(roles).toContain(role);
    for (const script of npmScripts(read('scripts/start.sh'))) expect(Object.keys(pkg.scripts)).toContain(script);
  });

  test('the gates the README names exist', () => {
    for (const script of ['build', 'start', 'test', 'lint', 'typecheck']) expect(pkg.scripts[script]).toBeDefined();
  });
});

describe('docker-compose.yml', () => {
  test('runs every deployed role as its own service, named after the role, with the build output', () => {
    for (const role of DEPLOYED_ROLES) {
      const [name, service] = serviceForRole(role);
      expect(name).toBe(role);
      for (const call of entryPointCalls(commandText(service.command))) expect(call.script).toBe(ENTRY_POINT);
    }
    for (const [, service] of Object.entries(services)) {
      for (const call of entryPointCalls(commandText(service.command))) expect(ROLES).toContain(call.role);
    }
  });

  test('builds the app image from a Dockerfile that runs the build script and the entry point', () => {
    const dockerfile = read('Dockerfile');
    expect(dockerfile).toMatch(/^FROM node:20-slim/m);
    for (const script of npmScripts(dockerfile)) expect(Object.keys(pkg.scripts)).toContain(script);
    expect(npmScripts(dockerfile)).toContain('build');
    expect(dockerfile).toContain(`"${ENTRY_POINT}"`);
    for (const role of DEPLOYED_ROLES) {
      const [, service] = serviceForRole(role);
      expect(service.build).toBe('.');
    }
  });

  test('the migration is one-shot and every long-running role starts after it succeeded', () => {
    const [, migrate] = serviceForRole('migrate');
    expect(migrate.restart).toBe('no');
    expect(migrate.depends_on?.postgres?.condition).toBe('service_healthy');
    for (const role of LONG_RUNNING_ROLES) {
      const [, service] = serviceForRole(role);
      expect(service.depends_on?.migrate?.condition).toBe('service_completed_successfully');
      expect(service.depends_on?.redis?.condition).toBe('service_healthy');
    }
  });

  test('app services set only variables the service reads, with values it accepts', () => {
    const known = new Set([...Object.keys(configSchema.shape), 'SERVICE_ROLE']);
    for (const role of DEPLOYED_ROLES) {
      const env = environmentOf(serviceForRole(role)[1]);
      for (const key of Object.keys(env)) expect({ role, key, known: known.has(key) }).toEqual({ role, key, known: true });
      const config = loadConfig(env);
      // the stores are the compose services, not localhost
      expect(services[new URL(config.DATABASE_URL).hostname]?.image).toMatch(/^postgres:15/);
      expect(services[new URL(config.REDIS_URL).hostname]?.image).toMatch(/^redis:7/);
    }
  });

  test('the API scales: no container name, no host port, and a health check on /ready', () => {
    const [, api] = serviceForRole('api');
    expect(api.container_name).toBeUndefined();
    expect(api.ports).toBeUndefined();
    const port = apiPort();
    expect(port).toBe(8002);
    expect(healthcheckText(api)).toContain(`127.0.0.1:${port}/ready`);
  });

  test('the API is reachable on host port 8002 through a proxy to the api service', () => {
    const publishing = Object.entries(services).filter(([, s]) =>
      (s.ports ?? []).some((p) => (typeof p === 'string' ? interpolate(p).startsWith('8002:') : String(p.published) === '8002')),
    );
    expect(publishing.map(([name]) => name)).toEqual(['proxy']);
    const [config] = bindMounts(publishing[0][1]);
    expect(read(config[0])).toContain(`http://api:${apiPort()}`);
    expect(publishing[0][1].depends_on?.api?.condition).toBe('service_healthy');
  });

  test('each worker serves /metrics and /health on its own METRICS_PORT, health-checked', () => {
    const ports = WORKER_ROLES.map((role) => {
      const [, service] = serviceForRole(role);
      expect(service.container_name).toBeUndefined();
      expect(service.environment?.METRICS_PORT).toBeDefined();
      const port = metricsPortOf(role);
      expect(healthcheckText(service)).toContain(`127.0.0.1:${port}/health`);
      return port;
    });
    expect(new Set(ports).size).toBe(WORKER_ROLES.length);
  });

  test('Redis keeps what it acknowledged: AOF every second, no eviction, a volume, a health check', () => {
    const redis = services.redis;
    const command = commandText(redis.command);
    expect(command).toMatch(/--appendonly yes\b/);
    expect(command).toMatch(/--appendfsync everysec\b/);
    expect(command).toMatch(/--maxmemory-policy noeviction\b/);
    expect(redis.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
    expect(healthcheckText(redis)).toContain('redis-cli ping');
  });

  test('PostgreSQL is health-checked with pg_isready', () => {
    expect(services.postgres.image).toBe('postgres:15');
    expect(healthcheckText(services.postgres)).toContain('pg_isready');
  });

  test('every bind-mounted file exists and every named volume is declared', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [host] of bindMounts(service))
        expect({ name, host, exists: existsSync(join(ROOT, host)) }).toEqual({ name, host, exists: true });
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0];
        if (!source.startsWith('.') && !source.startsWith('/')) expect(Object.keys(compose.volumes ?? {})).toContain(source);
      }
    }
  });

  test('Grafana gets the Prometheus datasource and the dashboard as its home page', () => {
    const grafana = services.grafana;
    const mounts = bindMounts(grafana);
    const mountOf = (host: string) => mounts.find(([h]) => h === host)?.[1];
    const provisioning = mountOf('deploy/grafana/provisioning');
    const dashboards = mountOf('deploy/grafana/dashboards');
    expect(provisioning).toBe('/etc/grafana/provisioning');
    expect(dashboards).toBeDefined();

    const providers = yamlFile<{ providers: Array<{ type: string; options: { path: string } }> }>(
      'deploy/grafana/provisioning/dashboards/quiz-sessions.yml',
    );
    expect(providers.providers.map((p) => p.options.path)).toContain(dashboards);
    const home = String(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH);
    expect(home.startsWith(`${dashboards}/`)).toBe(true);
    expect(existsSync(join(ROOT, 'deploy/grafana/dashboards', posix.relative(dashboards!, home)))).toBe(true);

    const datasources = yamlFile<{ datasources: Array<{ uid: string; type: string; url: string }> }>(
      'deploy/grafana/provisioning/datasources/prometheus.yml',
    );
    const prom = datasources.datasources.find((d) => d.type === 'prometheus');
    expect(prom).toBeDefined();
    const url = new URL(prom!.url);
    expect(services[url.hostname]?.image).toMatch(/^prom\/prometheus/);
    expect(bindMounts(services[url.hostname]).map(([host]) => host)).toContain('deploy/prometheus/prometheus.yml');
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  /** host:port targets a scrape config reaches (DNS names with their port, or static targets). */
  const targetsOf = (scrape: ScrapeConfig): string[] => [
    ...(scrape.dns_sd_configs ?? []).flatMap((sd) => sd.names.map((name) => `${name}:${sd.port}`)),
    ...(scrape.static_configs ?? []).flatMap((sc) => sc.targets),
  ];

  test('scrapes every long-running role on the port it serves /metrics on', () => {
    for (const role of LONG_RUNNING_ROLES) {
      const [service] = serviceForRole(role);
      const target = `${service}:${metricsPortOf(role)}`;
      const scrapes = prometheus.scrape_configs.filter((s) => targetsOf(s).includes(target));
      expect({ role, target, jobs: scrapes.length }).toEqual({ role, target, jobs: 1 });
      expect(scrapes[0].metrics_path ?? '/metrics').toBe('/metrics');
    }
  });

  test('finds every replica through Docker DNS, so scaled roles need no edits', () => {
    for (const role of LONG_RUNNING_ROLES) {
      const scrape = prometheus.scrape_configs.find((s) => (s.dns_sd_configs ?? []).some((sd) => sd.names.includes(role)));
      expect(scrape?.dns_sd_configs?.[0]).toMatchObject({ type: 'A' });
    }
  });
});

describe('deploy/grafana/dashboards/quiz-sessions.json', () => {
  const dashboard = JSON.parse(read('deploy/grafana/dashboards/quiz-sessions.json')) as { uid: string; title: string; panels: Panel[] };
  const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');
  const expressions = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  /** Series names and label names the service exports: its own metrics and prom-client's defaults. */
  async function exported(): Promise<{ series: Set<string>; labels: Set<string> }> {
    const metrics = new Metrics('test');
    metrics.watchQueues([]);
    metrics.watchStreams(() => 0);
    metrics.watchDirtyBacklog(async () => ({ count: 0, oldestSince: null }));
    const shutdown = new Shutdown(createLogger('error', 'test'), 1000);
    metrics.watchDependencies({ redis: async () => 'PONG' }, shutdown);
    const series = new Set<string>();
    // labels Prometheus adds to every target, plus the registry's default label and histogram buckets
    const labels = new Set<string>(['job', 'instance', 'role', 'le']);
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      const type = String(metric.type);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) series.add(metric.name + suffix);
      else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) series.add(metric.name + suffix);
      else series.add(metric.name);
      for (const value of metric.values) for (const label of Object.keys(value.labels)) labels.add(label);
    }
    for (const metric of metrics.registry.getMetricsAsArray()) {
      for (const label of (metric as unknown as { labelNames?: string[] }).labelNames ?? []) labels.add(label);
    }
    await shutdown.run('test over');
    return { series, labels };
  }

  /** Series Prometheus itself records for every target. */
  const PROMETHEUS_SERIES = new Set(['up']);

  const KEYWORDS = new Set([
    'and',
    'or',
    'unless',
    'bool',
    'offset',
    'by',
    'without',
    'on',
    'ignoring',
    'group_left',
    'group_right',
    'inf',
    'nan',
    'atan2',
  ]);

  /** The metric names a PromQL expression selects (functions, keywords, labels and strings left out). */
  function metricNames(expr: string): string[] {
    const s = expr
      .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
      .replace(/\[[^\]]*\]/g, '')
      .replace(/\{[^}]*\}/g, '')
      .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
      .replace(/\$[A-Za-z_]\w*/g, '');
    const names: string[] = [];
    for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
      const index = m.index ?? 0;
      if (index > 0 && /[0-9.]/.test(s[index - 1])) continue; // the exponent of 1e-9
      if (/^\s*\(/.test(s.slice(index + m[0].length))) continue; // a function or an aggregation
      if (KEYWORDS.has(m[0])) continue;
      names.push(m[0]);
    }
    return names;
  }

  /** The label names an expression groups by or matches on. */
  function labelNames(expr: string): string[] {
    const grouped = [...expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap((m) =>
      m[1]
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean),
    );
    const matched = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
      [...m[1].matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]),
    );
    return [...grouped, ...matched];
  }

  test('is a dashboard Grafana can load: unique panel ids, a 24-column grid, a query on every panel', () => {
    expect(dashboard.uid).toBe('quiz-sessions');
    expect(dashboard.title).toBeTruthy();
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      if (panel.type === 'row') continue;
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.expr.trim()).not.toBe('');
    }
  });

  test('queries the provisioned Prometheus datasource', () => {
    const datasources = yamlFile<{ datasources: Array<{ uid: string }> }>('deploy/grafana/provisioning/datasources/prometheus.yml');
    const uids = datasources.datasources.map((d) => d.uid);
    for (const panel of queryPanels) {
      expect(uids).toContain(panel.datasource?.uid);
      for (const target of panel.targets ?? []) if (target.datasource) expect(uids).toContain(target.datasource.uid);
    }
  });

  test('the metric parser finds what an expression selects', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{status_code=~"5.."}[$__rate_interval])))',
      ),
    ).toEqual(['http_request_duration_seconds_bucket']);
    expect(metricNames('sum(rate(a_total[5m])) / clamp_min(sum(rate(b_count[5m])), 1e-9) > bool 0')).toEqual(['a_total', 'b_count']);
    expect(labelNames('sum by (le, queue) (rate(x_bucket{state!="failed"}[1m]))')).toEqual(['le', 'queue', 'state']);
  });

  test('every metric and label it queries is one the service exports', async () => {
    const { series, labels } = await exported();
    const missing = expressions.flatMap((expr) => metricNames(expr).filter((name) => !series.has(name) && !PROMETHEUS_SERIES.has(name)));
    expect(missing).toEqual([]);
    const unknownLabels = expressions.flatMap((expr) => labelNames(expr).filter((label) => !labels.has(label)));
    expect(unknownLabels).toEqual([]);
  });

  test('shows requests, errors, latency, queue lag and depth, persist lag, jobs, transitions, conflicts and cache reads', () => {
    const queried = new Set(expressions.flatMap(metricNames).map((name) => name.replace(/_(bucket|sum|count)$/, '')));
    for (const name of [
      'http_request_duration_seconds',
      'queue_lag_seconds',
      'queue_jobs',
      'job_duration_seconds',
      'persist_lag_seconds',
      'session_transitions_total',
      'session_version_conflicts_total',
      'session_cache_reads_total',
    ]) {
      expect(queried).toContain(name);
    }
    const all = expressions.join('\n');
    for (const q of ['0.5', '0.95', '0.99'])
      expect(all).toContain(`histogram_quantile(${q}, sum by (le, route) (rate(http_request_duration_seconds_bucket`);
    expect(all).toMatch(/status_code=~"5\.\."/);
    expect(all).toMatch(/status_code=~"4\.\."/);
  });
});

describe('README.md', () => {
  const readme = read('README.md');

  test('documents every configuration variable', () => {
    for (const key of [...Object.keys(configSchema.shape), 'SERVICE_ROLE'])
      expect({ key, documented: readme.includes(`\`${key}\``) }).toEqual({ key, documented: true });
  });

  test('lists the final name of every metric the service defines', async () => {
    const metrics = new Metrics('test');
    metrics.watchQueues([]);
    metrics.watchStreams(() => 0);
    metrics.watchDirtyBacklog(async () => ({ count: 0, oldestSince: null }));
    const shutdown = new Shutdown(createLogger('error', 'test'), 1000);
    metrics.watchDependencies({ redis: async () => 'PONG' }, shutdown);
    const own = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((name) => !/^(process|nodejs)_/.test(name));
    expect(own.length).toBeGreaterThan(5);
    for (const name of own) expect({ name, listed: readme.includes(`\`${name}\``) }).toEqual({ name, listed: true });
  });
});
