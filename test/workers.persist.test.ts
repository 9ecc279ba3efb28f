import { dirtySetOf } from '../src/shared/store/keys';
import type { Queue } from 'bullmq';
import { QUEUES, shardOf } from '../src/shared/queues/jobs';
import { eventsKey, sessionKey } from '../src/shared/store/sessionStore';
import { answerHashFields } from '../src/shared/store/sessionCodec';
import { foldAnswers, type AttemptEvent } from '../src/shared/domain/events';
import { sleep, waitFor, dirtyTotal } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess, type ExitInfo, type ServiceProcess } from './support/processes';
import { AttemptClient, insertsWaitingOnLock, openQueue, rowOf, rowsById, waitForRows } from './support/workerScenario';
import { request } from './support/http';

/*
 * The write-behind with real processes: an API process (which enqueues persist-snapshot jobs)
 * and persist-worker processes, over this file's own database and Redis DB.
 */

const stores = useIsolatedStores({ resetAfterEach: true });
let persistQueue: Queue;

beforeAll(async () => {
  persistQueue = openQueue(stores(), QUEUES.persist);
}, 60_000);

afterAll(async () => {
  await persistQueue?.close();
}, 30_000);

/** An API process and a persist worker with the same settings. */
async function startStack(
  settings: Record<string, string | number>,
): Promise<{ client: AttemptClient; api: ServiceProcess; worker: ServiceProcess }> {
  const env = { ...stores().env, ...settings };
  const [api, worker] = await Promise.all([startProcess('api', env), startProcess('persist-worker', env)]);
  return { client: new AttemptClient(api.url!), api, worker };
}

/** The persist jobs the queue holds for one attempt, in any state. */
/** The persist jobs that can write the attempt: its own, or the shared ones of its queue shard (persist-window). */
async function persistJobsOf(sessionId: string) {
  const jobs = await persistQueue.getJobs(['completed', 'failed', 'delayed', 'waiting', 'active', 'prioritized']);
  return jobs.filter((j) => j?.data?.sessionId === sessionId || (j?.name === 'persist-window' && j.data.shard === shardOf(sessionId, 1)));
}

/** Waits until the job is completed and returns its return value. */
async function completedValue(jobId: string): Promise<unknown> {
  await waitFor(`job ${jobId} completed`, async () => (await persistQueue.getJobState(jobId)) === 'completed', 10_000);
  return (await persistQueue.getJob(jobId))?.returnvalue;
}

/** The attempts become clean: the worker marks them right after its PostgreSQL write commits. */
async function expectClean(ids: readonly string[]): Promise<void> {
  const clean = async () =>
    (await Promise.all(ids.map((id) => stores().redis.hget(sessionKey(id), 'dirty_since')))).every((d) => d === '') &&
    (await dirtyTotal(stores().redis)) === 0;
  await waitFor('the attempts to be marked clean', clean, 10_000);
}

describe('persist-snapshot (write-behind) with real worker processes', () => {
  test('100 progress writes inside one window reach PostgreSQL as exactly one write, with the final version', async () => {
    const delay = 3;
    const { client } = await startStack({ PERSIST_DELAY_SECONDS: delay });
    const attempt = await client.start();
    expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ version: 1, persist_count: 1 });

    // 100 writes from 4 clients at once, so the burst fits in the window even on a busy machine
    const firstWriteAt = Date.now();
    const answers: Record<string, unknown> = {};
    const acked: Array<{ version: number; current_question: number }> = [];
    await Promise.all(
      [0, 1, 2, 3].map(async (stream) => {
        for (let i = stream; i < 100; i += 4) {
          acked.push(await client.progress(attempt.id, { [`q${i}`]: { choice: i } }, i));
          answers[`q${i}`] = { choice: i };
        }
      }),
    );
    const writesTook = Date.now() - firstWriteAt;
    expect(writesTook).toBeLessThan(delay * 1000 - 300); // the whole burst really is inside one window
    expect(acked.map((a) => a.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
    const last = acked.find((a) => a.version === 101)!;

    const seenAt = await waitForRows(
      stores().knex,
      [attempt.id],
      (r) => r.version === 101,
      delay * 1000 + 5000,
      'the final version in PostgreSQL',
    );
    // written once the window closed, not before; and not much later
    expect(seenAt - firstWriteAt).toBeGreaterThanOrEqual(delay * 1000 - 100);
    expect(seenAt - firstWriteAt).toBeLessThan(delay * 1000 + 3000);

    await sleep(delay * 1000 + 500); // a further window: nothing else may be written
    const row = await rowOf(stores().knex, attempt.id);
    expect(row).toMatchObject({ version: 101, persist_count: 2, status: 'in_progress', current_question: last.current_question });
    expect(row.answers).toEqual(answers);
    await expectClean([attempt.id]);
    // one persist job for the whole window: no queue round trip per write
    const jobs = await persistJobsOf(attempt.id);
    expect(jobs).toHaveLength(1);
    expect(await jobs[0].getState()).toBe('completed');
    expect(jobs[0].returnvalue).toBe(1);

    // the event log came with it, in the same window: started and 100 answer_saved, nothing left in Redis
    const events = await stores().knex('attempt_events').where({ attempt_id: attempt.id }).orderBy('seq');
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
    expect(events.filter((e) => e.type === 'answer_saved')).toHaveLength(100);
    expect(await stores().redis.llen(eventsKey(attempt.id))).toBe(0);
    const folded = foldAnswers(events.map((e) => ({ seq: e.seq, type: e.type, data: e.data }) as AttemptEvent));
    expect(folded).toEqual(answers);
  }, 30_000);

  test('a refused write alone is recorded: write_rejected reaches PostgreSQL with the write-behind, the attempt unchanged', async () => {
    const delay = 2;
    const { client } = await startStack({ PERSIST_DELAY_SECONDS: delay });
    const attempt = await client.start();
    const saved = await client.progress(attempt.id, { q1: 'A' });
    await waitForRows(stores().knex, [attempt.id], (r) => r.version === saved.version, delay * 1000 + 5000, 'the write');
    await expectClean([attempt.id]);

    const stale = await request(client.url, 'PATCH', `/api/sessions/${attempt.id}/progress`, { answers: { q1: 'B' }, version: 1 });
    expect(stale.status).toBe(409);
    await waitFor(
      'write_rejected in PostgreSQL',
      async () => (await stores().knex('attempt_events').where({ attempt_id: attempt.id, type: 'write_rejected' })).length === 1,
      delay * 1000 + 5000,
    );
    await expectClean([attempt.id]);
    expect(await stores().redis.llen(eventsKey(attempt.id))).toBe(0);
    expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ version: saved.version, answers: { q1: 'A' } });
  }, 30_000);

  test('a stale snapshot (lower version) never overwrites a newer row, directly or through a replayed job; a regressed Redis copy is rebased above it', async () => {
    const { client } = await startStack({ PERSIST_DELAY_SECONDS: 1 });
    const attempt = await client.start();
    const other = await client.start();
    for (let i = 0; i < 5; i++) await client.progress(attempt.id, { [`q${i}`]: `new-${i}` }, i);
    await client.progress(other.id, { q0: 'other' });
    await waitForRows(stores().knex, [attempt.id, other.id], (r, id) => r.version === (id === attempt.id ? 6 : 2), 8000);
    await expectClean([attempt.id, other.id]);
    const before = await rowOf(stores().knex, attempt.id);

    // a batch with an older snapshot of `attempt` and a newer one of `other`: only `other` is written
    const current = (await stores().repo.findById(attempt.id))!;
    const stale = {
      ...current,
      version: 3,
      currentQuestion: 1,
      answers: new Map([['q0', '"stale"']]),
      lastUpdated: current.lastUpdated - 1000,
    };
    const otherNow = (await stores().repo.findById(other.id))!;
    const otherNext = { ...otherNow, version: otherNow.version + 1, answers: new Map([['q0', '"other-next"']]) };
    expect(await stores().repo.upsertSnapshots([stale, otherNext])).toEqual([other.id]);
    // the same version again is not newer either
    expect(await stores().repo.upsertSnapshots([{ ...current, answers: new Map([['q0', '"same-version"']]) }])).toEqual([]);
    expect(await rowOf(stores().knex, attempt.id)).toEqual(before);
    expect(await rowOf(stores().knex, other.id)).toMatchObject({ version: 3, answers: { q0: 'other-next' } });

    // a replayed persist job for an attempt PostgreSQL already has: nothing written
    await persistQueue.add('persist-snapshot', { sessionId: attempt.id, dirtySince: 1 }, { jobId: `replay-${attempt.id}` });
    expect(await completedValue(`replay-${attempt.id}`)).toBe('current');
    expect(await rowOf(stores().knex, attempt.id)).toEqual(before);
    // Redis itself older than the row (it came back from an older state and students now work on
    // that copy): the copy is moved above the row's version and written, not silently refused
    await stores().redis.hset(sessionKey(attempt.id), 'version', '4', ...answerHashFields(new Map([['q0', '"after-redis-restore"']])));
    await persistQueue.add('persist-snapshot', { sessionId: attempt.id, dirtySince: 2 }, { jobId: `stale-${attempt.id}` });
    expect(await completedValue(`stale-${attempt.id}`)).toBe('written');
    expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ version: before.version + 1, answers: { q0: 'after-redis-restore' } });
    expect(await stores().redis.hget(sessionKey(attempt.id), 'version')).toBe(String(before.version + 1));
  }, 30_000);

  test('a persist job whose Redis key is gone completes and does not block the queue', async () => {
    const { client } = await startStack({ PERSIST_DELAY_SECONDS: 1 });
    const gone = await client.start();
    await client.progress(gone.id, { q0: 'lost' });
    await stores().redis.del(sessionKey(gone.id)); // evicted before its persist job ran
    const kept = await client.progress((await client.start()).id, { q0: 'kept' });

    await waitForRows(stores().knex, [kept.id], (r) => r.version === 2, 6000);
    const jobs = await persistJobsOf(gone.id);
    expect(jobs.length).toBeGreaterThan(0);
    await waitFor(
      'the jobs to finish',
      async () => (await Promise.all(jobs.map((j) => j.getState()))).every((st) => st === 'completed'),
      5000,
    );
    // the orphan is no longer listed as dirty, and was not counted as written
    expect(await stores().redis.zscore(dirtySetOf(gone.id), gone.id)).toBeNull();
    expect((await Promise.all(jobs.map((j) => persistQueue.getJob(j.id!)))).reduce((n, j) => n + Number(j?.returnvalue ?? 0), 0)).toBe(1);
    expect(await rowOf(stores().knex, gone.id)).toMatchObject({ version: 1, persist_count: 1 });
  }, 30_000);

  test('a write that lands while its persist is running is persisted by the next window', async () => {
    const delay = 2;
    const { client } = await startStack({ PERSIST_DELAY_SECONDS: delay });
    const attempt = await client.start();

    // hold the row so the worker's upsert (which has already read version 2 from Redis) waits
    const trx = await stores().knex.transaction();
    try {
      await trx('quiz_sessions').where({ id: attempt.id }).forUpdate().first();
      await client.progress(attempt.id, { q0: 'first' }, 0);
      await waitFor(
        'the worker upsert to wait on the row lock',
        async () => (await insertsWaitingOnLock(stores().knex)) > 0,
        delay * 1000 + 4000,
      );
      // these land during the persist of version 2
      for (let i = 1; i <= 10; i++) expect((await client.progress(attempt.id, { [`q${i}`]: `during-${i}` }, i)).version).toBe(i + 2);
    } finally {
      await trx.rollback();
    }
    const releasedAt = Date.now();

    const seenAt = await waitForRows(
      stores().knex,
      [attempt.id],
      (r) => r.version === 12,
      2 * delay * 1000 + 2000,
      'the later writes in PostgreSQL',
    );
    expect(seenAt - releasedAt).toBeLessThan(2 * delay * 1000 + 1000);
    const row = await rowOf(stores().knex, attempt.id);
    // start, then version 2 (the interrupted persist), then version 12 (the next window)
    expect(row.persist_count).toBe(3);
    expect(row.current_question).toBe(10);
    expect(Object.keys(row.answers)).toHaveLength(11);
    expect(row.answers).toMatchObject({ q0: 'first', q10: 'during-10' });
    await waitFor('the attempt to be clean', async () => (await dirtyTotal(stores().redis)) === 0, 10_000);
    await expectClean([attempt.id]);
  }, 30_000);

  test('writes that keep coming across several windows: PostgreSQL has the last acknowledged version within two windows', async () => {
    const delay = 1;
    const { client } = await startStack({ PERSIST_DELAY_SECONDS: delay });
    const attempts = [await client.start(), await client.start()];
    const acked = new Map<string, number>();
    const until = Date.now() + 4500;
    // a writer per attempt, both at once: many writes per window even when each one is slow
    await Promise.all(
      attempts.map(async (a) => {
        for (let i = 0; Date.now() < until; i++) {
          acked.set(a.id, (await client.progress(a.id, { [`q${i % 50}`]: i }, i % 50)).version);
          await sleep(10);
        }
      }),
    );
    const stoppedAt = Date.now();
    const ids = attempts.map((a) => a.id);
    const seenAt = await waitForRows(
      stores().knex,
      ids,
      (r, id) => r.version === acked.get(id),
      2 * delay * 1000 + 3000,
      'the last acknowledged versions',
    );
    expect(seenAt - stoppedAt).toBeLessThanOrEqual(2 * delay * 1000 + 1000);
    for (const row of (await rowsById(stores().knex, ids)).values()) {
      // persisted along the way, window by window, but coalesced: far fewer writes than versions
      expect(row.persist_count).toBeGreaterThanOrEqual(3);
      expect(row.persist_count).toBeLessThanOrEqual(1 + Math.ceil(4500 / (delay * 1000)) + 3);
      expect(row.version).toBeGreaterThan(3 * row.persist_count);
    }
  }, 30_000);
});

describe('persist worker shutdown and crashes', () => {
  test('SIGTERM with unpersisted attempts: exits 0 within 10 s and every attempt is in PostgreSQL with its latest version', async () => {
    const { client, worker } = await startStack({ PERSIST_DELAY_SECONDS: 30 });
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) ids.push((await client.start()).id);
    const latest = new Map<string, number>();
    for (let round = 0; round < 3; round++) {
      for (const id of ids) latest.set(id, (await client.progress(id, { [`q${round}`]: `${id}-${round}` }, round)).version);
    }
    // nothing persisted yet: the window is 30 s
    for (const row of (await rowsById(stores().knex, ids)).values()) expect(row.version).toBe(1);
    expect(await dirtyTotal(stores().redis)).toBe(ids.length);

    const exit = await worker.kill('SIGTERM', 15_000);
    expect({ code: exit.code, signal: exit.signal, escalated: exit.escalated }).toEqual({ code: 0, signal: null, escalated: false });
    expect(exit.ms).toBeLessThan(10_000);

    const rows = await rowsById(stores().knex, ids);
    for (const id of ids) {
      expect(rows.get(id)).toMatchObject({ version: latest.get(id), persist_count: 2, current_question: 2 });
      expect(rows.get(id)!.answers).toEqual({ q0: `${id}-0`, q1: `${id}-1`, q2: `${id}-2` });
    }
    await expectClean(ids);
  }, 40_000);

  test('SIGTERM while a batch is blocked in PostgreSQL: the active jobs finish, then it exits 0 within 10 s', async () => {
    const { client, worker } = await startStack({ PERSIST_DELAY_SECONDS: 1 });
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push((await client.start()).id);
    const latest = new Map<string, number>();

    const trx = await stores().knex.transaction();
    let exiting: ReturnType<ServiceProcess['kill']>;
    try {
      await trx.raw('lock table quiz_sessions in share mode');
      for (const id of ids) latest.set(id, (await client.progress(id, { q0: id }, 0)).version);
      await waitFor('the worker batch to block in PostgreSQL', async () => (await insertsWaitingOnLock(stores().knex)) > 0, 6000);
      exiting = worker.kill('SIGTERM', 15_000);
      await sleep(1500);
      expect(worker.running).toBe(true); // still finishing its active jobs
    } finally {
      await trx.rollback();
    }
    const exit = await exiting;
    expect({ code: exit.code, signal: exit.signal, escalated: exit.escalated }).toEqual({ code: 0, signal: null, escalated: false });
    expect(exit.ms).toBeLessThan(10_000);
    const rows = await rowsById(stores().knex, ids);
    for (const id of ids) expect(rows.get(id)).toMatchObject({ version: latest.get(id), persist_count: 2, answers: { q0: id } });
    await expectClean(ids);
  }, 40_000);

  test('SIGKILL mid-batch, then a restart: every acknowledged version reaches PostgreSQL (stalled jobs recovered)', async () => {
    const env = { ...stores().env, PERSIST_DELAY_SECONDS: 1 };
    const { client, worker } = await startStack(env);
    const ids: string[] = [];
    for (let n = 0; n < 30; n++) ids.push((await client.start()).id);
    const [early, late] = [ids.slice(0, 15), ids.slice(15)];
    const latest = new Map<string, number>();
    const write = async (group: string[], round: number) => {
      for (const id of group) latest.set(id, (await client.progress(id, { [`q${round}`]: round }, round)).version);
    };

    // block the worker's batch inside PostgreSQL, so its jobs are active when it dies
    const trx = await stores().knex.transaction();
    let exit: ExitInfo | undefined;
    try {
      await trx.raw('lock table quiz_sessions in share mode');
      await write(early, 0);
      await write(early, 1);
      await waitFor('the worker batch to block in PostgreSQL', async () => (await insertsWaitingOnLock(stores().knex)) > 0, 6000);
      expect(await persistQueue.getActiveCount()).toBeGreaterThan(0);
      exit = await worker.kill('SIGKILL');
    } finally {
      await trx.rollback();
    }
    expect(exit?.signal).toBe('SIGKILL');
    const killedAt = Date.now();

    // acknowledged while no persist worker runs: more on the active (now stalled) attempts, and new
    // windows whose jobs fall due meanwhile
    await write(early, 2);
    await write(late, 0);
    await write(late, 1);
    await write(late, 2);
    await sleep(1200);

    await startProcess('persist-worker', env);
    // the lock of a dead worker's job runs out after lockDuration (10 s), then the stalled check (5 s) takes it back
    const seenAt = await waitForRows(stores().knex, ids, (r, id) => r.version === latest.get(id), 25_000, 'every acknowledged version');
    expect(seenAt - killedAt).toBeLessThan(25_000);
    const rows = await rowsById(stores().knex, ids);
    for (const id of early) expect(rows.get(id)!.answers).toEqual({ q0: 0, q1: 1, q2: 2 });
    for (const id of late) expect(rows.get(id)!.answers).toEqual({ q0: 0, q1: 1, q2: 2 });
    await waitFor('the dirty set to empty', async () => (await dirtyTotal(stores().redis)) === 0, 5000);
    expect(await persistQueue.getFailedCount()).toBe(0);
  }, 60_000);
});
