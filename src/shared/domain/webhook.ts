import { createHash } from 'node:crypto';
import { attemptJson, type Attempt } from './attempt';
import type { AttemptEvent, EventType } from './events';
import { isoTime } from './isoTime';

/*
 * Webhooks to graders (Standard Webhooks): when an attempt's closing event is durable in
 * PostgreSQL, each configured URL gets `{type, timestamp, data: {attempt}}`, signed, at least
 * once. These are the rules; the queue side is queues/webhooks.ts, the delivery
 * workers/tasks/deliverWebhookTask.ts.
 */

/** The webhook type each closing event is announced as. */
export const WEBHOOK_TYPE_OF_EVENT = {
  completed: 'attempt.completed',
  expired: 'attempt.expired',
  abandoned: 'attempt.abandoned',
} as const satisfies Partial<Record<EventType, string>>;

/** A webhook type. */
export type WebhookType = (typeof WEBHOOK_TYPE_OF_EVENT)[keyof typeof WEBHOOK_TYPE_OF_EVENT];

/** Every way one try of a delivery ends: 2xx, a failure to retry, a URL not configured (dropped), given up. */
export const DELIVERY_OUTCOMES = ['delivered', 'failed', 'refused', 'dead_lettered'] as const;
/** One of DELIVERY_OUTCOMES. */
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** Longest wait between two tries of one delivery. */
export const WEBHOOK_MAX_BACKOFF_MS = 3_600_000;

/** One message to announce: the same id, type and body on every try and for every URL. */
export interface WebhookMessage {
  /** `webhook-id`: one per closing event, so a reopened attempt that closes again is a new message. */
  id: string;
  type: WebhookType;
  /** The JSON body, as sent (and signed) on every try. */
  body: string;
}

/** The webhook-id of an attempt's event: deterministic, so a repeated enqueue names the same message. */
export const webhookMessageId = (attemptId: string, seq: number): string => `msg_${attemptId}_${seq}`;

/** The closing event's webhook type, or undefined for any other event. */
const webhookTypeOf = (event: AttemptEvent): WebhookType | undefined =>
  (WEBHOOK_TYPE_OF_EVENT as Partial<Record<EventType, WebhookType>>)[event.type];

/**
 * The message to send for events just made durable, with `attempt` the snapshot written with them:
 * one for the latest closing event, when the attempt is still in the state it recorded. A close
 * reopened since (a proctor's reopen before the write-behind ran) was announced by its own durable
 * write, and a later close gets a message of its own. The body's attempt is the API's JSON of it
 * at the event's time.
 */
export function webhookMessageFor(attempt: Attempt, events: readonly AttemptEvent[]): WebhookMessage | null {
  let closing: AttemptEvent | undefined;
  for (const e of events) if (webhookTypeOf(e) && (!closing || e.seq > closing.seq)) closing = e;
  if (!closing || closing.type !== attempt.status) return null;
  const type = webhookTypeOf(closing)!;
  const body = `{"type":"${type}","timestamp":"${isoTime(closing.at)}","data":{"attempt":${attemptJson(attempt, closing.at)}}}`;
  return { id: webhookMessageId(attempt.id, closing.seq), type, body };
}

/** A short stable name of a URL for job ids (which may not hold `:`). */
export const urlKey = (url: string): string => createHash('sha256').update(url).digest('hex').slice(0, 16);

/** The delay after the `failures`-th failed try: WEBHOOK_BACKOFF_MS, doubling, at most WEBHOOK_MAX_BACKOFF_MS. */
export function webhookBackoffMs(failures: number, firstMs: number): number {
  return Math.min(firstMs * 2 ** Math.max(0, Math.min(failures - 1, 40)), WEBHOOK_MAX_BACKOFF_MS);
}
