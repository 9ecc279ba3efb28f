import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { ConfigError, loadConfig } from '../src/shared/config';
import { UNCONTROLLED, type Attempt } from '../src/shared/domain/attempt';
import type { AttemptEvent, EventType } from '../src/shared/domain/events';
import { WEBHOOK_MAX_BACKOFF_MS, webhookBackoffMs, webhookMessageFor } from '../src/shared/domain/webhook';

/* The webhook settings and the message rules, without any store. */

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

describe('webhook settings', () => {
  test('unset: no URLs, and the retry defaults (24 h, 2 s first backoff, 10 s per request)', () => {
    const config = loadConfig({});
    expect(config.WEBHOOK_SECRET).toBeUndefined();
    expect(config).toMatchObject({
      WEBHOOK_URLS: [],
      WEBHOOK_RETRY_SECONDS: 86_400,
      WEBHOOK_BACKOFF_MS: 2000,
      WEBHOOK_TIMEOUT_MS: 10_000,
    });
  });

  test('WEBHOOK_URLS is a comma-separated list of http(s) URLs, blanks around commas ignored', () => {
    const config = loadConfig({ WEBHOOK_URLS: 'https://grader.example/hooks, http://127.0.0.1:9000/x?t=1', WEBHOOK_SECRET: SECRET });
    expect(config.WEBHOOK_URLS).toEqual(['https://grader.example/hooks', 'http://127.0.0.1:9000/x?t=1']);
    expect(config.WEBHOOK_SECRET).toBe(SECRET);
  });

  test.each(['ftp://grader.example/hooks', 'not a url', 'https://ok.example/a,file:///etc/passwd', 'javascript:alert(1)'])(
    'a URL that is not http(s) is refused, naming WEBHOOK_URLS: %s',
    (urls) => {
      expect(() => loadConfig({ WEBHOOK_URLS: urls, WEBHOOK_SECRET: SECRET })).toThrow(ConfigError);
      expect(() => loadConfig({ WEBHOOK_URLS: urls, WEBHOOK_SECRET: SECRET })).toThrow(/WEBHOOK_URLS: each URL must be/);
    },
  );

  test('WEBHOOK_URLS without WEBHOOK_SECRET is a configuration error', () => {
    expect(() => loadConfig({ WEBHOOK_URLS: 'https://grader.example/hooks' })).toThrow(/WEBHOOK_SECRET: required when WEBHOOK_URLS is set/);
  });

  test.each(['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_', 'whsec_not base64!', 'whsec_abc', 'sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'])(
    'a secret not of the form whsec_<base64> is refused, without repeating it: %s',
    (secret) => {
      let message = '';
      try {
        loadConfig({ WEBHOOK_URLS: 'https://grader.example/hooks', WEBHOOK_SECRET: secret });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toMatch(/WEBHOOK_SECRET: must be whsec_/);
      expect(message).not.toContain(`(got ${JSON.stringify(secret)})`);
      expect(message).toContain(`(got a value of ${secret.length} characters)`);
    },
  );

  test.each([
    ['WEBHOOK_RETRY_SECONDS', '0'],
    ['WEBHOOK_BACKOFF_MS', '-1'],
    ['WEBHOOK_TIMEOUT_MS', 'soon'],
  ])('%s=%s is refused', (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(key));
  });
});

/** A closed attempt with answers, for the message rules. */
function closedAttempt(status: Attempt['status']): Attempt {
  const t = Date.parse('2026-03-01T10:00:00.000Z');
  return {
    ...UNCONTROLLED,
    id: randomUUID(),
    userId: 'u-1',
    quizId: 'quiz-1',
    status,
    currentQuestion: 1,
    answers: new Map([['q1', '"B"']]),
    version: 3,
    timeLimitSeconds: 600,
    startedAt: t,
    expiresAt: t + 600_000,
    lastUpdated: t + 60_000,
    completedAt: status === 'completed' ? t + 60_000 : null,
    endedAt: t + 60_000,
    attemptNumber: 1,
    submittedBy: status === 'completed' ? 'student' : null,
    eventSeq: 3,
  };
}

const event = (seq: number, type: EventType, at = Date.parse('2026-03-01T10:01:00.000Z')): AttemptEvent => ({
  seq,
  type,
  at,
  actor: { id: null, role: 'system' },
  request_id: null,
  data: {},
});

describe('webhookMessageFor', () => {
  test('a closing event gives one message: msg_<attempt>_<seq>, {type, timestamp, data: {attempt}}', () => {
    const attempt = closedAttempt('completed');
    const message = webhookMessageFor(attempt, [event(2, 'answer_saved'), event(3, 'completed')]);
    expect(message?.id).toBe(`msg_${attempt.id}_3`);
    expect(JSON.parse(message!.body)).toEqual({
      type: 'attempt.completed',
      timestamp: '2026-03-01T10:01:00.000Z',
      data: { attempt: expect.objectContaining({ id: attempt.id, status: 'completed', answers: { q1: 'B' }, version: 3 }) },
    });
  });

  test.each([
    ['expired', 'attempt.expired'],
    ['abandoned', 'attempt.abandoned'],
  ] as const)('%s gives %s', (status, type) => {
    expect(webhookMessageFor(closedAttempt(status), [event(3, status)])?.type).toBe(type);
  });

  test('no closing event, or a close the same events reopened, gives none', () => {
    expect(webhookMessageFor(closedAttempt('completed'), [event(2, 'answer_saved')])).toBeNull();
    expect(webhookMessageFor(closedAttempt('completed'), [event(2, 'overdue')])).toBeNull();
    const reopened = { ...closedAttempt('in_progress'), completedAt: null, endedAt: null };
    expect(webhookMessageFor(reopened, [event(3, 'expired'), event(4, 'reopened')])).toBeNull();
  });

  test('the body signs and verifies with the standardwebhooks library', () => {
    const message = webhookMessageFor(closedAttempt('completed'), [event(3, 'completed')])!;
    const wh = new Webhook(SECRET);
    const now = new Date();
    const headers = {
      'webhook-id': message.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': wh.sign(message.id, now, message.body),
    };
    expect(wh.verify(message.body, headers)).toEqual(JSON.parse(message.body));
    expect(() => new Webhook(`whsec_${Buffer.from('another key').toString('base64')}`).verify(message.body, headers)).toThrow();
  });
});

describe('webhookBackoffMs', () => {
  test('starts at the first delay, doubles, and is capped at an hour', () => {
    expect([1, 2, 3, 4].map((n) => webhookBackoffMs(n, 2000))).toEqual([2000, 4000, 8000, 16_000]);
    expect(webhookBackoffMs(12, 2000)).toBe(WEBHOOK_MAX_BACKOFF_MS);
    expect(webhookBackoffMs(10_000, 2000)).toBe(WEBHOOK_MAX_BACKOFF_MS);
  });
});
