import { ApiError, ProctorClient, formatRemaining, isClosed, isRunning, type Attempt, type StreamClientEvent } from '../client';
import { byId, clockTime, dropToken, h, idParam, tabToken, tokenForm } from './page';

/*
 * The proctor console: GET /console?quiz=<id>. A live table of the quiz's attempts, fed by the
 * quiz's stream (no polling), the live controls per attempt and for everyone, the attempt's event
 * log, and a small picture of the room. With authentication on, a proctor's token is pasted once
 * and kept for the tab.
 */

const TOKEN_KEY = 'quiz-console-token';
const quizId = idParam('quiz');
let token = tabToken(TOKEN_KEY);
let client: ProctorClient | null = null;

interface Row {
  attempt: Attempt;
  /** When `attempt` arrived (performance.now()), for the ticking time left. */
  receivedAt: number;
  connection: 'online' | 'offline' | 'unknown';
  connectionAt: string | null;
  tr: HTMLTableRowElement;
}
const rows = new Map<string, Row>();
/** Answered questions in the room, sampled over time, for the chart. */
const samples: Array<{ at: number; answered: number }> = [];

const notice = byId('notice');
const say = (text: string) => (notice.textContent = text);

const answeredOf = (a: Attempt) => Object.values(a.answers).filter((v) => v !== '' && v !== null && v !== undefined).length;
const OPEN = (a: Attempt) => !isClosed(a.status);

/** Seconds left now: counted down from what the server said while the clock runs, frozen otherwise. */
function remainingOf(row: Row): number | null {
  const left = row.attempt.time_remaining;
  if (left === null) return null;
  if (!isRunning(row.attempt.status)) return left;
  return Math.max(0, left - (performance.now() - row.receivedAt) / 1000);
}

function cell(testid: string, ...children: Array<Node | string>): HTMLTableCellElement {
  return h('td', { 'data-testid': testid }, ...children);
}

function button(label: string, testid: string, aria: string, onClick: () => Promise<unknown>): HTMLButtonElement {
  const b = h('button', { type: 'button', 'data-testid': testid, 'aria-label': aria }, label);
  // busy rather than disabled while it runs: a disabled button would drop the keyboard focus
  b.addEventListener('click', () => {
    if (b.getAttribute('aria-busy') === 'true') return;
    b.setAttribute('aria-busy', 'true');
    onClick()
      .catch((err: unknown) => say(`${aria}: ${(err as Error).message}`))
      .finally(() => b.removeAttribute('aria-busy'));
  });
  return b;
}

/** The actions of one attempt: +5 min, a custom extension, pause or resume, reopen, the event log. */
function actions(a: Attempt): HTMLTableCellElement {
  const who = a.user_id;
  const c = client!;
  const td = h('td', { class: 'actions' });
  const running = isRunning(a.status);
  const extend = button('+5 min', 'extend-button', `Add 5 minutes for ${who}`, () =>
    c.extend(a.id, { seconds: 300, reason: 'proctor: +5 min' }),
  );
  extend.hidden = !OPEN(a) || a.expires_at === null;
  const pause = button('Pause', 'pause-button', `Pause ${who}`, () => c.pause(a.id, 'paused by the proctor'));
  pause.hidden = !running;
  const resume = button('Resume', 'resume-button', `Resume ${who}`, () => c.resume(a.id, 'resumed by the proctor'));
  resume.hidden = a.status !== 'paused';
  const reopen = button('Reopen', 'reopen-button', `Reopen ${who} with 10 minutes`, () => c.reopen(a.id, 600, 'reopened by the proctor'));
  reopen.hidden = a.status !== 'expired';
  const log = button('Events', 'events-button', `Event log of ${who}`, () => openDrawer(a.id));

  // the custom extension: minutes and a reason, in a small form
  const minutes = h('input', { type: 'number', min: '1', max: '1440', step: '1', value: '5', required: true, id: `min-${a.id}` });
  const reason = h('input', { type: 'text', maxlength: '500', id: `why-${a.id}`, placeholder: 'reason' });
  const custom = h(
    'form',
    { class: 'custom' },
    // each row's fields have names of their own: "Minutes for <student>"
    h('label', { for: minutes.id }, 'Minutes', h('span', { class: 'visually-hidden' }, ` for ${who}`)),
    minutes,
    h('label', { for: reason.id }, 'Reason', h('span', { class: 'visually-hidden' }, ` for ${who}`)),
    reason,
    h('button', { type: 'submit', 'data-testid': 'extend-custom-button' }, 'Extend'),
  );
  custom.addEventListener('submit', (e) => {
    e.preventDefault();
    const seconds = Math.round(Number(minutes.value) * 60);
    if (!Number.isInteger(seconds) || seconds < 60) {
      say('Give a whole number of minutes, at least 1.');
      return;
    }
    c.extend(a.id, { seconds, ...(reason.value.trim() ? { reason: reason.value.trim() } : {}) }).then(
      () => say(`Extended ${who} by ${minutes.value} minutes.`),
      (err: unknown) => say(`Extend ${who}: ${(err as Error).message}`),
    );
  });
  const details = h('details', { class: 'more' }, h('summary', {}, 'Custom…'), custom);
  details.hidden = extend.hidden;
  td.append(extend, details, pause, resume, reopen, log);
  return td;
}

/** The counterpart of an action that its own use hides (pause → resume), else itself, else the event log. */
const COUNTERPART: Record<string, string> = {
  'pause-button': 'resume-button',
  'resume-button': 'pause-button',
  'reopen-button': 'pause-button',
};

function focusAction(tr: HTMLTableRowElement, testid: string): void {
  const visible = (id: string) => tr.querySelector<HTMLElement>(`[data-testid="${id}"]:not([hidden])`);
  (visible(COUNTERPART[testid] ?? testid) ?? visible(testid) ?? visible('events-button'))?.focus();
}

/** Writes a row's cells from its state (the actions only when the status changed). */
function render(row: Row, statusChanged: boolean): void {
  const a = row.attempt;
  const left = remainingOf(row);
  const cells = [
    h('td', { 'data-testid': 'student' }, a.user_id),
    cell('status', a.status),
    cell('time-remaining', left === null ? 'untimed' : formatRemaining(left)),
    cell('answered', String(answeredOf(a))),
    cell('last-activity', clockTime(a.last_updated)),
    cell('connection', row.connection === 'unknown' ? '—' : row.connection),
  ];
  if (statusChanged || row.tr.cells.length === 0) {
    // keyboard users keep their place: focus moves to the action that replaced the one they used
    const focused = row.tr.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.testid : undefined;
    row.tr.replaceChildren(...cells, actions(a));
    if (focused) focusAction(row.tr, focused);
  } else {
    cells.forEach((c, i) => row.tr.cells[i].replaceWith(c));
  }
  row.tr.dataset.status = a.status;
  if (row.connectionAt) row.tr.cells[5].title = `since ${clockTime(row.connectionAt)}`;
}

function upsert(a: Attempt): void {
  const row = rows.get(a.id);
  if (row && a.version <= row.attempt.version) return; // older news (the listing after the stream)
  if (row) {
    const statusChanged = row.attempt.status !== a.status || row.attempt.expires_at !== a.expires_at;
    row.attempt = a;
    row.receivedAt = performance.now();
    render(row, statusChanged);
  } else {
    const tr = h('tr', { 'data-testid': 'attempt-row', 'data-attempt-id': a.id });
    const fresh: Row = { attempt: a, receivedAt: performance.now(), connection: 'unknown', connectionAt: null, tr };
    rows.set(a.id, fresh);
    render(fresh, true);
    byId('rows').append(tr);
  }
  byId('empty').hidden = rows.size > 0;
  drawRoom();
  if (drawerFor === a.id) void openDrawer(a.id);
}

/** What a client event says of the student's connection, if anything. */
function connectionOf(type: string): Row['connection'] | null {
  if (type === 'connection_lost') return 'offline';
  if (type === 'connection_restored' || type === 'page_focused') return 'online';
  return null;
}

function clientEvent(e: Pick<StreamClientEvent, 'attempt_id' | 'type' | 'at'>, live = true): void {
  const row = rows.get(e.attempt_id);
  const connection = connectionOf(e.type);
  if (!row || !connection) return;
  // the stream's events are newer than what the log said when the console opened
  if (!live && row.connectionAt !== null && row.connectionAt > e.at) return;
  row.connection = connection;
  row.connectionAt = e.at;
  render(row, false);
  if (live && drawerFor === e.attempt_id) void openDrawer(e.attempt_id);
}

/**
 * What the console did not see happen: each attempt's last connection event and when its
 * questions were first answered, from its event log, read once per attempt when the console opens
 * (four at a time); afterwards the stream keeps both current.
 */
async function loadHistory(attempts: Attempt[]): Promise<void> {
  const queue = [...attempts];
  const firstAnswers: number[] = [];
  const worker = async () => {
    for (let a = queue.shift(); a; a = queue.shift()) {
      const events = await client!.events(a.id).catch(() => []);
      const last = [...events].reverse().find((e) => connectionOf(e.type) !== null);
      if (last && OPEN(a)) clientEvent({ attempt_id: a.id, type: last.type, at: last.at }, false);
      const answered = new Set<string>();
      for (const e of events) {
        if (e.type !== 'answer_saved') continue;
        for (const [q, v] of Object.entries((e.data.answers ?? {}) as Record<string, unknown>)) {
          if (v === '' || v === null || answered.has(q)) continue;
          answered.add(q);
          firstAnswers.push(Date.parse(e.at));
        }
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  // the answered count over time up to now, before the samples taken live
  firstAnswers.sort((x, y) => x - y);
  const before = firstAnswers.map((at, i) => ({ at, answered: i + 1 })).filter((p) => p.at < (samples[0]?.at ?? Infinity));
  samples.unshift(...before);
  drawChart();
}

// ---- the room ----

function drawRoom(): void {
  const counts = new Map<string, number>();
  let answered = 0;
  for (const { attempt } of rows.values()) {
    counts.set(attempt.status, (counts.get(attempt.status) ?? 0) + 1);
    answered += answeredOf(attempt);
  }
  const max = Math.max(1, ...counts.values());
  const list = byId('status-counts');
  list.replaceChildren(
    ...[...counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([status, n]) => {
        const bar = h('span', { class: `bar status-${status}`, 'aria-hidden': 'true' });
        bar.style.width = `${(n / max) * 100}%`; // CSSOM, which the CSP allows (no inline style attribute)
        return h('li', { 'data-testid': `count-${status}` }, h('span', { class: 'label' }, `${status}: ${n}`), bar);
      }),
  );
  byId('answered-total').textContent = String(answered);
  const now = Date.now();
  const last = samples[samples.length - 1];
  if (last && now - last.at < 1000) last.answered = answered;
  else samples.push({ at: now, answered });
  while (samples.length > 120) samples.shift();
  drawChart();
}

function drawChart(): void {
  const svg = byId('answered-chart') as unknown as SVGSVGElement;
  const NS = 'http://www.w3.org/2000/svg';
  const width = 300;
  const height = 90;
  const first = samples[0]?.at ?? Date.now();
  const span = Math.max(60_000, Date.now() - first);
  const top = Math.max(5, ...samples.map((s) => s.answered));
  const points = samples.map(
    (s) => `${(((s.at - first) / span) * (width - 10) + 5).toFixed(1)},${(height - 5 - (s.answered / top) * (height - 15)).toFixed(1)}`,
  );
  const axis = document.createElementNS(NS, 'polyline');
  axis.setAttribute('points', `5,5 5,${height - 5} ${width - 5},${height - 5}`);
  axis.setAttribute('class', 'axis');
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('points', points.join(' '));
  line.setAttribute('class', 'line');
  const dots = samples.map((_s, i) => {
    const [x, y] = points[i].split(',');
    const dot = document.createElementNS(NS, 'circle');
    dot.setAttribute('cx', x);
    dot.setAttribute('cy', y);
    dot.setAttribute('r', '2.5');
    dot.setAttribute('class', 'dot');
    return dot;
  });
  const label = document.createElementNS(NS, 'text');
  label.setAttribute('x', '10');
  label.setAttribute('y', '14');
  label.setAttribute('class', 'chart-label');
  label.textContent = `max ${top}`;
  svg.replaceChildren(axis, line, ...dots, label);
}

// ---- the event log drawer ----

let drawerFor: string | null = null;

async function openDrawer(attemptId: string): Promise<void> {
  const drawer = byId('drawer');
  const first = drawerFor !== attemptId || drawer.hidden;
  drawerFor = attemptId;
  const row = rows.get(attemptId);
  byId('drawer-title').textContent = `Events of ${row?.attempt.user_id ?? attemptId}`;
  drawer.hidden = false;
  const events = await client!.events(attemptId);
  if (drawerFor !== attemptId) return;
  byId('drawer-events').replaceChildren(
    ...events.map((e) =>
      h(
        'li',
        { 'data-testid': 'event', 'data-type': e.type },
        h('span', { class: 'seq' }, `#${e.seq}`),
        ' ',
        h('time', { datetime: e.at }, clockTime(e.at)),
        ' ',
        h('strong', {}, e.type),
        ` by ${e.actor.role}${e.actor.id ? ` ${e.actor.id}` : ''}`,
        h('code', {}, JSON.stringify(e.data)),
      ),
    ),
  );
  if (first) byId('drawer-close').focus();
}

function closeDrawer(): void {
  byId('drawer').hidden = true;
  const id = drawerFor;
  drawerFor = null;
  rows
    .get(id ?? '')
    ?.tr.querySelector<HTMLButtonElement>('[data-testid="events-button"]')
    ?.focus();
}
byId('drawer-close').addEventListener('click', closeDrawer);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !byId('drawer').hidden) closeDrawer();
});

// ---- everyone at once ----

byId<HTMLFormElement>('bulk-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const minutes = Number(byId<HTMLInputElement>('bulk-minutes').value);
  const reason = byId<HTMLInputElement>('bulk-reason').value.trim();
  const seconds = Math.round(minutes * 60);
  if (!Number.isInteger(seconds) || seconds < 60) {
    say('Give a whole number of minutes, at least 1.');
    return;
  }
  const ids = [...rows.values()].filter((r) => OPEN(r.attempt) && r.attempt.expires_at !== null).map((r) => r.attempt.id);
  if (ids.length === 0) {
    say('No open timed attempt to extend.');
    return;
  }
  const b = byId<HTMLButtonElement>('bulk-extend');
  b.disabled = true;
  say(`Extending ${ids.length} attempts…`);
  void client!
    .extendAll(ids, { seconds, ...(reason ? { reason } : {}) })
    .then((results) => {
      const failed = results.filter((r) => r.status === 'rejected').length;
      say(`Extended ${ids.length - failed} of ${ids.length} attempts by ${minutes} minutes${failed ? ` (${failed} failed)` : ''}.`);
    })
    .finally(() => (b.disabled = false));
});

// ---- the token and the start ----

const auth = tokenForm(
  TOKEN_KEY,
  () => byId('desk'),
  (value) => {
    token = value;
    void begin();
  },
);
const askForToken = (message: string): void => auth.ask(message);

function setLive(state: 'connecting' | 'live' | 'reconnecting'): void {
  const live = byId('live');
  live.dataset.live = state;
  live.textContent = state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'reconnecting…';
}

async function begin(): Promise<void> {
  if (!quizId) return void say('This page needs a quiz: /console?quiz=<quiz id>.');
  byId('title').textContent = `Proctor console — ${quizId}`;
  client?.stop();
  client = new ProctorClient(quizId, { token: () => token });
  client.on('attempt', ({ attempt }) => upsert(attempt));
  client.on('client-event', ({ event }) => clientEvent(event));
  client.on('live', () => setLive('live'));
  client.on('down', ({ fatal }) => !fatal && setLive('reconnecting'));
  setLive('connecting');
  try {
    const attempts = await client.watch();
    byId('desk').hidden = false;
    say('');
    void loadHistory(attempts);
  } catch (err) {
    client.stop();
    if (err instanceof ApiError && err.status === 401) {
      dropToken(TOKEN_KEY);
      token = undefined;
      return askForToken(
        err.body?.message === 'A valid bearer token is required'
          ? "This service needs a proctor's token. Paste it once; it is kept for this tab."
          : `The token was refused (${err.message}). Paste a proctor's token.`,
      );
    }
    if (err instanceof ApiError && err.status === 403) {
      dropToken(TOKEN_KEY);
      token = undefined;
      return askForToken(`This token does not have the proctor role for quiz ${quizId} (${err.message}). Paste a proctor's token.`);
    }
    say(`The console cannot load: ${(err as Error).message}`);
  }
}

setInterval(() => {
  for (const row of rows.values()) {
    if (!isRunning(row.attempt.status)) continue;
    const left = remainingOf(row);
    const td = row.tr.cells[2];
    if (td && left !== null) td.textContent = formatRemaining(left);
  }
}, 500);
// the chart's time axis moves on (local state only: nothing is fetched)
setInterval(drawRoom, 5_000);
void begin();
