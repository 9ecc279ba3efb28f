import type { Knex } from 'knex';
import { sleep } from './harness';
import { printFigures, startAttempts, startFaultStack, waitUntilPersisted } from './faultStack';
import { checkDurability, ProgressLoad } from './progressLoad';

/*
 * The failover fault tests' one scenario (Sentinel, Redis Cluster): the service as real processes
 * under a steady load of versioned progress writes, a master SIGKILLed, its replica promoted, the
 * killed node back as a replica; then what the load saw, against both final views.
 */

/** How one kind of Redis fails over: the settings that point the service at it, and the steps. */
export interface FailoverTarget {
  env: Record<string, string>;
  /** SIGKILLs a master (the one serving `firstId`, where that matters); returns its port. */
  killMaster(firstId: string): Promise<number>;
  /** Resolves once another node serves what `victim` did. */
  waitForPromotion(victim: number): Promise<void>;
  /** Starts the killed node again and resolves once it is an in-sync replica. */
  rejoin(): Promise<void>;
}

/** What one failover under load recorded. */
export interface FailoverRun {
  load: ProgressLoad;
  finals: Awaited<ReturnType<typeof waitUntilPersisted>>;
  victim: number;
  downAt: number;
  promotedAt: number;
  replicatedAt: number;
}

/** Runs the load through a failover of `target` (`env`: the stores and settings of the processes). */
export async function failoverUnderLoad(
  knex: Knex,
  env: Record<string, string | number>,
  target: FailoverTarget,
  attemptCount: number,
): Promise<FailoverRun> {
  const { apis } = await startFaultStack({ ...env, ...target.env, PERSIST_DELAY_SECONDS: 2, SWEEP_INTERVAL_SECONDS: 2 });
  const url = apis[0].url!;
  const attempts = await startAttempts(url, attemptCount);
  const ids = attempts.map((a) => a.id);
  const load = new ProgressLoad({ urls: [url], attempts, thinkMs: 20, startSpreadMs: 20 }).start();
  await sleep(3000);

  const victim = await target.killMaster(ids[0]);
  const downAt = Date.now();
  await target.waitForPromotion(victim);
  const promotedAt = Date.now();
  await target.rejoin();
  const replicatedAt = Date.now();
  await sleep(4000);
  await load.stop();
  const finals = await waitUntilPersisted(knex, url, ids, 30_000);
  return { load, finals, victim, downAt, promotedAt, replicatedAt };
}

/** With WAIT: never a 500, no acknowledged write lost in either store, none behind. Returns the recovery time. */
export function expectNothingLost(name: string, run: FailoverRun): { recoverMs: number } {
  const all = run.load.totals();
  const pg = checkDurability(run.load.writes, run.finals.pg);
  const api = checkDurability(run.load.writes, run.finals.api);
  const recoverMs = (run.load.firstAckAfter(run.promotedAt) ?? Number.NaN) - run.downAt;
  printFigures(name, {
    victim: run.victim,
    acked: pg.acked,
    lost: pg.lost.length,
    lostApi: api.lost.length,
    s503: all.s503,
    s5xx: all.s5xx,
    timeouts: all.timeouts,
    promotedAfterMs: run.promotedAt - run.downAt,
    replicaBackAfterMs: run.replicatedAt - run.downAt,
    recoverMs,
  });
  expect(run.load.anomalies).toEqual([]);
  expect(all.s5xx).toBe(0);
  expect(all.timeouts).toBe(0);
  expect(pg.acked).toBeGreaterThan(200);
  expect(pg.lost).toEqual([]);
  expect(api.lost).toEqual([]);
  expect(pg.behind).toEqual([]);
  return { recoverMs };
}

/** Without WAIT: never a 500, writing again after the promotion; what is lost was acknowledged just before the kill. */
export function expectRecoveredCountingLoss(name: string, run: FailoverRun): void {
  const all = run.load.totals();
  const pg = checkDurability(run.load.writes, run.finals.pg);
  const lostWindowMs = pg.lost.length ? run.downAt - Math.min(...pg.lost.map((w) => w.ackedAt!)) : 0;
  printFigures(name, {
    victim: run.victim,
    acked: pg.acked,
    lost: pg.lost.length,
    lostWindowMs,
    s503: all.s503,
    s5xx: all.s5xx,
    timeouts: all.timeouts,
    promotedAfterMs: run.promotedAt - run.downAt,
    recoverMs: (run.load.firstAckAfter(run.promotedAt) ?? Number.NaN) - run.downAt,
  });
  expect(run.load.anomalies).toEqual([]);
  expect(all.s5xx).toBe(0);
  expect(all.timeouts).toBe(0);
  expect(pg.acked).toBeGreaterThan(200);
  // asynchronous replication: what is lost was acknowledged just before the kill (the replica is
  // at most a few hundred ms behind on this machine)
  for (const w of pg.lost) expect(run.downAt - w.ackedAt!).toBeLessThan(1000);
  expect(run.load.firstAckAfter(run.promotedAt)).not.toBeNull();
}
