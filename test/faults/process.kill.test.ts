import type { Queue } from 'bullmq';
import { QUEUES } from '../../src/shared/queues/jobs';
import { sleep, waitFor, dirtyTotal } from '../support/harness';
import { useIsolatedStores } from '../support/isolatedStores';
import { startProcess, type ServiceProcess } from '../support/processes';
import { checkDurability, lastAppliedVersion, ProgressLoad, type LoadAttempt } from '../support/progressLoad';
import { portOf, printFigures, startAttempts, startFaultStack, waitUntilPersisted } from '../support/faultStack';
import { insertsWaitingOnLock, openQueue, rowsById } from '../support/workerScenario';

/*
 * SIGKILL of every role mid-load, each restarted: the API twice (requests in flight die with it),
 * the persist worker while its batch is inside PostgreSQL (its jobs are active, so they stall),
 * the lifecycle worker just before timed attempts reach their deadline (their expiry jobs fall
 * due while no lifecycle worker runs). The load writes progress to untimed attempts, completes
 * some of them along the way, and writes to timed attempts until they expire (or goes idle before).
 */

const PERSIST_DELAY_SECONDS = 2;
const TIME_LIMIT_SECONDS = 10;

const stores = useIsolatedStores();
let persistQueue: Queue;

beforeAll(async () => {
  persistQueue = openQueue(stores(), QUEUES.persist);
}, 60_000);

afterAll(async () => {
  await persistQueue?.close();
}, 30_000);

/** SIGKILLs the process and checks that it really died of it. */
async function crash(proc: ServiceProcess): Promise<void> {
  const exit = await proc.kill('SIGKILL');
  expect(exit.signal).toBe('SIGKILL');
}

test('API, persist worker and lifecycle worker killed (SIGKILL) mid-load and restarted: no acknowledged write lost, one transition per attempt, stalled jobs recovered', async () => {
  const env = { ...stores().env, PERSIST_DELAY_SECONDS, SWEEP_INTERVAL_SECONDS: 2 };
  const stack = await startFaultStack(env);
  let api = stack.apis[0];
  const url = api.url!;
  const apiEnv = { ...env, PORT: portOf(api) }; // a restarted API takes the same port: the clients keep their URL

  const writers = await startAttempts(url, 12);
  // completed one after another through the chaos, 1.5 s apart
  const completeFrom = Date.now() + 1500;
  const completers = (await startAttempts(url, 8)).map((a, i): LoadAttempt => ({ ...a, completeAt: completeFrom + 1500 * i }));
  const timed = await startAttempts(url, 8, TIME_LIMIT_SECONDS);
  // half of the timed attempts write until the API refuses (410), half go idle 3 s before the deadline
  const timedLoad = timed.map((a, i): LoadAttempt => (i % 2 ? { ...a, stopWritingAt: a.expiresAt! - 3000 } : a));
  const all = [...writers, ...completers, ...timedLoad];
  const ids = all.map((a) => a.id);
  const deadline = Math.min(...timed.map((a) => a.expiresAt!));
  const load = new ProgressLoad({ urls: [url], attempts: all, thinkMs: 20 }).start();
  const startedAt = Date.now();
  const downMs: Record<string, number[]> = { api: [], persist: [], lifecycle: [] };

  // 1. the API, with requests in flight; restarted at once
  await sleep(2500);
  await crash(api);
  let killedAt = Date.now();
  api = await startProcess('api', apiEnv);
  downMs.api.push(Date.now() - killedAt);

  // 2. the persist worker while its batch waits on a lock inside PostgreSQL: its jobs are active
  await sleep(1500);
  let stalled: string[] = [];
  const trx = await stores().knex.transaction();
  try {
    await trx.raw('lock table quiz_sessions in share mode');
    // (a complete's upsert waits on the lock too: wait for the persist worker's jobs to be active)
    await waitFor(
      'a persist batch to block in PostgreSQL',
      async () => (await insertsWaitingOnLock(stores().knex)) > 0 && (await persistQueue.getActiveCount()) > 0,
      8000,
    );
    stalled = (await persistQueue.getActive()).map((j) => j.id!);
    await crash(stack.persistWorkers[0]);
  } finally {
    await trx.rollback();
  }
  const persistKilledAt = Date.now();
  expect(stalled.length).toBeGreaterThan(0);

  // 3. the lifecycle worker, before the deadlines; restarted after them
  await sleep(Math.max(0, deadline - 2500 - Date.now()));
  await crash(stack.lifecycleWorkers[0]);
  const lifecycleKilledAt = Date.now();
  await startProcess('persist-worker', env);
  downMs.persist.push(Date.now() - persistKilledAt);

  // 4. the API again, around the deadlines
  await sleep(Math.max(0, deadline - Date.now()));
  await crash(api);
  killedAt = Date.now();
  api = await startProcess('api', apiEnv);
  downMs.api.push(Date.now() - killedAt);
  await sleep(Math.max(0, deadline + 2000 - Date.now()));
  await startProcess('lifecycle-worker', env);
  downMs.lifecycle.push(Date.now() - lifecycleKilledAt);

  await sleep(3000);
  await load.stop();
  const stoppedAt = Date.now();

  // the stalled jobs of the killed persist worker are taken back and complete
  await waitFor(
    'the stalled persist jobs to complete',
    async () => (await Promise.all(stalled.map((id) => persistQueue.getJobState(id)))).every((s) => s === 'completed'),
    30_000,
    250,
  );
  const stalledRecoveredMs = Date.now() - persistKilledAt;
  const finals = await waitUntilPersisted(stores().knex, url, ids, 30_000);
  await waitFor('the dirty set to empty', async () => (await dirtyTotal(stores().redis)) === 0, 10_000);

  const pg = checkDurability(load.writes, finals.pg);
  const apiCheck = checkDurability(load.writes, finals.api);
  const totals = load.totals();
  const rows = await rowsById(stores().knex, ids);
  const counts: Record<string, number> = {};
  for (const row of rows.values()) counts[row.status] = (counts[row.status] ?? 0) + 1;
  printFigures('process-sigkill', {
    acked: pg.acked,
    foundPg: pg.found,
    foundApi: apiCheck.found,
    lost: pg.lost.length,
    ambiguousWrites: load.writes.filter((w) => w.ambiguous).length,
    networkErrors: totals.networkErrors,
    s503: totals.s503,
    s5xx: totals.s5xx,
    stalledJobs: stalled.length,
    stalledRecoveredMs,
    persistedMs: finals.at - stoppedAt,
    apiDownMs: downMs.api.join('/'),
    persistDownMs: downMs.persist.join('/'),
    lifecycleDownMs: downMs.lifecycle.join('/'),
    statuses: JSON.stringify(counts).replace(/"/g, ''),
    loadMs: stoppedAt - startedAt,
  });

  expect(load.anomalies).toEqual([]);
  expect(totals.s5xx).toBe(0);
  expect(pg.lost).toEqual([]);
  expect(apiCheck.lost).toEqual([]);
  expect(pg.behind).toEqual([]);
  expect(await persistQueue.getFailedCount()).toBe(0);

  // status counts: every completer completed, every timed attempt expired, the rest still open
  expect(counts).toEqual({ in_progress: writers.length, completed: completers.length, expired: timed.length });
  // exactly one transition each: the closed version is the last progress version + 1
  for (const a of completers) {
    const row = rows.get(a.id)!;
    const closes = load.closes.filter((c) => c.attemptId === a.id);
    expect({ id: a.id, status: row.status, version: row.version }).toEqual({
      id: a.id,
      status: 'completed',
      version: lastAppliedVersion(load.writes, a) + 1,
    });
    expect(closes.length).toBeGreaterThan(0);
    for (const c of closes) expect(c).toMatchObject({ how: 'complete', status: 'completed', version: row.version });
  }
  for (const a of timed) {
    const row = rows.get(a.id)!;
    expect({ id: a.id, status: row.status, version: row.version }).toEqual({
      id: a.id,
      status: 'expired',
      version: lastAppliedVersion(load.writes, a) + 1,
    });
    expect(row.ended_at?.getTime()).toBe(a.expiresAt); // closed at its deadline
  }
  for (const a of writers) expect(rows.get(a.id)!.version).toBe(finals.api.get(a.id)!.version);
}, 150_000);
