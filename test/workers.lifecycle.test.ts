import type { Job, Queue } from 'bullmq';
import { jobIds, QUEUES } from '../src/shared/queues/jobs';
import { expiryTick } from '../src/shared/domain/deadline';
import { DeadlineIndex } from '../src/shared/queues/deadlines';
import type { ExpireWindowReport } from '../src/workers/tasks/expireWindowTask';
import { sessionKey } from '../src/shared/store/sessionStore';
import { STALE_DEADLINE_MS, type SweepReport } from '../src/workers/tasks/sweepTask';
import { sleep, sleepUntil, waitFor } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { AttemptClient, epoch, openQueue, rowOf, rowsById, waitForRows } from './support/workerScenario';

/*
 * Expiry at the deadline, abandonment and the sweeps with real lifecycle-worker processes, over
 * this file's own database and Redis DB. No persist worker runs here: what PostgreSQL gets comes
 * from the start, the student's close, or the lifecycle worker itself.
 */

const stores = useIsolatedStores({ resetAfterEach: true });
let lifecycleQueue: Queue;
let deadlines: DeadlineIndex;

beforeAll(async () => {
  lifecycleQueue = openQueue(stores(), QUEUES.lifecycle);
  deadlines = new DeadlineIndex([lifecycleQueue]);
}, 60_000);

/** The id of the expiry job of the tick an attempt due at `at` belongs to (one queue shard here). */
const windowJobId = (at: number) => jobIds.expireWindow(0, expiryTick(at));

afterAll(async () => {
  await lifecycleQueue?.close();
}, 30_000);

/** An API process and `workers` lifecycle workers with the same settings. */
async function startStack(settings: Record<string, string | number>, workers = 1): Promise<AttemptClient> {
  // the write-behind window is long: closing an attempt must not rely on a persist worker
  const env = { ...stores().env, PERSIST_DELAY_SECONDS: 30, ...settings };
  const [api] = await Promise.all([
    startProcess('api', env),
    ...Array.from({ length: workers }, () => startProcess('lifecycle-worker', env)),
  ]);
  return new AttemptClient(api.url!);
}

describe('expiry at the deadline (the deadline index and its tick jobs)', () => {
  test('an open 4-second attempt is expired in PostgreSQL within 2 s of its deadline, with its latest answers', async () => {
    // a sweep every 10 minutes: the tick's expire-window job, not the sweep, has to do it
    const client = await startStack({ SWEEP_INTERVAL_SECONDS: 600 });
    // the writes and the check below must all come before the deadline, also on a loaded machine
    const attempt = await client.start(4);
    let version = attempt.version;
    for (let i = 0; i < 3; i++) version = (await client.progress(attempt.id, { [`q${i}`]: i }, i)).version;
    const deadline = Date.parse(attempt.expires_at!);
    // listed in the index at its deadline, with no job of its own
    expect(await stores().redis.zscore(deadlines.keyOf(0), attempt.id)).toBe(String(deadline));
    expect(await lifecycleQueue.getJob(jobIds.expire(attempt.id, deadline))).toBeUndefined();
    // none of this progress is in PostgreSQL yet
    expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ version: 1, status: 'started' });

    const seenAt = await waitForRows(
      stores().knex,
      [attempt.id],
      (r) => r.status === 'expired',
      deadline - Date.now() + 5000,
      'the expiry',
    );
    expect(seenAt).toBeGreaterThanOrEqual(deadline);
    expect(seenAt - deadline).toBeLessThanOrEqual(2000);
    const row = await rowOf(stores().knex, attempt.id);
    expect(epoch(row.ended_at)).toBe(deadline);
    expect(epoch(row.expires_at)).toBe(deadline);
    expect(row).toMatchObject({ version: version + 1, current_question: 2, persist_count: 2, answers: { q0: 0, q1: 1, q2: 2 } });
    expect(await stores().redis.hget(sessionKey(attempt.id), 'status')).toBe('expired');
    const job = await lifecycleQueue.getJob(windowJobId(deadline));
    expect(job?.returnvalue).toEqual({ due: 1, moved: { expired: 1 } });
    // handled: no longer listed
    expect(await stores().redis.zscore(deadlines.keyOf(0), attempt.id)).toBeNull();
  }, 30_000);

  test('a completed attempt is left alone by its expiry job: still completed, version unchanged after the deadline', async () => {
    const client = await startStack({ SWEEP_INTERVAL_SECONDS: 1 });
    // the write and the complete must come before the deadline, also on a loaded machine
    const attempt = await client.start(4);
    await client.progress(attempt.id, { q0: 'a' }, 0);
    const completed = await client.complete(attempt.id);
    const before = await rowOf(stores().knex, attempt.id);
    expect(before).toMatchObject({ status: 'completed', version: completed.version });

    const deadline = Date.parse(attempt.expires_at!);
    await waitFor(
      'the expiry job to run',
      async () => (await lifecycleQueue.getJobState(windowJobId(deadline))) === 'completed',
      deadline - Date.now() + 5000,
    );
    // found due in the index, and not moved: dropped from it
    expect((await lifecycleQueue.getJob(windowJobId(deadline)))?.returnvalue).toEqual({ due: 1, moved: {} });
    expect(await stores().redis.zscore(deadlines.keyOf(0), attempt.id)).toBeNull();
    await sleepUntil(deadline, 2500); // and a couple of sweeps
    const after = await rowOf(stores().knex, attempt.id);
    expect(after).toEqual(before);
    expect(epoch(after.ended_at)).toBe(epoch(after.completed_at));
    expect(await stores().redis.hget(sessionKey(attempt.id), 'status')).toBe('completed');
  }, 30_000);
});

describe('a tick job that never comes', () => {
  test('its attempt is expired by the sweep, and the sweep drops its index entry once it is stale', async () => {
    const client = await startStack({ SWEEP_INTERVAL_SECONDS: 1 });
    const attempt = await client.start(2);
    const deadline = Date.parse(attempt.expires_at!);
    // the tick's job is lost: only the sweep is left
    expect(await lifecycleQueue.remove(windowJobId(deadline))).toBe(1);
    await waitForRows(stores().knex, [attempt.id], (r) => r.status === 'expired', deadline - Date.now() + 5000, 'the expiry by the sweep');
    expect(await stores().redis.zscore(deadlines.keyOf(0), attempt.id)).toBe(String(deadline));
    await waitFor(
      'the stale entry to be dropped',
      async () => (await stores().redis.zscore(deadlines.keyOf(0), attempt.id)) === null,
      deadline + STALE_DEADLINE_MS + 5000 - Date.now(),
    );
    expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ status: 'expired', persist_count: 2 });
  }, 30_000);
});

describe('a paused attempt', () => {
  test('is neither expired nor abandoned by the jobs or the sweeps, also with its Redis copy evicted; resumed, it expires at its new deadline', async () => {
    // idle for longer than 3 s before the checks; once resumed (activity again), the 2 s left run out first
    const client = await startStack({ ABANDON_AFTER_SECONDS: 3, SWEEP_INTERVAL_SECONDS: 1 });
    const cached = await client.start(2);
    const evicted = await client.start(2);
    const paused = await Promise.all([cached, evicted].map((a) => client.controlOk(a.id, 'pause', { reason: 'medical break' })));
    await stores().redis.del(sessionKey(evicted.id));

    // past both deadlines, idle for longer than ABANDON_AFTER_SECONDS, and several sweeps
    await sleepUntil(Date.parse(cached.started_at) + 4000, 500);
    for (const [i, a] of [cached, evicted].entries()) {
      expect(await rowOf(stores().knex, a.id)).toMatchObject({ status: 'paused', version: paused[i].version });
      expect((await client.get(a.id)).body).toMatchObject({ status: 'paused', time_remaining: paused[i].time_remaining });
    }

    const resumed = await client.controlOk(cached.id, 'resume');
    const deadline = Date.parse(resumed.expires_at!);
    const seenAt = await waitForRows(stores().knex, [cached.id], (r) => r.status === 'expired', deadline - Date.now() + 5000, 'the expiry');
    expect(seenAt - deadline).toBeLessThanOrEqual(2000);
    expect((await rowOf(stores().knex, evicted.id)).status).toBe('paused');
  }, 30_000);
});

describe('abandonment sweep', () => {
  test('an idle open attempt becomes abandoned after ABANDON_AFTER_SECONDS; one that keeps getting writes does not', async () => {
    const client = await startStack({ ABANDON_AFTER_SECONDS: 2, SWEEP_INTERVAL_SECONDS: 1 });
    const idle = await client.start(0);
    const idleAck = await client.progress(idle.id, { q0: 'then left' }, 0);
    const lastActivity = Date.parse(idleAck.last_updated);
    const busy = await client.start(0);
    // no copy in Redis (evicted): the sweep abandons it in PostgreSQL alone
    const evicted = await client.start(0);
    await stores().redis.del(sessionKey(evicted.id));

    // the busy attempt writes every 300 ms; PostgreSQL's copy of it stays at its start (window 30 s),
    // so only the live state in Redis tells the sweep it is active
    let busyVersion = busy.version;
    /** When each of the busy attempt's writes was acknowledged. */
    const busyAcks: number[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        busyVersion = (await client.progress(busy.id, { [`q${i % 10}`]: i }, i % 10)).version;
        busyAcks.push(Date.now());
        await sleep(300);
      }
    })();
    let seenAt: number;
    try {
      seenAt = await waitForRows(
        stores().knex,
        [idle.id, evicted.id],
        (r) => r.status === 'abandoned',
        8000,
        'the idle attempts to be abandoned',
      );
      await sleep(2500); // more sweeps while the busy attempt is older than the threshold in PostgreSQL
    } finally {
      stop = true;
      await writer;
    }

    expect(seenAt - lastActivity).toBeGreaterThanOrEqual(2000);
    expect(seenAt - lastActivity).toBeLessThanOrEqual(2000 + 1000 + 2000); // threshold + interval + slack
    const idleRow = await rowOf(stores().knex, idle.id);
    expect(idleRow).toMatchObject({ status: 'abandoned', version: idleAck.version + 1, answers: { q0: 'then left' } });
    expect(epoch(idleRow.ended_at)! - lastActivity).toBeGreaterThanOrEqual(2000);
    expect((await client.get(idle.id)).status).toBe(410);
    const evictedRow = await rowOf(stores().knex, evicted.id);
    expect(evictedRow).toMatchObject({ status: 'abandoned', version: 2, persist_count: 2 });
    expect(epoch(evictedRow.ended_at)! - Date.parse(evicted.last_updated)).toBeGreaterThanOrEqual(2000);

    const busyRow = await rowOf(stores().knex, busy.id);
    expect(busyRow.status).toBe('started');
    const read = await client.get(busy.id);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ status: 'in_progress', version: busyVersion });
    // it really kept getting writes, every one applied: from its start on, never idle for the
    // threshold, until sweeps after the idle ones' abandonment had run (counted in time, not in
    // writes, which a loaded machine makes fewer)
    expect(busyVersion).toBe(busy.version + busyAcks.length);
    const gaps = busyAcks.map((at, i) => at - (i === 0 ? Date.parse(busy.last_updated) : busyAcks[i - 1]));
    expect(Math.max(...gaps)).toBeLessThan(2000);
    expect(busyAcks[busyAcks.length - 1] - seenAt).toBeGreaterThan(1000); // at least one more sweep interval
  }, 30_000);
});

describe('straggler sweep', () => {
  test('an attempt whose persist job never ran is persisted by the sweep once it is dirty past the window plus 5 s', async () => {
    // no persist worker: only the lifecycle worker's sweep can write the progress
    const delay = 1;
    const client = await startStack({ PERSIST_DELAY_SECONDS: delay, SWEEP_INTERVAL_SECONDS: 1 });
    const attempt = await client.start();
    const firstWriteAt = Date.now();
    let version = attempt.version;
    for (let i = 0; i < 3; i++) version = (await client.progress(attempt.id, { [`q${i}`]: i }, i)).version;

    const seenAt = await waitForRows(stores().knex, [attempt.id], (r) => r.version === version, 12_000, 'the sweep to persist it');
    expect(seenAt - firstWriteAt).toBeGreaterThanOrEqual((delay + 5) * 1000);
    expect(seenAt - firstWriteAt).toBeLessThanOrEqual((delay + 5) * 1000 + 1000 + 2000); // + interval + slack
    expect(await rowOf(stores().knex, attempt.id)).toMatchObject({
      status: 'in_progress',
      persist_count: 2,
      answers: { q0: 0, q1: 1, q2: 2 },
    });
  }, 30_000);
});

describe('two lifecycle workers at once', () => {
  test('30 short attempts, expiry jobs and concurrent sweeps on two processes: each attempt transitions exactly once', async () => {
    const client = await startStack({ SWEEP_INTERVAL_SECONDS: 1 }, 2);
    type Case = { id: string; deadline: number; expectedVersion: number; answers: Record<string, unknown>; kind: string };
    const cases: Case[] = [];
    for (let n = 0; n < 30; n++) {
      // 2 or 3 s: its job must still be there to remove, and its progress land, before the deadline
      const attempt = await client.start(2 + (n % 2));
      const c: Case = {
        id: attempt.id,
        deadline: Date.parse(attempt.expires_at!),
        expectedVersion: 2,
        answers: {},
        kind: ['progress', 'lost-job', 'no-redis'][n % 3],
      };
      if (c.kind === 'progress') {
        // unpersisted answers in Redis: the close must carry them to PostgreSQL
        const acked = await client.progress(c.id, { q: n }, 1);
        c.expectedVersion = acked.version + 1;
        c.answers = { q: n };
      } else if (c.kind === 'lost-job') {
        // its entry in the deadline index is lost: only a sweep can expire it
        expect(await deadlines.remove(c.id)).toBe(true);
      } else {
        // evicted from Redis: closed in PostgreSQL alone
        await stores().redis.del(sessionKey(c.id));
      }
      cases.push(c);
    }
    const lastDeadline = Math.max(...cases.map((c) => c.deadline));
    // a burst of extra sweeps at the last deadline, so sweeps run at the same time on both processes
    await sleepUntil(lastDeadline, 20);
    await lifecycleQueue.addBulk(Array.from({ length: 8 }, () => ({ name: 'sweep', data: { scheduledBy: 'scheduler' } })));

    const ids = cases.map((c) => c.id);
    await waitForRows(stores().knex, ids, (r) => r.status === 'expired', 8000, 'every attempt expired');
    await sleep(2000); // further sweeps and jobs that might transition something twice

    const rows = await rowsById(stores().knex, ids);
    for (const c of cases) {
      const row = rows.get(c.id)!;
      // one transition is one version bump and one write of the row after its insert
      expect({ kind: c.kind, status: row.status, version: row.version, persist_count: row.persist_count, answers: row.answers }).toEqual({
        kind: c.kind,
        status: 'expired',
        version: c.expectedVersion,
        persist_count: 2,
        answers: c.answers,
      });
      expect(epoch(row.ended_at)).toBe(c.deadline);
    }

    // every transition any worker made, counted from what the jobs report: exactly one per attempt
    const jobs = (await lifecycleQueue.getJobs(['completed', 'failed'])).filter(Boolean) as Job[];
    expect(jobs.filter((j) => j.failedReason)).toEqual([]);
    const byExpireJobs = jobs
      .filter((j) => j.name === 'expire-window')
      .reduce((sum, j) => sum + ((j.returnvalue as ExpireWindowReport).moved.expired ?? 0), 0);
    const sweeps = jobs.filter((j) => j.name === 'sweep');
    const bySweeps = sweeps.reduce((sum, j) => sum + ((j.returnvalue as SweepReport)?.expired ?? 0), 0);
    expect(byExpireJobs + bySweeps).toBe(cases.length);
    expect(bySweeps).toBeGreaterThanOrEqual(cases.filter((c) => c.kind === 'lost-job').length);
  }, 40_000);
});

describe('the deadline index', () => {
  test('lists each attempt once by its due time; an entry read before its deadline moved is not removed', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => `00000000-0000-4000-8000-00000000000${n}`);
    await deadlines.set(a, 1_000);
    await deadlines.set(b, 2_000);
    await deadlines.set(c, 5_000);
    expect(await deadlines.size(0)).toBe(3);
    const due = await deadlines.due(0, 2_000, 10);
    expect(due).toEqual([
      { id: a, at: '1000' },
      { id: b, at: '2000' },
    ]);
    expect(await deadlines.due(0, 2_000, 1)).toEqual([{ id: a, at: '1000' }]);
    // b's deadline moves (an extension) after the tick read it: the tick's removal leaves it listed
    await deadlines.set(b, 4_000);
    expect(await deadlines.size(0)).toBe(3);
    expect(await deadlines.removeIfAt(0, due[1])).toBe(false);
    expect(await stores().redis.zscore(deadlines.keyOf(0), b)).toBe('4000');
    expect(await deadlines.removeIfAt(0, due[0])).toBe(true);
    expect(await deadlines.due(0, 10_000, 10)).toEqual([
      { id: b, at: '4000' },
      { id: c, at: '5000' },
    ]);
    expect(await deadlines.remove(c)).toBe(true);
    expect(await deadlines.remove(c)).toBe(false);
    expect(await deadlines.size(0)).toBe(1);
  });
});
