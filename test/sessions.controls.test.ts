import { expectAttemptShape, expectError, expectValidationError } from './support/contract';
import { buildSession, sessionRow, sleep, sleepUntil, startTestApi, type AttemptJson, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * The live controls over HTTP (open mode, so every role's rights apply; auth.controls covers the
 * roles): extend, pause, resume and reopen, what each refuses, and that each is durable in
 * PostgreSQL when it answers. The workers' side (expiry jobs across them) is workers.overdue.
 */

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api.close());

const control = (id: string, action: 'extend' | 'pause' | 'resume', body?: unknown, prefix = '/api/sessions') =>
  request(api.url, 'POST', `${prefix}/${id}/${action}`, body);

async function ok(id: string, action: 'extend' | 'pause' | 'resume', body?: unknown): Promise<AttemptJson> {
  const res = await control(id, action, body);
  expect(res.status).toBe(200);
  expectAttemptShape(res.body);
  expect(res.headers.get('etag')).toBe(`"${res.body.version}"`);
  return res.body;
}

const progress = (id: string, body: unknown) => request(api.url, 'PATCH', `/api/sessions/${id}/progress`, body);
const ms = (iso: string | null) => Date.parse(iso!);

describe('extend', () => {
  test('from the deadline: the deadline moves later by exactly the seconds, version + 1, extra time counted, durable', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 });
    const once = await ok(s.id, 'extend', { seconds: 120, reason: 'fire alarm' });
    expect(ms(once.expires_at)).toBe(ms(s.expires_at) + 120_000);
    expect(once).toMatchObject({ version: s.version + 1, extra_time_seconds: 120, status: 'started' });
    expect(once.time_remaining).toBeGreaterThan(600);
    // the seed 1 prefix serves the same control
    const seed1 = await control(s.id, 'extend', { seconds: 60 }, '/sessions');
    expect(seed1.status).toBe(200);
    const twice = seed1.body as AttemptJson;
    expect(ms(twice.expires_at)).toBe(ms(s.expires_at) + 180_000);
    expect(twice.extra_time_seconds).toBe(180);
    const row = await sessionRow(api, s.id);
    expect(row).toMatchObject({ version: twice.version, extra_time_seconds: 180 });
    expect((row!.expires_at as Date).getTime()).toBe(ms(twice.expires_at));
  });

  test('from now: the deadline becomes now + seconds, and never earlier than it was', async () => {
    const s = await buildSession(api, { time_limit_seconds: 60 });
    const before = Date.now();
    const later = await ok(s.id, 'extend', { seconds: 600, from: 'now' });
    expect(ms(later.expires_at)).toBeGreaterThanOrEqual(before + 600_000);
    expect(ms(later.expires_at)).toBeLessThanOrEqual(Date.now() + 600_000);
    // now + 10 s is before the deadline: it stays where it is
    const same = await ok(s.id, 'extend', { seconds: 10, from: 'now' });
    expect(same.expires_at).toBe(later.expires_at);
  });

  test('an untimed attempt is 400; a completed one 409; one that expired by time 410 unless reopen', async () => {
    const untimed = await buildSession(api, { time_limit_seconds: 0 });
    expectValidationError(await control(untimed.id, 'extend', { seconds: 60 }), 'seconds');

    const done = await buildSession(api, { time_limit_seconds: 600 });
    await request(api.url, 'POST', `/api/sessions/${done.id}/complete`, {});
    expectError(await control(done.id, 'extend', { seconds: 60 }), 409, 'SESSION_COMPLETED');
    expectError(await control(done.id, 'extend', { seconds: 60, reopen: true }), 409, 'SESSION_COMPLETED');

    const timed = await buildSession(api, { time_limit_seconds: 1 });
    await progress(timed.id, { answers: { q1: 'kept' } });
    // more than a second past the deadline, so that one second more from it is still past
    await sleepUntil(ms(timed.expires_at), 1200);
    const refused = expectError(await control(timed.id, 'extend', { seconds: 60 }), 410, 'SESSION_EXPIRED');
    expect(refused.session).toMatchObject({ status: 'expired' });
    // from the old deadline, one second more is still past: nothing done
    expectValidationError(await control(timed.id, 'extend', { seconds: 1, reopen: true }), 'seconds');
    const reopened = await ok(timed.id, 'extend', { seconds: 60, from: 'now', reopen: true, reason: 'outage' });
    expect(reopened).toMatchObject({ status: 'in_progress', answers: { q1: 'kept' }, submitted_by: null });
    expect(reopened.time_remaining).toBeGreaterThanOrEqual(59);
    expect(await sessionRow(api, timed.id)).toMatchObject({ status: 'in_progress', ended_at: null });
    expect((await progress(timed.id, { answers: { q2: 'new' } })).status).toBe(200);
  });

  test('an abandoned attempt is not reopened (410)', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 });
    await request(api.url, 'POST', `/api/sessions/${s.id}/abandon`, {});
    expectError(await control(s.id, 'extend', { seconds: 60, reopen: true }), 410, 'SESSION_EXPIRED');
  });

  test('reopening is refused while the user has started another attempt at the quiz since (409 ANOTHER_ATTEMPT_OPEN)', async () => {
    const first = await buildSession(api, { time_limit_seconds: 1 });
    await sleepUntil(ms(first.expires_at), 100);
    const second = await buildSession(api, { user_id: first.user_id, quiz_id: first.quiz_id, time_limit_seconds: 600 });
    expect(second.id).not.toBe(first.id);
    const refused = expectError(await control(first.id, 'extend', { seconds: 60, from: 'now', reopen: true }), 409, 'ANOTHER_ATTEMPT_OPEN');
    expect(refused.message).toContain(second.id);
    expect((await sessionRow(api, first.id))!.status).toBe('expired');
  });

  test.each([
    [{}, 'seconds'],
    [{ seconds: 0 }, 'seconds'],
    [{ seconds: 604_801 }, 'seconds'],
    [{ seconds: 1.5 }, 'seconds'],
    [{ seconds: '60' }, 'seconds'],
    [{ seconds: 60, from: 'later' }, 'from'],
    [{ seconds: 60, reopen: 'yes' }, 'reopen'],
    [{ seconds: 60, reason: '' }, 'reason'],
    [{ seconds: 60, reason: 'x'.repeat(501) }, 'reason'],
    [{ seconds: 60, minutes: 1 }, 'minutes'],
  ])('a bad body %j is a 400 naming %s, and nothing changes', async (body, field) => {
    const s = await buildSession(api, { time_limit_seconds: 600 });
    expectValidationError(await control(s.id, 'extend', body), field);
    const after = await request(api.url, 'GET', `/api/sessions/${s.id}`);
    expect(after.body).toMatchObject({ version: s.version, expires_at: s.expires_at, extra_time_seconds: 0 });
  });

  test('an unknown attempt is 404; a malformed id 400', async () => {
    expectError(await control('6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f', 'extend', { seconds: 60 }), 404, 'SESSION_NOT_FOUND');
    expectValidationError(await control('not-a-uuid', 'pause', {}), 'id');
  });
});

describe('pause and resume', () => {
  test('pause stops the clock: time_remaining frozen, writes 423 (retryable), repeats 200 unchanged; resume gives the time back', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 });
    const paused = await ok(s.id, 'pause', { reason: 'medical break' });
    expect(paused).toMatchObject({ status: 'paused', version: s.version + 1 });
    const left = ms(paused.expires_at) - ms(paused.paused_at);
    expect(paused.time_remaining).toBe(Math.ceil(left / 1000));
    expect(await sessionRow(api, s.id)).toMatchObject({ status: 'paused', paused_from: 'started' });

    await sleep(1100);
    const read = await request(api.url, 'GET', `/api/sessions/${s.id}`);
    expect(read.body).toMatchObject({ status: 'paused', time_remaining: paused.time_remaining });

    for (const res of [
      await progress(s.id, { answers: { q1: 'A' } }),
      await request(api.url, 'POST', `/api/sessions/${s.id}/complete`, {}),
      await request(api.url, 'POST', `/api/sessions/${s.id}/abandon`, {}),
    ]) {
      const body = expectError(res, 423, 'SESSION_PAUSED');
      expect(body.retryable).toBe(true);
      expect(res.headers.get('retry-after')).toBe(String(body.retryAfterSeconds));
      expect(body.session).toMatchObject({ status: 'paused', version: paused.version });
    }

    const again = await ok(s.id, 'pause', {});
    expect(again).toMatchObject({ version: paused.version, paused_at: paused.paused_at });

    const before = Date.now();
    const resumed = await ok(s.id, 'resume', {});
    expect(resumed).toMatchObject({ status: 'started', paused_at: null, version: paused.version + 1 });
    expect(ms(resumed.expires_at) - left).toBeGreaterThanOrEqual(before);
    expect(ms(resumed.expires_at) - left).toBeLessThanOrEqual(Date.now());
    expect(await sessionRow(api, s.id)).toMatchObject({ status: 'started', paused_at: null, version: resumed.version });

    const resumedAgain = await ok(s.id, 'resume');
    expect(resumedAgain.version).toBe(resumed.version);
    expect((await progress(s.id, { answers: { q1: 'A' } })).status).toBe(200);
  });

  test('an attempt in progress returns to in progress; an extension while paused adds to the frozen time', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 });
    await progress(s.id, { answers: { q1: 'A' } });
    const paused = await ok(s.id, 'pause');
    const extended = await ok(s.id, 'extend', { seconds: 300 });
    expect(extended.status).toBe('paused');
    expect(extended.time_remaining).toBe(paused.time_remaining! + 300);
    const fromNow = await ok(s.id, 'extend', { seconds: 3600, from: 'now' });
    expect(fromNow.time_remaining).toBe(3600);
    const resumed = await ok(s.id, 'resume');
    expect(resumed.status).toBe('in_progress');
    expect(resumed.time_remaining).toBeGreaterThanOrEqual(3599);
    expect(resumed.extra_time_seconds).toBe(fromNow.extra_time_seconds);
  });

  test('a paused attempt is what a start resumes, paused; and it is never past its deadline while paused', async () => {
    const s = await buildSession(api, { time_limit_seconds: 1 });
    const paused = await ok(s.id, 'pause');
    await sleepUntil(ms(s.expires_at), 300);
    const resumedByStart = await request(api.url, 'POST', '/api/sessions/start', { user_id: s.user_id, quiz_id: s.quiz_id });
    expect(resumedByStart.status).toBe(200);
    expect(resumedByStart.body).toMatchObject({ id: s.id, status: 'paused', time_remaining: paused.time_remaining });
    const resumed = await ok(s.id, 'resume');
    expect(resumed.status).toBe('started');
    expect(ms(resumed.expires_at)).toBeGreaterThan(Date.now());
  });

  test('a closed attempt cannot be paused or resumed: completed 409, expired 410', async () => {
    const done = await buildSession(api, { time_limit_seconds: 600 });
    await request(api.url, 'POST', `/api/sessions/${done.id}/complete`, {});
    expectError(await control(done.id, 'pause', {}), 409, 'SESSION_COMPLETED');
    expectError(await control(done.id, 'resume', {}), 409, 'SESSION_COMPLETED');

    const timed = await buildSession(api, { time_limit_seconds: 1 });
    await sleepUntil(ms(timed.expires_at), 100);
    expectError(await control(timed.id, 'pause', {}), 410, 'SESSION_EXPIRED');
    expectError(await control(timed.id, 'resume', {}), 410, 'SESSION_EXPIRED');
    expect((await sessionRow(api, timed.id))!.status).toBe('expired');
  });

  test('pause and resume refuse unknown fields (400) and change nothing', async () => {
    const s = await buildSession(api, { time_limit_seconds: 600 });
    expectValidationError(await control(s.id, 'pause', { reason: 'ok', until: 'later' }), 'until');
    expectValidationError(await control(s.id, 'resume', { seconds: 5 }), 'seconds');
    expect((await request(api.url, 'GET', `/api/sessions/${s.id}`)).body).toMatchObject({ status: 'started', version: s.version });
  });
});
