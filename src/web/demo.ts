import {
  ApiError,
  NetworkError,
  SessionClient,
  WebStateStore,
  browserOnlineSignal,
  formatRemaining,
  isClosed,
  isRunning,
  type Attempt,
  type SaveState,
} from '../client';
import { byId, h, idParam, tabToken, dropToken, tokenForm } from './page';
import { SAMPLE_QUIZ } from './sampleQuiz';

/*
 * The student reference client: GET /demo?quiz=<id>&user=<id> (with authentication on, a token
 * instead of the user: `#token=…` or pasted). Every change autosaves through SessionClient; the
 * answers survive a closed tab, a lost connection and another device.
 */

const TOKEN_KEY = 'quiz-demo-token';
const quizId = idParam('quiz');
const userId = idParam('user');
let token = tabToken(TOKEN_KEY);

const notice = byId('notice');
const timer = byId('timer');
const announcer = byId('time-announcer');
const saveStatus = byId('save-status');
const form = byId<HTMLFormElement>('quiz');
const submit = byId<HTMLButtonElement>('submit');
const inputs = new Map<string, HTMLInputElement>();

function say(text: string): void {
  notice.textContent = text;
}

function renderQuestions(): void {
  byId('title').textContent = `${SAMPLE_QUIZ.title}${quizId ? ` — ${quizId}` : ''}`;
  const list = byId('questions');
  SAMPLE_QUIZ.questions.forEach((q, i) => {
    const input = h('input', {
      id: `answer-${q.id}`,
      name: q.id,
      type: 'text',
      autocomplete: 'off',
      'data-testid': `answer-${q.id}`,
      disabled: true,
    });
    inputs.set(q.id, input);
    list.append(h('li', { class: 'question' }, h('label', { for: input.id }, `${i + 1}. ${q.text}`), input));
  });
}

const client = new SessionClient({
  token: () => token,
  store: new WebStateStore(localStorage),
  onlineSignal: browserOnlineSignal(window),
});

function showState(state: SaveState): void {
  saveStatus.textContent = state;
  saveStatus.dataset.state = state;
}

/** Inputs follow the attempt: enabled only while it takes answers. */
function showAttempt(a: Attempt): void {
  const open = isRunning(a.status);
  for (const input of inputs.values()) input.disabled = !open;
  submit.disabled = !open;
  document.body.dataset.status = a.status;
  if (a.status === 'paused') say('Your proctor has paused the quiz: the clock is stopped. You can go on when it is resumed.');
  else if (a.status === 'completed') say(a.submitted_by === 'timer' ? 'Time is up: your answers were submitted.' : 'Submitted. Thank you!');
  else if (a.status === 'expired') say('Time is up.');
  else if (a.status === 'abandoned') say('This attempt was abandoned.');
  else if (a.status === 'overdue') say('Time is up: submit now to hand in your answers.');
}

/**
 * Fills the inputs from the client's answers (the server's with the unsaved ones on top, which
 * is what a restored page must show), leaving alone the one being typed in.
 */
function fillAnswers(): void {
  const answers = client.answers();
  for (const [q, input] of inputs) {
    if (document.activeElement === input) continue;
    const value = answers[q];
    input.value = typeof value === 'string' ? value : value === undefined || value === null ? '' : JSON.stringify(value);
  }
}

let lastAnnounced = -1;
function tick(): void {
  const remaining = client.timeRemaining();
  if (remaining === null) {
    timer.textContent = client.attempt ? 'untimed' : '–:––';
    return;
  }
  timer.textContent = formatRemaining(remaining);
  // a screen reader hears the time once a minute (and every 10 s in the last minute), not every second
  const minutes = Math.ceil(remaining / 60);
  const mark = remaining <= 60 ? Math.ceil(remaining / 10) * 10 : minutes * 60;
  if (mark !== lastAnnounced) {
    lastAnnounced = mark;
    announcer.textContent = remaining <= 60 ? `${Math.ceil(remaining)} seconds left` : `${minutes} minutes left`;
  }
}

client.on('state', ({ state }) => showState(state));
client.on('change', ({ attempt }) => {
  showAttempt(attempt);
  fillAnswers();
  tick();
});
client.on('conflict-merged', ({ remote }) => {
  // how often this page merged its answers into another device's write (tests and support read it)
  document.body.dataset.conflictsMerged = String(Number(document.body.dataset.conflictsMerged ?? '0') + 1);
  fillAnswers();
  if (remote.length > 0) say(`Answers from another device were kept too (${remote.join(', ')}).`);
});
client.on('offline', () => say('No connection: your answers are kept on this device and sent when it is back.'));
client.on('online', () => {
  if (client.attempt && isRunning(client.attempt.status)) say('Connected again.');
});
client.on('resumed', () => say('The quiz is resumed.'));
client.on('extended', ({ seconds }) => {
  announcer.textContent = `Your proctor added ${Math.round(seconds / 60)} minutes.`;
  say(`Your proctor added ${formatRemaining(seconds)} (minutes:seconds).`);
});
client.on('closed', ({ attempt, unsaved }) => {
  showAttempt(attempt);
  if (unsaved.length > 0) say(`${notice.textContent} ${unsaved.length} answers given after it closed could not be saved.`);
});
client.on('error', ({ error, dropped }) => {
  if (error instanceof ApiError && error.status === 401) return askForToken('Your token has expired or is not valid: paste a new one.');
  say(dropped ? `Not saved (${dropped.join(', ')}): ${error.message}` : error.message);
});

form.addEventListener('input', (e) => {
  const input = e.target as HTMLInputElement;
  if (!input.name) return;
  void client.save({ [input.name]: input.value });
});
form.addEventListener('submit', (e) => {
  e.preventDefault();
  submit.disabled = true;
  say('Submitting…');
  client.complete().then(
    (a) => showAttempt(a),
    (err: unknown) => {
      submit.disabled = !(client.attempt && isRunning(client.attempt.status));
      say(
        err instanceof NetworkError
          ? 'No connection: submit again once it is back (your answers are kept).'
          : `Not submitted: ${(err as Error).message}`,
      );
    },
  );
});
document.addEventListener('visibilitychange', () => {
  if (client.attempt && isRunning(client.attempt.status)) client.note(document.hidden ? 'page_blurred' : 'page_focused');
});
window.addEventListener('pagehide', () => client.farewell({ type: 'connection_lost', data: { reason: 'page_closed' } }));

const auth = tokenForm(
  TOKEN_KEY,
  () => form,
  (value) => {
    token = value;
    void begin();
  },
);
const askForToken = (message: string): void => auth.ask(message);

async function begin(): Promise<void> {
  if (!quizId) return say('This page needs a quiz: /demo?quiz=<quiz id>&user=<your user id>.');
  try {
    say('Loading…');
    const attempt = await client.start({ quizId, userId: token ? undefined : userId });
    form.hidden = false;
    showAttempt(attempt);
    fillAnswers();
    if (isRunning(attempt.status)) say(attempt.version > 1 ? 'Welcome back: your answers are restored.' : 'Your answers save as you type.');
    if (!isClosed(attempt.status)) client.note('connection_restored', { reason: 'page_opened' });
    tick();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      dropToken(TOKEN_KEY);
      token = undefined;
      return askForToken(
        userId ? 'This service needs your token instead of a user id. Paste it here.' : (byId('auth-message').textContent ?? ''),
      );
    }
    if (err instanceof ApiError && err.code === 'VALIDATION_ERROR' && err.body?.field === 'user_id')
      return say('This page needs a user: /demo?quiz=<quiz id>&user=<your user id>.');
    if (err instanceof NetworkError) return say('No connection to the quiz service. Reload the page once you are online.');
    say(`The quiz cannot start: ${(err as Error).message}`);
  }
}

renderQuestions();
showState(client.state);
setInterval(tick, 250);
void begin();
