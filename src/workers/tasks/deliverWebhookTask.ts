import { UnrecoverableError, type Job } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import type { Config } from '../../shared/config';
import { webhookBackoffMs, type DeliveryOutcome } from '../../shared/domain/webhook';
import type { Logger } from '../../shared/logger';
import type { JobPayloads } from '../../shared/queues/jobs';

/** Payload of `deliver-webhook`. */
export type DeliverWebhookPayload = JobPayloads['deliver-webhook'];

/** Observers of deliveries, for metrics. */
export interface WebhookObserver {
  /** One try ended with `outcome` after `seconds`. */
  tried?(outcome: DeliveryOutcome, seconds: number): void;
}

/** The `user-agent` of every delivery. */
const USER_AGENT = 'quiz-session-service-webhooks';

/** A URL as logs show it: without its query or credentials, which may carry a receiver's token. */
const shown = (url: string): string => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
};

/**
 * Delivers one webhook message to one URL, signed the Standard Webhooks way (webhook-id the same on
 * every try, webhook-timestamp of this try, webhook-signature v1 over "id.timestamp.body"). Only a
 * URL in the current WEBHOOK_URLS is called (any other job is dropped); redirects are not followed.
 * A 2xx is delivered; any other answer, a timeout or a network error is retried with the worker's
 * backoff until WEBHOOK_RETRY_SECONDS after the enqueue, then the job fails for good (a dead
 * letter, kept in the queue's failed set). `stopping` aborts the tries under way on shutdown.
 */
export function deliverWebhookTask(
  config: Pick<Config, 'WEBHOOK_URLS' | 'WEBHOOK_SECRET' | 'WEBHOOK_TIMEOUT_MS' | 'WEBHOOK_RETRY_SECONDS' | 'WEBHOOK_BACKOFF_MS'>,
  log: Logger,
  stopping: AbortSignal,
  observer: WebhookObserver = {},
  clock: () => number = Date.now,
) {
  const signer = config.WEBHOOK_SECRET ? new Webhook(config.WEBHOOK_SECRET) : null;
  const allowed = new Set(config.WEBHOOK_URLS);

  /** POSTs the message; null when the receiver took it (2xx), else why not. */
  const post = async ({ messageId, url, body }: DeliverWebhookPayload, key: Webhook): Promise<string | null> => {
    const at = new Date(clock());
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'webhook-id': messageId,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': key.sign(messageId, at, body),
    };
    const timeout = AbortSignal.timeout(config.WEBHOOK_TIMEOUT_MS);
    try {
      const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.any([timeout, stopping]) });
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return null;
      return res.status >= 300 && res.status < 400 ? `answered ${res.status} (redirects are not followed)` : `answered ${res.status}`;
    } catch (err) {
      if (timeout.aborted) return `no answer within ${config.WEBHOOK_TIMEOUT_MS} ms`;
      if (stopping.aborted) return 'the worker is shutting down';
      const cause = (err as Error & { cause?: Error }).cause;
      return `request failed: ${cause?.message ?? (err as Error).message}`;
    }
  };

  return async (job: Job<DeliverWebhookPayload>): Promise<DeliveryOutcome> => {
    const { messageId, url } = job.data;
    if (!signer || !allowed.has(url)) {
      // a job enqueued before WEBHOOK_URLS changed, or not by this service: never called
      log.warn(`webhook ${messageId}: ${shown(url)} is not in WEBHOOK_URLS; dropped`);
      observer.tried?.('refused', 0);
      return 'refused';
    }
    const started = process.hrtime.bigint();
    const failure = await post(job.data, signer);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (failure === null) {
      observer.tried?.('delivered', seconds);
      return 'delivered';
    }
    const failures = job.attemptsMade + 1;
    const nextTry = clock() + webhookBackoffMs(failures, config.WEBHOOK_BACKOFF_MS);
    if (nextTry > job.timestamp + config.WEBHOOK_RETRY_SECONDS * 1000) {
      observer.tried?.('dead_lettered', seconds);
      log.error(`webhook ${messageId} to ${shown(url)} dead-lettered after ${failures} tries: ${failure}`);
      throw new UnrecoverableError(`dead-lettered after ${failures} tries over ${config.WEBHOOK_RETRY_SECONDS} s: ${failure}`);
    }
    observer.tried?.('failed', seconds);
    throw new Error(`${shown(url)} ${failure}`);
  };
}
