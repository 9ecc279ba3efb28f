import type { Logger } from './logger';
import type { JobScheduler } from './queues/scheduler';
import type { WebhookPublisher } from './queues/webhooks';
import type { SessionHooks } from './sessionService';

/**
 * Session hooks that put jobs on the queues, plus optional metric observers. Without a webhook
 * publisher (WEBHOOK_URLS unset) durable events cost nothing more.
 */
export function queueHooks(
  scheduler: JobScheduler,
  observe: Partial<Pick<SessionHooks, 'transitioned' | 'readFrom' | 'conflicted'>> = {},
  log?: Logger,
  webhooks?: WebhookPublisher,
): SessionHooks {
  return {
    becameDirty: (id, dirtySince) => scheduler.schedulePersist(id, dirtySince),
    deadlineSet: (attempt) => scheduler.scheduleExpiry(attempt),
    transitioned: (attempt) => {
      observe.transitioned?.(attempt);
      log?.debug(`attempt ${attempt.id} is ${attempt.status}`);
    },
    readFrom: (source) => observe.readFrom?.(source),
    conflicted: () => observe.conflicted?.(),
    eventsDurable: webhooks ? (attempt, events) => webhooks.eventsDurable(attempt, events) : async () => undefined,
  };
}
