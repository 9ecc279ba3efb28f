import { sessionKey } from '../src/shared/store/sessionStore';
import { sleepUntil, waitFor } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { AttemptClient, rowOf } from './support/workerScenario';
import { request } from './support/http';
import { freePort } from './support/ports';

/*
 * After real traffic through real processes (starts, writes, a conflict, a cache miss, a
 * completion, an expiry), the metrics endpoints of the API and of each worker expose the series
 * the dashboards query, with non-zero values where traffic happened.
 */

const stores = useIsolatedStores();

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Parses the Prometheus text format into samples. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/plain/);
  return parseMetrics(await res.text());
}

/** The sum of a metric's samples whose labels include `where`. */
function total(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

test('the API and both workers expose every series, non-zero where traffic happened', async () => {
  const persistPort = await freePort();
  const lifecyclePort = await freePort();
  const env = { ...stores().env, PERSIST_DELAY_SECONDS: 1, SWEEP_INTERVAL_SECONDS: 600 };
  const [api] = await Promise.all([
    startProcess('api', env),
    startProcess('persist-worker', { ...env, METRICS_PORT: persistPort }),
    startProcess('lifecycle-worker', { ...env, METRICS_PORT: lifecyclePort }),
  ]);
  const client = new AttemptClient(api.url!);

  const timed = await client.start(1);
  const kept = await client.start();
  const done = await client.start();
  const written = await client.progress(kept.id, { q1: 'A' }, 1);
  // a stale version: 409
  const stale = await request(api.url!, 'PATCH', `/api/sessions/${kept.id}/progress`, {
    answers: { q2: 'B' },
    version: written.version - 1,
  });
  expect(stale.status).toBe(409);
  await client.progress(done.id, { q1: 'C' });
  await client.complete(done.id);
  // a read from Redis, then a cache miss served by PostgreSQL
  expect((await client.get(kept.id)).status).toBe(200);
  await stores().redis.del(sessionKey(done.id));
  expect((await client.get(done.id)).status).toBe(200);
  // the write-behind and the expiry happen
  await waitFor('kept persisted', async () => (await rowOf(stores().knex, kept.id)).version === written.version, 10_000);
  await sleepUntil(Date.parse(timed.expires_at!), 100);
  await waitFor('timed expired', async () => (await rowOf(stores().knex, timed.id)).status === 'expired', 10_000);

  const apiMetrics = await scrape(`${api.url}/metrics`);
  expect(
    total(apiMetrics, 'http_request_duration_seconds_count', { route: '/api/sessions/:id/progress', method: 'PATCH', status_code: '200' }),
  ).toBeGreaterThanOrEqual(2);
  expect(total(apiMetrics, 'http_request_duration_seconds_count', { route: '/api/sessions/:id/progress', status_code: '409' })).toBe(1);
  expect(total(apiMetrics, 'http_request_duration_seconds_count', { route: '/api/sessions/start', status_code: '201' })).toBe(3);
  expect(total(apiMetrics, 'http_request_duration_seconds_bucket', { route: '/api/sessions/:id', le: '+Inf' })).toBeGreaterThanOrEqual(2);
  expect(total(apiMetrics, 'session_version_conflicts_total')).toBe(1);
  expect(total(apiMetrics, 'session_cache_reads_total', { source: 'redis' })).toBeGreaterThanOrEqual(1);
  expect(total(apiMetrics, 'session_cache_reads_total', { source: 'postgres' })).toBeGreaterThanOrEqual(1);
  expect(total(apiMetrics, 'session_transitions_total', { status: 'completed' })).toBe(1);
  for (const state of ['waiting', 'active', 'delayed', 'failed']) {
    expect(apiMetrics.some((s) => s.name === 'queue_jobs' && s.labels.queue === 'persist-snapshot' && s.labels.state === state)).toBe(true);
    expect(apiMetrics.some((s) => s.name === 'queue_jobs' && s.labels.queue === 'session-lifecycle' && s.labels.state === state)).toBe(
      true,
    );
  }
  expect(total(apiMetrics, 'queue_jobs', { queue: 'session-lifecycle', state: 'delayed' })).toBeGreaterThanOrEqual(1); // kept's and done's expiry jobs
  expect(total(apiMetrics, 'process_resident_memory_bytes')).toBeGreaterThan(0);

  // a worker counts a job when its handler returns, which is after the row it wrote is visible
  // (and the lag once the attempt is marked clean): poll the counters rather than race them
  let persistMetrics: Sample[] = [];
  await waitFor('the persist worker to count its job', async () => {
    persistMetrics = await scrape(`http://127.0.0.1:${persistPort}/metrics`);
    return (
      total(persistMetrics, 'job_duration_seconds_count', {
        queue: 'persist-snapshot',
        job_name: 'persist-window',
        outcome: 'completed',
      }) >= 1 && total(persistMetrics, 'persist_lag_seconds_count') >= 1
    );
  });
  expect(total(persistMetrics, 'queue_lag_seconds_count', { queue: 'persist-snapshot' })).toBeGreaterThanOrEqual(1);
  expect(
    total(persistMetrics, 'job_duration_seconds_count', { queue: 'persist-snapshot', job_name: 'persist-window', outcome: 'completed' }),
  ).toBeGreaterThanOrEqual(1);
  expect(total(persistMetrics, 'persist_lag_seconds_count')).toBeGreaterThanOrEqual(1);
  // the write-behind delay is about the window (1 s), not more than its histogram's +5 s bound
  const lagSum = total(persistMetrics, 'persist_lag_seconds_sum') / total(persistMetrics, 'persist_lag_seconds_count');
  expect(lagSum).toBeGreaterThan(0.5);
  expect(lagSum).toBeLessThan(6);

  let lifecycleMetrics: Sample[] = [];
  await waitFor('the lifecycle worker to count its expiry', async () => {
    lifecycleMetrics = await scrape(`http://127.0.0.1:${lifecyclePort}/metrics`);
    return (
      total(lifecycleMetrics, 'job_duration_seconds_count', {
        queue: 'session-lifecycle',
        job_name: 'expire-window',
        outcome: 'completed',
      }) >= 1 && total(lifecycleMetrics, 'session_transitions_total', { status: 'expired' }) >= 1
    );
  });
  expect(total(lifecycleMetrics, 'queue_lag_seconds_count', { queue: 'session-lifecycle' })).toBeGreaterThanOrEqual(1);
  expect(
    total(lifecycleMetrics, 'job_duration_seconds_count', { queue: 'session-lifecycle', job_name: 'expire-window', outcome: 'completed' }),
  ).toBeGreaterThanOrEqual(1);
  expect(total(lifecycleMetrics, 'session_transitions_total', { status: 'expired' })).toBe(1);

  // no label carries a per-attempt or per-user value
  for (const s of [...apiMetrics, ...persistMetrics, ...lifecycleMetrics]) {
    for (const value of Object.values(s.labels)) expect(value).not.toMatch(UUID);
    expect(Object.keys(s.labels)).not.toContain('user_id');
  }
}, 60_000);

test('with API_METRICS_PORT, /metrics moves off the public port', async () => {
  const metricsPort = await freePort();
  const api = await startProcess('api', { ...stores().env, API_METRICS_PORT: metricsPort });
  const onApi = await request(api.url!, 'GET', '/metrics');
  expect(onApi.status).toBe(404);
  expect(onApi.body.errorCode).toBe('ROUTE_NOT_FOUND');
  const separate = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(separate.some((s) => s.name === 'http_request_duration_seconds_count')).toBe(true);
}, 30_000);
