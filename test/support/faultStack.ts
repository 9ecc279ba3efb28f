import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { startProcess, type ServiceProcess } from './processes';
import type { FinalAttempt, LoadAttempt } from './progressLoad';
import { rowsById } from './workerScenario';
import { LoadHttpClient } from './http';
import { freePort } from './ports';
import type { ServingRole } from '../../src/shared/roles';

/*
 * Shared steps of the fault tests (test/faults): the service as real processes, attempts to load,
 * the final state as the API and PostgreSQL hold it, and the figures line each test prints.
 */

/** The service's processes of one fault test. */
export interface FaultStack {
  apis: ServiceProcess[];
  persistWorkers: ServiceProcess[];
  lifecycleWorkers: ServiceProcess[];
  /** Every process's /metrics URL (the API's port, each worker's METRICS_PORT). */
  metricsUrls: string[];
}

/** Starts `apis` API processes and `workers` processes of each worker role, all with `env`. */
export async function startFaultStack(env: Record<string, string | number>, apis = 1, workers = 1): Promise<FaultStack> {
  const metricsUrls: string[] = [];
  const times = (n: number, role: Extract<ServingRole, 'api' | 'persist-worker' | 'lifecycle-worker'>) =>
    Promise.all(
      Array.from({ length: n }, async () => {
        if (role === 'api') {
          const proc = await startProcess(role, env);
          metricsUrls.push(`${proc.url}/metrics`);
          return proc;
        }
        const port = await freePort();
        metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
        return startProcess(role, { ...env, METRICS_PORT: port });
      }),
    );
  const [a, p, l] = await Promise.all([times(apis, 'api'), times(workers, 'persist-worker'), times(workers, 'lifecycle-worker')]);
  return { apis: a, persistWorkers: p, lifecycleWorkers: l, metricsUrls };
}

/** The sum over these processes of `session_transitions_total`, by status. */
export async function transitionsTotal(metricsUrls: readonly string[]): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  for (const url of metricsUrls) {
    const text = await (await fetch(url)).text();
    for (const m of text.matchAll(/^session_transitions_total\{[^}]*status="(\w+)"[^}]*\} (\d+)/gm))
      sums[m[1]] = (sums[m[1]] ?? 0) + Number(m[2]);
  }
  return sums;
}

/** The port an API process listens on (to restart one in its place). */
export const portOf = (api: ServiceProcess): number => Number(new URL(api.url!).port);

/** Starts `count` attempts for fresh users; `timeLimitSeconds` 0 is untimed. */
export async function startAttempts(
  url: string,
  count: number,
  timeLimitSeconds = 0,
): Promise<Array<LoadAttempt & { expiresAt: number | null }>> {
  const http = new LoadHttpClient({ maxSockets: 8, timeoutMs: 10_000 });
  const prefix = `fault-${randomUUID().slice(0, 8)}`;
  try {
    return await Promise.all(
      Array.from({ length: count }, async (_, n) => {
        const res = await http.call(url, 'POST', '/api/sessions/start', {
          user_id: `${prefix}-${n}`,
          quiz_id: `quiz-${n}`,
          time_limit_seconds: timeLimitSeconds,
        });
        if (res.status !== 201) throw new Error(`start answered ${res.status}: ${JSON.stringify(res.body)}`);
        return {
          id: res.body.id as string,
          version: res.body.version as number,
          expiresAt: res.body.expires_at ? Date.parse(res.body.expires_at) : null,
        };
      }),
    );
  } finally {
    http.close();
  }
}

/** The attempts as the API shows them (a closed attempt's 410 carries it under `session`). */
export async function apiFinals(
  url: string,
  ids: readonly string[],
): Promise<Map<string, FinalAttempt & { raw: Record<string, unknown> }>> {
  const http = new LoadHttpClient({ maxSockets: 8, timeoutMs: 10_000 });
  try {
    const out = new Map<string, FinalAttempt & { raw: Record<string, unknown> }>();
    for (let i = 0; i < ids.length; i += 8) {
      await Promise.all(
        ids.slice(i, i + 8).map(async (id) => {
          const res = await http.call(url, 'GET', `/api/sessions/${id}`);
          const attempt = res.status === 200 ? res.body : res.status === 410 ? res.body?.session : null;
          if (!attempt) throw new Error(`GET ${id} answered ${res.status}: ${JSON.stringify(res.body)}`);
          out.set(id, { version: attempt.version, status: attempt.status, answers: attempt.answers, raw: attempt });
        }),
      );
    }
    return out;
  } finally {
    http.close();
  }
}

/** The attempts as PostgreSQL holds them. */
export async function pgFinals(knex: Knex, ids: readonly string[]): Promise<Map<string, FinalAttempt>> {
  const rows = await rowsById(knex, ids);
  return new Map([...rows].map(([id, r]) => [id, { version: r.version, status: r.status, answers: r.answers }]));
}

/**
 * Polls until PostgreSQL holds, for every attempt, the version the API shows (the write-behind
 * has caught up); returns both views and when that was first seen. Fails after `timeoutMs`.
 */
export async function waitUntilPersisted(
  knex: Knex,
  url: string,
  ids: readonly string[],
  timeoutMs: number,
): Promise<{ at: number; api: Awaited<ReturnType<typeof apiFinals>>; pg: Map<string, FinalAttempt> }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [api, pg] = await Promise.all([apiFinals(url, ids), pgFinals(knex, ids)]);
    const pending = ids.filter((id) => pg.get(id)?.version !== api.get(id)?.version || pg.get(id)?.status !== api.get(id)?.status);
    if (pending.length === 0) return { at: Date.now(), api, pg };
    if (Date.now() > until) {
      const sample = pending
        .slice(0, 3)
        .map((id) => `${id}: api v${api.get(id)?.version} ${api.get(id)?.status}, pg v${pg.get(id)?.version} ${pg.get(id)?.status}`);
      throw new Error(
        `PostgreSQL did not catch up with the API within ${timeoutMs}ms: ${pending.length} of ${ids.length} behind, e.g. ${sample.join('; ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Prints one compact line of a fault test's figures (so it shows in CI output). */
export function printFigures(name: string, figures: Record<string, string | number | boolean | null>): void {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`[fault ${name}] ${parts.join(' ')}\n`);
}
