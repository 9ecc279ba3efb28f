import { randomUUID } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshotPath, timerSeconds, waitForText } from '../support/browser';
import { buildSession, startTestApi, type AttemptJson, type TestApi } from '../support/harness';
import { AUDIENCE, ISSUER, SECRET, bearerFor, hsToken } from '../support/authApi';
import { killAllProcesses, runStores, startProcess, type ServiceProcess } from '../support/processes';
import { request } from '../support/http';

/*
 * The pages in a real browser (Debian's Chromium through playwright-core) against the service as
 * a real process (`node dist/src/main.js api`, built by npm run build): the student reference
 * client at /demo and the proctor console at /console. The in-process test API beside it is
 * "another device" (direct writes) and cleans up this file's users.
 */

let api: TestApi;
let service: ServiceProcess;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  [api, service, browser] = await Promise.all([
    startTestApi(),
    startProcess('api', { ...runStores(), STREAM_TIME_EVENT_SECONDS: 1 }),
    launchChromium(),
  ]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await killAllProcesses();
  await api?.close();
});
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

/** A fresh browser profile (its own localStorage): a device. */
async function device(): Promise<BrowserContext> {
  const context = await browser.newContext();
  contexts.push(context);
  return context;
}

const quizId = () => `quiz-${randomUUID().slice(0, 8)}`;
const demoUrl = (quiz: string, user: string) => `${service.url}/demo?quiz=${encodeURIComponent(quiz)}&user=${encodeURIComponent(user)}`;
const consoleUrl = (quiz: string) => `${service.url}/console?quiz=${encodeURIComponent(quiz)}`;
const answer = (page: Page, q: string) => page.getByTestId(`answer-${q}`);

/** Opens the student page and waits until the attempt is loaded (the inputs enabled). */
async function openDemo(context: BrowserContext, quiz: string, user: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(demoUrl(quiz, user));
  await page.waitForFunction(() => document.body.dataset.status === 'started' || document.body.dataset.status === 'in_progress');
  await expectEnabled(page, true);
  return page;
}

/** Opens the console and waits until it is live. */
async function openConsole(context: BrowserContext, quiz: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(consoleUrl(quiz));
  await page.waitForFunction(() => document.getElementById('live')?.dataset.live === 'live');
  return page;
}

/** Waits until every answer input is enabled (or every one disabled). */
async function expectEnabled(page: Page, enabled: boolean): Promise<void> {
  await page.waitForFunction(
    (want) => {
      const inputs = [...document.querySelectorAll<HTMLInputElement>('[data-testid^="answer-q"]')];
      return inputs.length === 5 && inputs.every((i) => i.disabled === !want);
    },
    enabled,
    { timeout: 10_000 },
  );
}

/** The attempt as the service holds it now. */
async function serverAttempt(id: string): Promise<AttemptJson> {
  const res = await request(api.url, 'GET', `/api/sessions/${id}`);
  return res.body as AttemptJson;
}

/** The user's attempt at the quiz (listing), once it exists. */
async function attemptOf(quiz: string, user: string): Promise<AttemptJson> {
  const res = await request(api.url, 'GET', `/api/quizzes/${quiz}/attempts?user_id=${encodeURIComponent(user)}`);
  expect(res.body.attempts).toHaveLength(1);
  return res.body.attempts[0] as AttemptJson;
}

/** The row of an attempt in the console. */
const row = (page: Page, id: string) => page.locator(`[data-testid="attempt-row"][data-attempt-id="${id}"]`);

test('the pages are served with a Content-Security-Policy and without inline scripts; a bad query is a 400', async () => {
  for (const path of ['/demo?quiz=q&user=u', '/console?quiz=q']) {
    const res = await fetch(service.url + path);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    // every script has a src; no inline handlers, no style attributes
    expect(html.match(/<script\b[^>]*>/g)?.every((tag) => / src="\/web\/[a-z-]+\.js"/.test(tag))).toBe(true);
    expect(html).not.toMatch(/\son[a-z]+=|\sstyle=|<style/i);
  }
  expect((await request(service.url!, 'GET', '/demo')).status).toBe(400);
  const tokenInQuery = await request(service.url!, 'GET', '/demo?quiz=q&token=abc');
  expect(tokenInQuery.status).toBe(400);
  expect(tokenInQuery.body).toMatchObject({ errorCode: 'VALIDATION_ERROR', field: 'token' });
  expect((await request(service.url!, 'GET', '/console?quiz=')).status).toBe(400);
  expect((await request(service.url!, 'GET', '/web/../package.json')).status).toBe(404);

  // and in the browser: the page runs, and the CSP reports no violation
  const context = await device();
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (m) => m.type() === 'error' && violations.push(m.text()));
  await page.goto(demoUrl(quizId(), api.userId()));
  await expectEnabled(page, true);
  expect(await page.getByLabel('1. What is the capital of France?').count()).toBe(1);
  // a timer screen readers can read: role timer, and a polite live region that says the time
  expect(await page.getByRole('timer', { name: 'Time left' }).count()).toBe(1);
  await page.waitForFunction(() => /^\d+ minutes left$/.test(document.getElementById('time-announcer')?.textContent ?? ''));
  expect(await page.locator('#time-announcer').getAttribute('aria-live')).toBe('polite');
  expect(violations.filter((v) => /Content Security Policy/i.test(v))).toEqual([]);
});

test('answering, closing the tab and resuming: every answer restored, in the same profile and in another', async () => {
  const quiz = quizId();
  const user = api.userId();
  const laptop = await device();
  const page = await openDemo(laptop, quiz, user);
  await answer(page, 'q1').fill('Paris');
  await answer(page, 'q2').pressSequentially('6');
  await answer(page, 'q3').fill('carbon dioxide');
  await waitForText(page, 'save-status', 'saved');
  const attempt = await attemptOf(quiz, user);
  expect(attempt.answers).toEqual({ q1: 'Paris', q2: '6', q3: 'carbon dioxide' });
  await page.close();

  const again = await openDemo(laptop, quiz, user);
  expect(await answer(again, 'q1').inputValue()).toBe('Paris');
  expect(await answer(again, 'q2').inputValue()).toBe('6');
  expect(await answer(again, 'q3').inputValue()).toBe('carbon dioxide');
  expect(await answer(again, 'q4').inputValue()).toBe('');

  // another browser profile (nothing kept locally): the same answers, from the server
  const phone = await device();
  const elsewhere = await openDemo(phone, quiz, user);
  expect(await answer(elsewhere, 'q3').inputValue()).toBe('carbon dioxide');
  expect((await attemptOf(quiz, user)).id).toBe(attempt.id);
});

test('an answer given offline is kept, shown as offline, and saved once the connection is back', async () => {
  const quiz = quizId();
  const user = api.userId();
  const context = await device();
  const page = await openDemo(context, quiz, user);
  await answer(page, 'q1').fill('Paris');
  await waitForText(page, 'save-status', 'saved');

  const id = (await attemptOf(quiz, user)).id;
  await context.setOffline(true);
  const failed = page.waitForEvent('requestfailed', { predicate: (r) => r.url().endsWith(`/${id}/progress`) });
  await answer(page, 'q4').fill('Jane Austen');
  await failed;
  await waitForText(page, 'save-status', 'offline');
  expect((await serverAttempt(id)).answers).toEqual({ q1: 'Paris' });
  // kept on the device meanwhile
  const kept = await page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('quiz-session:'))
      .map((k) => localStorage.getItem(k)),
  );
  expect(kept.join()).toContain('Jane Austen');

  await context.setOffline(false);
  await waitForText(page, 'save-status', 'saved');
  expect((await serverAttempt(id)).answers).toEqual({ q1: 'Paris', q4: 'Jane Austen' });
});

test('an answer given offline survives closing the tab: the reopened page sends it', async () => {
  const quiz = quizId();
  const user = api.userId();
  const context = await device();
  const page = await openDemo(context, quiz, user);
  const id = (await attemptOf(quiz, user)).id;
  await context.setOffline(true);
  // the write is tried (and fails on the way) before the tab is closed: it is kept with its key
  const failed = page.waitForEvent('requestfailed', { predicate: (r) => r.url().endsWith(`/${id}/progress`) });
  await answer(page, 'q5').fill('56');
  await failed;
  await waitForText(page, 'save-status', 'offline');
  await page.close();
  expect((await serverAttempt(id)).answers).toEqual({});

  await context.setOffline(false);
  // the reopened page's write is held on the way, so the page is seen showing the kept answer
  // before the server has it
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await context.route('**/progress', async (route) => {
    await released;
    await route.continue();
  });
  const reopened = await openDemo(context, quiz, user);
  expect(await answer(reopened, 'q5').inputValue()).toBe('56');
  await waitForText(reopened, 'save-status', 'saving');
  release();
  await waitForText(reopened, 'save-status', 'saved');
  expect((await serverAttempt(id)).answers).toEqual({ q5: '56' });
});

test("a conflicting write from another device is merged, not lost: both devices' answers are kept", async () => {
  const quiz = quizId();
  const user = api.userId();
  const context = await device();
  const page = await openDemo(context, quiz, user);
  const attempt = await attemptOf(quiz, user);

  // this page writes while it cannot reach the server (the write is sent and fails on the way);
  // the other device writes meanwhile
  await context.setOffline(true);
  const failed = page.waitForEvent('requestfailed', { predicate: (r) => r.url().endsWith(`/${attempt.id}/progress`) });
  await answer(page, 'q2').fill('six');
  await failed;
  await waitForText(page, 'save-status', 'offline');
  const other = await request(api.url, 'PATCH', `/api/sessions/${attempt.id}/progress`, {
    answers: { q1: 'Paris (from the phone)' },
    version: attempt.version,
  });
  expect(other.status).toBe(200);

  await context.setOffline(false);
  await waitForText(page, 'save-status', 'saved');
  const after = await serverAttempt(attempt.id);
  expect(after.answers).toEqual({ q1: 'Paris (from the phone)', q2: 'six' });
  // the page's write met the newer version (409), merged into it and was sent again
  expect(Number(await page.evaluate(() => document.body.dataset.conflictsMerged ?? '0'))).toBeGreaterThanOrEqual(1);
  const events = (await request(api.url, 'GET', `/api/sessions/${attempt.id}/events`)).body.events as Array<{
    type: string;
    data: Record<string, unknown>;
  }>;
  expect(events.some((e) => e.type === 'write_rejected' && e.data.status === 409)).toBe(true);
  // and the page shows the other device's answer
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="answer-q1"]') as HTMLInputElement).value === 'Paris (from the phone)',
  );
});

test("the console lists an attempt started elsewhere within 2 s; a proctor's extension reaches the student's timer within 3 s", async () => {
  const quiz = quizId();
  const proctor = await openConsole(await device(), quiz);
  const before = Date.now();
  const started = await buildSession(api, { quiz_id: quiz });
  await row(proctor, started.id).waitFor({ timeout: 2_000 });
  expect(Date.now() - before).toBeLessThan(2_000);
  expect(await row(proctor, started.id).getByTestId('status').textContent()).toBe('started');
  expect(timerSeconds(await row(proctor, started.id).getByTestId('time-remaining').textContent())).toBeGreaterThan(1700);

  // the student's page, for a user whose attempt the console shows
  const user = api.userId();
  const student = await openDemo(await device(), quiz, user);
  const attempt = await attemptOf(quiz, user);
  await row(proctor, attempt.id).waitFor({ timeout: 2_000 });
  await answer(student, 'q1').fill('Paris');
  await waitForText(student, 'save-status', 'saved');
  await proctor.waitForFunction(
    (id) => document.querySelector(`[data-attempt-id="${id}"] [data-testid="answered"]`)?.textContent === '1',
    attempt.id,
    { timeout: 2_000 },
  );
  const shown = timerSeconds(await student.getByTestId('timer').textContent());
  expect(shown).toBeGreaterThan(1700);
  expect(shown).toBeLessThanOrEqual(1800);

  const clicked = Date.now();
  await row(proctor, attempt.id).getByTestId('extend-button').click();
  await student.waitForFunction(
    (floor) => {
      const text = document.querySelector('[data-testid="timer"]')?.textContent ?? '';
      const seconds = text.split(':').reduce((t, p) => t * 60 + Number(p), 0);
      return seconds > floor;
    },
    shown + 250,
    { timeout: 3_000 },
  );
  expect(Date.now() - clicked).toBeLessThan(3_000);
  expect((await serverAttempt(attempt.id)).extra_time_seconds).toBe(300);
  expect(timerSeconds(await row(proctor, attempt.id).getByTestId('time-remaining').textContent())).toBeGreaterThan(2000);
});

test('pause from the console disables the inputs, resume enables them; the event log shows both', async () => {
  const quiz = quizId();
  const user = api.userId();
  const proctor = await openConsole(await device(), quiz);
  const student = await openDemo(await device(), quiz, user);
  const attempt = await attemptOf(quiz, user);
  // by keyboard: Enter on the focused button; the focus then moves to its counterpart
  await row(proctor, attempt.id).getByTestId('pause-button').focus();
  await proctor.keyboard.press('Enter');
  await expectEnabled(student, false);
  await proctor.waitForFunction(
    (id) => document.querySelector(`[data-attempt-id="${id}"] [data-testid="status"]`)?.textContent === 'paused',
    attempt.id,
  );
  expect((await serverAttempt(attempt.id)).status).toBe('paused');
  // the frozen clock: the student's timer stands still
  const frozen = await student.getByTestId('timer').textContent();
  await student.waitForTimeout(1_200); // a second of nothing happening, which is the point here
  expect(await student.getByTestId('timer').textContent()).toBe(frozen);

  await proctor.waitForFunction(() => (document.activeElement as HTMLElement | null)?.dataset.testid === 'resume-button');
  await proctor.keyboard.press('Enter');
  await expectEnabled(student, true);
  await answer(student, 'q3').fill('CO2');
  await waitForText(student, 'save-status', 'saved');
  expect((await serverAttempt(attempt.id)).answers).toEqual({ q3: 'CO2' });

  await row(proctor, attempt.id).getByTestId('events-button').click();
  const log = proctor.getByTestId('event-log');
  await log.waitFor();
  await proctor.waitForFunction(() => document.querySelectorAll('[data-testid="event-log"] [data-type="answer_saved"]').length === 1);
  const types = await log.locator('[data-testid="event"]').evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.type));
  expect(types).toEqual(expect.arrayContaining(['started', 'paused', 'resumed_by_proctor', 'answer_saved']));
  expect(types.indexOf('paused')).toBeLessThan(types.indexOf('resumed_by_proctor'));
});

test('submit completes the attempt: the page says so and the inputs are disabled; reopening the page shows it closed', async () => {
  const quiz = quizId();
  const user = api.userId();
  const context = await device();
  const page = await openDemo(context, quiz, user);
  await answer(page, 'q1').fill('Paris');
  await answer(page, 'q5').fill('56');
  await page.getByTestId('submit').click();
  await page.waitForFunction(() => document.body.dataset.status === 'completed');
  await expectEnabled(page, false);
  expect(await page.getByTestId('submit').isDisabled()).toBe(true);
  const attempt = await attemptOf(quiz, user);
  expect(attempt).toMatchObject({ status: 'completed', submitted_by: 'student', answers: { q1: 'Paris', q5: '56' } });
});

test('a custom extension for one, bulk extend for every open attempt of the quiz; reopen brings back an expired one', async () => {
  const quiz = quizId();
  const a = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
  const b = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
  const gone = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 1 });
  const proctor = await openConsole(await device(), quiz);
  await row(proctor, b.id).waitFor();
  // the short one expires at its deadline: a write after it settles it (no worker runs here) and
  // the quiz's stream tells the console
  const until = Date.now() + 5_000;
  while ((await request(api.url, 'PATCH', `/api/sessions/${gone.id}/progress`, { current_question: 1 })).status !== 410) {
    if (Date.now() > until) throw new Error('the 1 s attempt did not expire within 5 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  await proctor.waitForFunction(
    (id) => document.querySelector(`[data-attempt-id="${id}"] [data-testid="status"]`)?.textContent === 'expired',
    gone.id,
  );

  // a custom extension for one student: minutes and a reason, in the row's small form (by keyboard)
  const aRow = row(proctor, a.id);
  await aRow.locator('summary').focus();
  await proctor.keyboard.press('Enter');
  await proctor.getByLabel(`Minutes for ${a.user_id}`, { exact: true }).fill('7');
  await proctor.getByLabel(`Reason for ${a.user_id}`, { exact: true }).fill('late start');
  await proctor.getByLabel(`Reason for ${a.user_id}`, { exact: true }).press('Enter');
  await proctor.waitForFunction(() => /Extended .* by 7 minutes/.test(document.getElementById('notice')?.textContent ?? ''));
  expect((await serverAttempt(a.id)).extra_time_seconds).toBe(420);
  const aEvents = (await request(api.url, 'GET', `/api/sessions/${a.id}/events`)).body.events as Array<{
    type: string;
    data: Record<string, unknown>;
  }>;
  expect(aEvents.find((e) => e.type === 'extended')?.data).toMatchObject({ seconds: 420, reason: 'late start' });

  await proctor.getByLabel('Extend everyone by (minutes)').fill('15');
  await proctor.getByTestId('extend-all-button').click();
  await proctor.waitForFunction(() => /Extended 2 of 2 attempts/.test(document.getElementById('notice')?.textContent ?? ''));
  expect((await serverAttempt(a.id)).extra_time_seconds).toBe(420 + 900);
  expect((await serverAttempt(b.id)).extra_time_seconds).toBe(900);

  await row(proctor, gone.id).getByTestId('reopen-button').click();
  await proctor.waitForFunction(
    (id) => document.querySelector(`[data-attempt-id="${id}"] [data-testid="status"]`)?.textContent === 'in_progress',
    gone.id,
  );
  const reopened = await serverAttempt(gone.id);
  expect(reopened.status).toBe('in_progress');
  expect(reopened.time_remaining).toBeGreaterThan(590);
});

test("with authentication on: the console asks for a proctor's token once per tab and says when a token is no proctor's; the student page takes a token", async () => {
  const secured = await startProcess('api', {
    ...runStores(),
    AUTH_JWT_SECRET: SECRET,
    AUTH_JWT_ISSUER: ISSUER,
    AUTH_JWT_AUDIENCE: AUDIENCE,
    STREAM_TIME_EVENT_SECONDS: 1,
  });
  try {
    const quiz = quizId();
    const user = api.userId();
    const page = await (await device()).newPage();
    await page.goto(`${secured.url}/console?quiz=${quiz}`);
    await page.getByTestId('auth-message').waitFor();
    expect(await page.getByTestId('auth-message').textContent()).toMatch(/proctor's token/);

    // a student's token: the console says it lacks the proctor role
    await page.getByLabel('Token', { exact: true }).fill(await hsToken({ sub: user }));
    await page.getByRole('button', { name: 'Use this token' }).click();
    await page.waitForFunction(() =>
      /does not have the proctor role/.test(document.querySelector('[data-testid="auth-message"]')?.textContent ?? ''),
    );
    expect(await page.locator('#desk').isHidden()).toBe(true);

    await page.getByLabel('Token', { exact: true }).fill(await hsToken({ sub: 'proctor-1', role: 'proctor' }));
    await page.getByRole('button', { name: 'Use this token' }).click();
    await page.waitForFunction(() => document.getElementById('live')?.dataset.live === 'live');

    // the student, with a token in the fragment (never sent to the server)
    const studentToken = await hsToken({ sub: user });
    const student = await (await device()).newPage();
    await student.goto(`${secured.url}/demo?quiz=${quiz}#token=${studentToken}`);
    await expectEnabled(student, true);
    expect(new URL(student.url()).hash).toBe('');
    await answer(student, 'q1').fill('Paris');
    await waitForText(student, 'save-status', 'saved');
    const listed = await request(
      secured.url!,
      'GET',
      `/api/quizzes/${quiz}/attempts`,
      undefined,
      await bearerFor('svc', { role: 'service' }),
    );
    const attempt = listed.body.attempts[0] as AttemptJson;
    expect(attempt).toMatchObject({ user_id: user, answers: { q1: 'Paris' } });
    await row(page, attempt.id).waitFor({ timeout: 2_000 });

    // the token is kept for the tab: a reload needs no paste
    await page.reload();
    await page.waitForFunction(() => document.getElementById('live')?.dataset.live === 'live');
    await row(page, attempt.id).waitFor();
    expect(await page.locator('#auth').isHidden()).toBe(true);
  } finally {
    await secured.kill('SIGTERM');
  }
});

test('screenshots: the student page and the console, in use', async () => {
  const quiz = `physics-101-${randomUUID().slice(0, 4)}`;
  const proctorContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(proctorContext);
  const users = [api.userId('ada'), api.userId('grace'), api.userId('alan')];
  const studentContext = await browser.newContext({ viewport: { width: 900, height: 760 } });
  contexts.push(studentContext);
  const student = await openDemo(studentContext, quiz, users[0]);
  await answer(student, 'q1').fill('Paris');
  await answer(student, 'q2').fill('6');
  await answer(student, 'q3').fill('carbon dioxide');
  await waitForText(student, 'save-status', 'saved');
  const grace = await buildSession(api, { quiz_id: quiz, user_id: users[1] });
  await request(api.url, 'PATCH', `/api/sessions/${grace.id}/progress`, { answers: { q1: 'Paris', q2: '6', q3: 'CO2', q4: 'Austen' } });
  const alan = await buildSession(api, { quiz_id: quiz, user_id: users[2] });
  await request(api.url, 'POST', `/api/sessions/${alan.id}/pause`, { reason: 'medical break' });

  const proctor = await openConsole(proctorContext, quiz);
  await row(proctor, alan.id).waitFor();
  await proctor.waitForFunction(() => document.querySelectorAll('[data-testid="attempt-row"]').length >= 3);
  await student.screenshot({ path: screenshotPath('demo.png'), fullPage: true });
  await proctor.screenshot({ path: screenshotPath('console.png'), fullPage: true });
  expect(await proctor.getByTestId('count-paused').textContent()).toContain('paused: 1');
});
