import type { JobsOptions } from 'bullmq';
import type { Config } from '../config';
import type { Attempt } from '../domain/attempt';
import type { AttemptEvent } from '../domain/events';
import { webhookMessageFor } from '../domain/webhook';
import { jobIds, shardOf } from './jobs';
import type { ShardedQueue } from './queue';

/** How long a delivered webhook's job is kept: a repeated enqueue of its message within it is dropped. */
export const DELIVERED_KEEP_SECONDS = 86_400;

/** Tries of one delivery: unbounded in practice, WEBHOOK_RETRY_SECONDS ends it (deliverWebhookTask). */
export const WEBHOOK_ATTEMPTS = 1_000_000;

/** The backoff type of webhook jobs; the webhook worker's strategy (webhookBackoffMs) answers it. */
export const WEBHOOK_BACKOFF_TYPE = 'webhook';

/**
 * Puts webhook deliveries on their queue, outbox style: called once events are durable in
 * PostgreSQL and before Redis is told they are, so a failed enqueue fails the write that is then
 * retried (and a repeated enqueue is dropped by the job id). One job per configured URL.
 */
export class WebhookPublisher {
  private readonly jobOptions: JobsOptions;

  constructor(
    private readonly queue: ShardedQueue,
    private readonly config: Pick<Config, 'WEBHOOK_URLS'>,
  ) {
    this.jobOptions = {
      attempts: WEBHOOK_ATTEMPTS,
      // the delays are the webhook worker's (WEBHOOK_BACKOFF_MS), so they change with its setting
      backoff: { type: WEBHOOK_BACKOFF_TYPE },
      removeOnComplete: { age: DELIVERED_KEEP_SECONDS },
      // dead letters stay in the failed set, for operators to inspect and retry
      removeOnFail: false,
    };
  }

  /** Enqueues the message these just-durable events call for (domain/webhook.ts), if any, to every URL. */
  async eventsDurable(attempt: Attempt, events: readonly AttemptEvent[]): Promise<void> {
    const message = webhookMessageFor(attempt, events);
    if (!message) return;
    await this.queue[shardOf(attempt.id, this.queue.length)].addBulk(
      this.config.WEBHOOK_URLS.map((url) => ({
        name: 'deliver-webhook' as const,
        data: { messageId: message.id, type: message.type, url, body: message.body },
        opts: { ...this.jobOptions, jobId: jobIds.webhook(message.id, url) },
      })),
    );
  }
}
