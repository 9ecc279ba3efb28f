import { sleep, waitFor, dirtyTotal } from '../support/harness';
import { useIsolatedStores } from '../support/isolatedStores';
import { ackedVersions, checkDurability, lastAppliedVersion, ProgressLoad, type LoadAttempt } from '../support/progressLoad';
import { printFigures, startAttempts, startFaultStack, transitionsTotal, waitUntilPersisted } from '../support/faultStack';
import { rowsById } from '../support/workerScenario';

/*
 * Two API processes and two processes of each worker role at once, over one Redis and one
 * PostgreSQL. Several clients write every attempt, through both APIs, each with the version it
 * last saw: Redis serialises them, so the versions acknowledged for an attempt must be exactly
 * 2, 3, 4, … with none twice, whichever API answered. Completes come from both APIs at once, and
 * timed attempts expire while both lifecycle workers sweep: each attempt closes once.
 */

const PERSIST_DELAY_SECONDS = 2;
const TIME_LIMIT_SECONDS = 8;

const stores = useIsolatedStores();

test('two APIs and two of each worker: per attempt the acknowledged versions are unique and contiguous, and each attempt transitions at most once', async () => {
  const env = { ...stores().env, PERSIST_DELAY_SECONDS, SWEEP_INTERVAL_SECONDS: 1 };
  const { apis, metricsUrls } = await startFaultStack(env, 2, 2);
  const urls = apis.map((a) => a.url!);

  // clients of one attempt alternate between the APIs (client n uses urls[n % 2], and 3 is odd)
  const writers = (await startAttempts(urls[0], 10)).map((a): LoadAttempt => ({ ...a, clients: 3 }));
  const timed = (await startAttempts(urls[0], 6, TIME_LIMIT_SECONDS)).map((a): LoadAttempt & { expiresAt: number | null } => ({
    ...a,
    clients: 3,
  }));
  // both clients of a completer complete it at the same moment, through different APIs
  const completeFrom = Date.now() + 2000;
  const completers = (await startAttempts(urls[1], 6)).map((a, i): LoadAttempt => ({
    ...a,
    clients: 2,
    completeAt: completeFrom + 1000 * i,
  }));
  const all = [...writers, ...completers, ...timed];
  const ids = all.map((a) => a.id);
  const load = new ProgressLoad({ urls, attempts: all, thinkMs: 15 }).start();
  const startedAt = Date.now();
  await sleep(Math.max(0, Math.max(...timed.map((a) => a.expiresAt!)) + 3000 - Date.now()));
  await load.stop();
  const stoppedAt = Date.now();

  const finals = await waitUntilPersisted(stores().knex, urls[1], ids, 20_000);
  await waitFor('the dirty set to empty', async () => (await dirtyTotal(stores().redis)) === 0, 10_000);
  const rows = await rowsById(stores().knex, ids);
  const pg = checkDurability(load.writes, finals.pg);
  const totals = load.totals();
  const versions = ackedVersions(load.writes);
  const duplicates: string[] = [];
  const gaps: string[] = [];
  for (const [id, list] of versions) {
    const unique = new Set(list);
    if (unique.size !== list.length) duplicates.push(id);
    // 2, 3, …, n: every write was acknowledged to exactly one client
    if (list[0] !== 2 || list[list.length - 1] !== list.length + 1)
      gaps.push(`${id}: ${list.length} acked, ${list[0]}..${list[list.length - 1]}`);
  }
  const counts: Record<string, number> = {};
  for (const row of rows.values()) counts[row.status] = (counts[row.status] ?? 0) + 1;
  // every transition any of the six processes made, from their counters
  const transitions = await transitionsTotal(metricsUrls);
  printFigures('scaled-2x', {
    acked: pg.acked,
    foundPg: pg.found,
    lost: pg.lost.length,
    conflicts: totals.conflicts,
    duplicateVersions: duplicates.length,
    versionGaps: gaps.length,
    ambiguousWrites: load.writes.filter((w) => w.ambiguous).length,
    s503: totals.s503,
    s5xx: totals.s5xx,
    statuses: JSON.stringify(counts).replace(/"/g, ''),
    transitions: JSON.stringify(transitions).replace(/"/g, ''),
    persistedMs: finals.at - stoppedAt,
    loadMs: stoppedAt - startedAt,
  });

  expect(load.anomalies).toEqual([]);
  expect(totals.s503 + totals.s5xx + totals.timeouts + totals.networkErrors).toBe(0);
  expect(totals.conflicts).toBeGreaterThan(100); // the clients really raced
  expect(load.writes.filter((w) => w.ambiguous)).toEqual([]); // every write got a definite answer
  expect(duplicates).toEqual([]);
  expect(gaps).toEqual([]);
  expect(pg.lost).toEqual([]);
  expect(pg.behind).toEqual([]);

  expect(counts).toEqual({ in_progress: writers.length, completed: completers.length, expired: timed.length });
  expect(transitions).toEqual({ completed: completers.length, expired: timed.length, abandoned: 0 });
  for (const a of writers) {
    const list = versions.get(a.id)!;
    expect(rows.get(a.id)!.version).toBe(list[list.length - 1]);
  }
  // completed by two clients through two APIs: both see the same single transition
  for (const a of completers) {
    const row = rows.get(a.id)!;
    expect(row.version).toBe(lastAppliedVersion(load.writes, a) + 1);
    const closes = load.closes.filter((c) => c.attemptId === a.id);
    expect(closes).toHaveLength(2);
    for (const c of closes) expect(c).toMatchObject({ status: 'completed', version: row.version });
  }
  // expired once, at the deadline, whether the API's write script, the expiry job or a sweep did it
  for (const a of timed) {
    const row = rows.get(a.id)!;
    expect({ status: row.status, version: row.version }).toEqual({ status: 'expired', version: lastAppliedVersion(load.writes, a) + 1 });
    expect(row.ended_at?.getTime()).toBe(a.expiresAt);
  }
}, 120_000);
