import type { Queue } from 'bullmq';
import { jobIds, QUEUES } from '../src/shared/queues/jobs';
import { expiryTick } from '../src/shared/domain/deadline';
import { sessionKey } from '../src/shared/store/sessionStore';
import { expectError } from './support/contract';
import { sleepUntil, waitFor } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { AttemptClient, epoch, openQueue, rowOf, waitForRows } from './support/workerScenario';

/*
 * What the deadline does under each overdue_handling, and the live controls across it, with a real
 * API process and a real lifecycle worker over this file's own database and Redis DB. The sweep
 * runs every 10 minutes: the expiry ticks' expire-window jobs have to do it, each transition durable in
 * PostgreSQL within 2 s of when it is due. No persist worker runs: PostgreSQL gets what the start,
 * the controls and the lifecycle worker write.
 */

const stores = useIsolatedStores();
let client: AttemptClient;
let lifecycleQueue: Queue;

beforeAll(async () => {
  const env = { ...stores().env, PERSIST_DELAY_SECONDS: 30, SWEEP_INTERVAL_SECONDS: 600 };
  const [api] = await Promise.all([startProcess('api', env), startProcess('lifecycle-worker', env)]);
  client = new AttemptClient(api.url!);
  lifecycleQueue = openQueue(stores(), QUEUES.lifecycle);
}, 60_000);

afterAll(async () => {
  await lifecycleQueue?.close();
}, 30_000);

/** Waits for the attempt's row to satisfy `done`; returns when it was first seen. */
const rowBecomes = (id: string, done: Parameters<typeof waitForRows>[2], timeoutMs: number, what: string) =>
  waitForRows(stores().knex, [id], done, timeoutMs, what);

describe('at the deadline, by overdue_handling', () => {
  test('autosubmit: completed at the deadline by the timer, with the answers saved before it; later progress 409, reads 200', async () => {
    const quiz = await client.quizWithPolicy({ time_limit_seconds: 3, overdue_handling: 'autosubmit' });
    const attempt = await client.startQuiz(quiz);
    await client.progress(attempt.id, { q1: 'A' }, 1);
    const deadline = Date.parse(attempt.expires_at!);

    const seenAt = await rowBecomes(attempt.id, (r) => r.status === 'completed', deadline - Date.now() + 5000, 'the autosubmit');
    expect(seenAt - deadline).toBeLessThanOrEqual(2000);
    const row = await rowOf(stores().knex, attempt.id);
    expect(row).toMatchObject({ status: 'completed', submitted_by: 'timer', answers: { q1: 'A' }, current_question: 1 });
    expect(epoch(row.completed_at)).toBe(deadline);
    expect(epoch(row.ended_at)).toBe(deadline);

    const read = await client.get(attempt.id);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ status: 'completed', submitted_by: 'timer', time_remaining: 0, completed_at: attempt.expires_at });
    expectError(await client.progressRaw(attempt.id, { q2: 'B' }), 409, 'SESSION_COMPLETED');
  }, 30_000);

  test('autoabandon: abandoned at the deadline; reads and progress 410', async () => {
    const quiz = await client.quizWithPolicy({ time_limit_seconds: 2, overdue_handling: 'autoabandon' });
    const attempt = await client.startQuiz(quiz);
    const deadline = Date.parse(attempt.expires_at!);

    const seenAt = await rowBecomes(attempt.id, (r) => r.status === 'abandoned', deadline - Date.now() + 5000, 'the autoabandon');
    expect(seenAt - deadline).toBeLessThanOrEqual(2000);
    const row = await rowOf(stores().knex, attempt.id);
    expect(epoch(row.ended_at)).toBe(deadline);
    expect(row.submitted_by).toBeNull();
    expectError(await client.get(attempt.id), 410, 'SESSION_EXPIRED');
    expectError(await client.progressRaw(attempt.id, { q1: 'A' }), 410, 'SESSION_EXPIRED');
  }, 30_000);

  test('graceperiod: overdue until the grace ends (reads 200, progress 410), then expired at the end of the grace', async () => {
    const quiz = await client.quizWithPolicy({ time_limit_seconds: 2, overdue_handling: 'graceperiod', grace_period_seconds: 3 });
    const attempt = await client.startQuiz(quiz);
    await client.progress(attempt.id, { q1: 'A' });
    const deadline = Date.parse(attempt.expires_at!);
    const graceEnd = deadline + 3000;

    const overdueAt = await rowBecomes(attempt.id, (r) => r.status === 'overdue', deadline - Date.now() + 5000, 'overdue');
    expect(overdueAt - deadline).toBeLessThanOrEqual(2000);
    if (Date.now() < graceEnd - 300) {
      const read = await client.get(attempt.id);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ status: 'overdue', time_remaining: 0, answers: { q1: 'A' } });
      expectError(await client.progressRaw(attempt.id, { q2: 'B' }), 410, 'SESSION_EXPIRED');
    }

    const expiredAt = await rowBecomes(attempt.id, (r) => r.status === 'expired', graceEnd - Date.now() + 5000, 'expired after the grace');
    expect(expiredAt - graceEnd).toBeLessThanOrEqual(2000);
    const row = await rowOf(stores().knex, attempt.id);
    expect(epoch(row.ended_at)).toBe(graceEnd);
    expect(row.answers).toEqual({ q1: 'A' });
    expectError(await client.get(attempt.id), 410, 'SESSION_EXPIRED');
  }, 30_000);

  test('graceperiod: a complete during the grace is accepted, submitted by the student', async () => {
    const quiz = await client.quizWithPolicy({ time_limit_seconds: 2, overdue_handling: 'graceperiod', grace_period_seconds: 30 });
    const attempt = await client.startQuiz(quiz);
    const deadline = Date.parse(attempt.expires_at!);
    await sleepUntil(deadline, 200);
    expect((await client.get(attempt.id)).body.status).toBe('overdue');
    const completed = await client.complete(attempt.id);
    expect(completed).toMatchObject({ status: 'completed', submitted_by: 'student' });
    expect(Date.parse(completed.completed_at!)).toBeGreaterThanOrEqual(deadline);
    expect(await rowOf(stores().knex, attempt.id)).toMatchObject({ status: 'completed', submitted_by: 'student' });
  }, 30_000);
});

describe('live controls across the deadline', () => {
  test('after an extension the old expiry job does not close the attempt early; the new deadline does, within 2 s', async () => {
    const attempt = await client.start(2);
    const extended = await client.controlOk(attempt.id, 'extend', { seconds: 3, reason: 'fire alarm' });
    const oldDeadline = Date.parse(attempt.expires_at!);
    const newDeadline = Date.parse(extended.expires_at!);
    expect(newDeadline).toBe(oldDeadline + 3000);
    expect(extended).toMatchObject({ version: attempt.version + 1, extra_time_seconds: 3 });

    // the extension re-listed the attempt at its new deadline: the old deadline's tick ran and found nothing due
    await waitFor(
      'the old deadline tick to finish',
      async () => (await lifecycleQueue.getJobState(jobIds.expireWindow(0, expiryTick(oldDeadline)))) === 'completed',
      oldDeadline - Date.now() + 5000,
    );
    expect((await lifecycleQueue.getJob(jobIds.expireWindow(0, expiryTick(oldDeadline))))?.returnvalue).toEqual({ due: 0, moved: {} });
    const between = await client.get(attempt.id);
    expect(between.status).toBe(200);
    expect(between.body.status).toBe('started');
    expect((await rowOf(stores().knex, attempt.id)).status).toBe('started');
    await client.progress(attempt.id, { q1: 'after the old deadline' });

    const seenAt = await rowBecomes(attempt.id, (r) => r.status === 'expired', newDeadline - Date.now() + 5000, 'the expiry');
    expect(seenAt).toBeGreaterThanOrEqual(newDeadline);
    expect(seenAt - newDeadline).toBeLessThanOrEqual(2000);
    const row = await rowOf(stores().knex, attempt.id);
    expect(epoch(row.ended_at)).toBe(newDeadline);
    expect(row.answers).toEqual({ q1: 'after the old deadline' });
    expect(row.extra_time_seconds).toBe(3);
  }, 30_000);

  test('a pause across the original deadline stops the clock; resume gives back the time left at the pause', async () => {
    const attempt = await client.start(3);
    const deadline = Date.parse(attempt.expires_at!);
    const paused = await client.controlOk(attempt.id, 'pause', { reason: 'medical break' });
    const pausedAt = Date.parse(paused.paused_at!);
    const leftMs = deadline - pausedAt;
    expect(paused).toMatchObject({ status: 'paused', version: attempt.version + 1 });
    expect(paused.time_remaining).toBe(Math.ceil(leftMs / 1000));
    expect((await rowOf(stores().knex, attempt.id)).status).toBe('paused');

    // well past the original deadline, and past its job
    await sleepUntil(deadline + 1500);
    // the original deadline's tick ran: the paused attempt was found not due and dropped from the index
    expect(await lifecycleQueue.getJob(jobIds.expireWindow(0, expiryTick(deadline)))).toMatchObject({ returnvalue: { due: 1, moved: {} } });
    const during = await client.get(attempt.id);
    expect(during.body).toMatchObject({ status: 'paused', time_remaining: paused.time_remaining, paused_at: paused.paused_at });
    expectError(await client.progressRaw(attempt.id, { q1: 'A' }), 423, 'SESSION_PAUSED');
    // pausing again changes nothing
    const again = await client.control(attempt.id, 'pause');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ version: paused.version, paused_at: paused.paused_at });
    expect((await rowOf(stores().knex, attempt.id)).status).toBe('paused');

    const before = Date.now();
    const resumed = await client.controlOk(attempt.id, 'resume');
    const newDeadline = Date.parse(resumed.expires_at!);
    expect(resumed).toMatchObject({ status: 'started', paused_at: null });
    expect(newDeadline - leftMs).toBeGreaterThanOrEqual(before);
    expect(newDeadline - leftMs).toBeLessThanOrEqual(Date.now());
    await client.progress(attempt.id, { q1: 'after the break' });

    const seenAt = await rowBecomes(attempt.id, (r) => r.status === 'expired', newDeadline - Date.now() + 5000, 'the expiry after resume');
    expect(seenAt - newDeadline).toBeLessThanOrEqual(2000);
    const row = await rowOf(stores().knex, attempt.id);
    expect(epoch(row.ended_at)).toBe(newDeadline);
    expect(row.answers).toEqual({ q1: 'after the break' });
  }, 30_000);

  test('an attempt that expired by time is reopened by an extension with reopen: in progress, answers kept, expired again at the new deadline', async () => {
    const attempt = await client.start(2);
    await client.progress(attempt.id, { q1: 'kept' });
    const deadline = Date.parse(attempt.expires_at!);
    await rowBecomes(attempt.id, (r) => r.status === 'expired', deadline - Date.now() + 5000, 'the first expiry');

    expectError(await client.control(attempt.id, 'extend', { seconds: 60 }), 410, 'SESSION_EXPIRED');
    const reopened = await client.controlOk(attempt.id, 'extend', { seconds: 3, from: 'now', reopen: true, reason: 'network outage' });
    expect(reopened).toMatchObject({ status: 'in_progress', answers: { q1: 'kept' } });
    expect((await rowOf(stores().knex, attempt.id)).status).toBe('in_progress');
    await client.progress(attempt.id, { q2: 'more' });

    const newDeadline = Date.parse(reopened.expires_at!);
    const seenAt = await rowBecomes(attempt.id, (r) => r.status === 'expired', newDeadline - Date.now() + 5000, 'the second expiry');
    expect(seenAt - newDeadline).toBeLessThanOrEqual(2000);
    expect((await rowOf(stores().knex, attempt.id)).answers).toEqual({ q1: 'kept', q2: 'more' });
    expect(await stores().redis.hget(sessionKey(attempt.id), 'status')).toBe('expired');
  }, 30_000);
});
