import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Queue } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import { webhookMessageId } from '../src/shared/domain/webhook';
import { jobIds, QUEUES } from '../src/shared/queues/jobs';
import { eventsKey } from '../src/shared/store/sessionStore';
import { assertWebhookMatchesOpenApi } from './support/openapiValidator';
import { waitFor, type AttemptJson } from './support/harness';
import { useIsolatedStores } from './support/isolatedStores';
import { startProcess } from './support/processes';
import { AttemptClient, openQueue } from './support/workerScenario';
import { request } from './support/http';
import { freePort } from './support/ports';

/*
 * Webhooks to graders with real processes (API, lifecycle, persist and webhook workers) over this
 * file's own database and Redis DB, delivered to real HTTP receivers on 127.0.0.1, verified with
 * the standardwebhooks library as a receiver would.
 */

const stores = useIsolatedStores({ resetAfterEach: true });
let webhookQueue: Queue;
const receivers: Receiver[] = [];

beforeAll(async () => {
  webhookQueue = openQueue(stores(), QUEUES.webhooks);
}, 60_000);

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

afterAll(async () => {
  await webhookQueue?.close();
}, 30_000);

/** A fresh Standard Webhooks secret. */
const newSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

/** One request a receiver got. */
interface Delivery {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** How a receiver answers its n-th request (from 0): a status (and headers), or not yet (`hold`, answered on release). */
type Answer = { status: number; headers?: Record<string, string> } | 'hold';

/** A local HTTP receiver that records every request. */
interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Answers every held request 200. */
  release(): void;
  /** Requests answered 'hold' and not yet released. */
  held(): number;
  close(): Promise<void>;
}

async function startReceiver(answer: (n: number) => Answer = () => ({ status: 200 })): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const holding: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = deliveries.length;
      deliveries.push({ at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const a = answer(n);
      if (a === 'hold') holding.push(res);
      else res.writeHead(a.status, a.headers).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hooks/quiz`,
    deliveries,
    release: () => holding.splice(0).forEach((res) => res.writeHead(200).end()),
    held: () => holding.length,
    close: async () => {
      receiver.release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  receivers.push(receiver);
  return receiver;
}

/** The settings of every process of a test: these stores, webhooks to `urls` signed with `secret`. */
function webhookEnv(urls: string[], secret: string, settings: Record<string, string | number> = {}): Record<string, string | number> {
  // the write-behind window is long unless a test shortens it: a close must not rely on a persist worker
  return { ...stores().env, PERSIST_DELAY_SECONDS: 30, WEBHOOK_URLS: urls.join(','), WEBHOOK_SECRET: secret, ...settings };
}

/** An API process and a webhook worker (and `more` roles) with the same settings. */
async function startStack(
  env: Record<string, string | number>,
  more: Array<'lifecycle-worker' | 'persist-worker'> = [],
): Promise<AttemptClient> {
  const [api] = await Promise.all([
    startProcess('api', env),
    startProcess('webhook-worker', env),
    ...more.map((r) => startProcess(r, env)),
  ]);
  return new AttemptClient(api.url!);
}

/** The receiver's deliveries, each verified with the standardwebhooks library; returns their parsed bodies. */
function verifyAll(receiver: Receiver, secret: string): Array<{ type: string; timestamp: string; data: { attempt: AttemptJson } }> {
  const wh = new Webhook(secret);
  return receiver.deliveries.map((d) => {
    expect(d.headers['content-type']).toBe('application/json');
    const parsed = wh.verify(d.body, d.headers as Record<string, string>) as {
      type: string;
      timestamp: string;
      data: { attempt: AttemptJson };
    };
    expect(parsed).toEqual(JSON.parse(d.body));
    // the body is what the OpenAPI document's `webhooks` says
    assertWebhookMatchesOpenApi(parsed.type, parsed);
    return parsed;
  });
}

describe('attempt.completed', () => {
  test('a receiver failing twice (500) gets the same signed message three times, spaced by the backoff, with the final attempt', async () => {
    const secret = newSecret();
    const backoffMs = 400;
    const receiver = await startReceiver((n) => ({ status: n < 2 ? 500 : 204 }));
    // a persist worker with a short window: the write-behind writes the close's events again and
    // enqueues again, which the job id drops
    const client = await startStack(webhookEnv([receiver.url], secret, { WEBHOOK_BACKOFF_MS: backoffMs, PERSIST_DELAY_SECONDS: 1 }), [
      'persist-worker',
    ]);
    const attempt = await client.start();
    await client.progress(attempt.id, { q1: 'B', q2: ['a', 'c'] }, 1);
    const completed = await client.complete(attempt.id);

    await waitFor('three deliveries', () => receiver.deliveries.length >= 3, 20_000);
    const bodies = verifyAll(receiver, secret);
    const ids = new Set(receiver.deliveries.map((d) => d.headers['webhook-id']));
    expect(ids.size).toBe(1);
    const [messageId] = [...ids] as string[];
    expect(messageId).toMatch(new RegExp(`^msg_${attempt.id}_\\d+$`));
    for (const body of bodies) {
      expect(body).toEqual({ type: 'attempt.completed', timestamp: expect.any(String), data: { attempt: completed } });
      expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    }
    expect(bodies[0].data.attempt).toMatchObject({ status: 'completed', answers: { q1: 'B', q2: ['a', 'c'] }, submitted_by: 'student' });
    expect(receiver.deliveries.every((d) => d.body === receiver.deliveries[0].body)).toBe(true);
    // each try's own timestamp, in unix seconds, when it was sent
    for (const d of receiver.deliveries) expect(Math.abs(Number(d.headers['webhook-timestamp']) * 1000 - d.at)).toBeLessThan(2000);
    // the backoff: 400 ms, then 800 ms (a delayed job never runs early)
    const gaps = receiver.deliveries.slice(1).map((d, i) => d.at - receiver.deliveries[i].at);
    expect(gaps[0]).toBeGreaterThanOrEqual(backoffMs - 20);
    expect(gaps[1]).toBeGreaterThanOrEqual(2 * backoffMs - 20);

    const jobId = jobIds.webhook(messageId, receiver.url);
    await waitFor('the job to complete', async () => (await webhookQueue.getJobState(jobId)) === 'completed', 10_000);
    expect((await webhookQueue.getJob(jobId))?.returnvalue).toBe('delivered');
    // the persist worker wrote the events again (and enqueued again): still one job, three tries
    await waitFor(
      'the write-behind to clear the pending events',
      async () => (await stores().redis.llen(eventsKey(attempt.id))) === 0,
      15_000,
    );
    const counts = await webhookQueue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
    expect(counts).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 1, failed: 0 });
    expect(receiver.deliveries).toHaveLength(3);
  }, 60_000);

  test('completing does not wait for a slow receiver: complete answers while the receiver holds a delivery', async () => {
    const secret = newSecret();
    const receiver = await startReceiver(() => 'hold');
    const client = await startStack(webhookEnv([receiver.url], secret, { WEBHOOK_TIMEOUT_MS: 60_000 }));
    const first = await client.start();
    await client.complete(first.id);
    await waitFor('the receiver to hold the first delivery', () => receiver.held() === 1, 15_000);

    const second = await client.start();
    const completed = await client.complete(second.id);
    expect(completed.status).toBe('completed');
    expect(receiver.held()).toBeGreaterThanOrEqual(1); // still unanswered when complete returned

    await waitFor('both deliveries', () => receiver.deliveries.length >= 2, 15_000);
    receiver.release();
    const ids = receiver.deliveries.map((d) => d.headers['webhook-id']).sort();
    expect(ids).toEqual([webhookMessageId(first.id, 2), webhookMessageId(second.id, 2)].sort());
    await waitFor('both jobs to complete', async () => (await webhookQueue.getJobCounts('completed')).completed === 2, 15_000);
  }, 60_000);
});

describe('attempt.expired and attempt.abandoned', () => {
  test('the lifecycle worker expiring an attempt at its deadline sends attempt.expired with the expired attempt', async () => {
    const secret = newSecret();
    const receiver = await startReceiver();
    const client = await startStack(webhookEnv([receiver.url], secret, { SWEEP_INTERVAL_SECONDS: 600 }), ['lifecycle-worker']);
    const attempt = await client.start(2);
    await client.progress(attempt.id, { q1: 'late' }, 0);

    await waitFor('the expiry webhook', () => receiver.deliveries.length >= 1, 20_000);
    const [body] = verifyAll(receiver, secret);
    expect(body.type).toBe('attempt.expired');
    expect(body.data.attempt).toMatchObject({ id: attempt.id, status: 'expired', answers: { q1: 'late' }, time_remaining: 0 });
    expect(Date.parse(body.timestamp)).toBeGreaterThanOrEqual(Date.parse(attempt.expires_at!));
    expect((await client.get(attempt.id)).status).toBe(410);
  }, 60_000);

  test('abandoning through the API sends attempt.abandoned', async () => {
    const secret = newSecret();
    const receiver = await startReceiver();
    const client = await startStack(webhookEnv([receiver.url], secret));
    const attempt = await client.start();
    const res = await request(client.url, 'POST', `/api/sessions/${attempt.id}/abandon`, {});
    expect(res.status).toBe(200);

    await waitFor('the abandon webhook', () => receiver.deliveries.length >= 1, 15_000);
    const [body] = verifyAll(receiver, secret);
    expect(body).toEqual({ type: 'attempt.abandoned', timestamp: expect.any(String), data: { attempt: res.body } });
    expect(body.data.attempt.status).toBe('abandoned');
  }, 60_000);
});

describe('delivery rules', () => {
  test('an always-failing receiver is dead-lettered after WEBHOOK_RETRY_SECONDS: kept in the failed set, counted in the metrics', async () => {
    const secret = newSecret();
    const receiver = await startReceiver(() => ({ status: 503 }));
    const metricsPort = await freePort();
    const env = webhookEnv([receiver.url], secret, { WEBHOOK_BACKOFF_MS: 200, WEBHOOK_RETRY_SECONDS: 2 });
    const [api] = await Promise.all([startProcess('api', env), startProcess('webhook-worker', { ...env, METRICS_PORT: metricsPort })]);
    const client = new AttemptClient(api.url!);
    const attempt = await client.start();
    await client.complete(attempt.id);

    const jobId = jobIds.webhook(webhookMessageId(attempt.id, 2), receiver.url);
    await waitFor('the dead letter', async () => (await webhookQueue.getJobState(jobId)) === 'failed', 20_000);
    const job = await webhookQueue.getJob(jobId);
    expect(job?.failedReason).toMatch(/dead-lettered after \d+ tries/);
    // tries at 0, 200, 600 and 1400 ms; the next (3000 ms) would be past the 2 s
    expect(receiver.deliveries).toHaveLength(4);
    expect((await webhookQueue.getFailed()).map((j) => j.id)).toContain(jobId);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^quiz_webhook_dead_letters_total\{role="webhook-worker"\} 1$/m);
    expect(metrics).toMatch(/^quiz_webhook_deliveries_total\{outcome="failed",role="webhook-worker"\} 3$/m);
    expect(metrics).toMatch(/^quiz_webhook_deliveries_total\{outcome="dead_lettered",role="webhook-worker"\} 1$/m);
    expect(metrics).toMatch(/^queue_jobs\{queue="deliver-webhook",shard="0",state="failed",role="webhook-worker"\} 1$/m);
  }, 60_000);

  test('only configured URLs are called: a job naming another URL is dropped, never sent', async () => {
    const secret = newSecret();
    const configured = await startReceiver();
    const other = await startReceiver();
    const client = await startStack(webhookEnv([configured.url], secret));
    // as a job enqueued under an older WEBHOOK_URLS (or by someone else) would
    const job = await webhookQueue.add(
      'deliver-webhook',
      { messageId: 'msg_forged_1', type: 'attempt.completed', url: other.url, body: '{}' },
      { jobId: 'webhook-forged' },
    );
    const attempt = await client.start();
    await client.complete(attempt.id);

    await waitFor('the configured receiver', () => configured.deliveries.length >= 1, 15_000);
    await waitFor('the forged job to be dropped', async () => (await webhookQueue.getJobState(job.id!)) === 'completed', 15_000);
    expect((await webhookQueue.getJob(job.id!))?.returnvalue).toBe('refused');
    expect(other.deliveries).toHaveLength(0);
    expect(configured.deliveries.map((d) => d.headers['webhook-id'])).toEqual([webhookMessageId(attempt.id, 2)]);
  }, 60_000);

  test('a redirect is not followed: the 3xx is a failure that is retried, the redirect target is never called', async () => {
    const secret = newSecret();
    const target = await startReceiver();
    const redirecting = await startReceiver((n) => (n === 0 ? { status: 307, headers: { location: target.url } } : { status: 200 }));
    const client = await startStack(webhookEnv([redirecting.url], secret, { WEBHOOK_BACKOFF_MS: 200 }));
    const attempt = await client.start();
    await client.complete(attempt.id);

    const jobId = jobIds.webhook(webhookMessageId(attempt.id, 2), redirecting.url);
    await waitFor('the delivery on the second try', async () => (await webhookQueue.getJobState(jobId)) === 'completed', 15_000);
    expect(redirecting.deliveries).toHaveLength(2);
    expect(target.deliveries).toHaveLength(0);
  }, 60_000);
});
