import { luaLiteral } from './fragments';

/*
 * The event log: every accepted change of an attempt and every refused write, in order. Each
 * event has a `seq` (1, 2, … per attempt), a `type`, `at` (server time), the `actor` (who did it:
 * user id and role), the `request_id` and `data`. The write scripts append the event in the same
 * atomic step as the change (no extra round trip), to `session:<id>:events`; the write-behind
 * moves them to PostgreSQL (`attempt_events`) with the snapshots. Folding the answer_saved events
 * in seq order rebuilds the answers at any version (foldAnswers).
 */

/** Events the service records. */
export const SERVER_EVENT_TYPES = [
  'started',
  'resumed',
  'answer_saved',
  'completed',
  'expired',
  'abandoned',
  'overdue',
  'extended',
  'paused',
  'resumed_by_proctor',
  'reopened',
  'write_rejected',
] as const;

/** Events a client may report (POST .../events); the server adds `at`. */
export const CLIENT_EVENT_TYPES = ['page_blurred', 'page_focused', 'question_viewed', 'connection_lost', 'connection_restored'] as const;

/** Every event type. */
export const EVENT_TYPES = [...SERVER_EVENT_TYPES, ...CLIENT_EVENT_TYPES] as const;
/** One of EVENT_TYPES. */
export type EventType = (typeof EVENT_TYPES)[number];

/** The most client events one request carries. */
export const MAX_CLIENT_EVENTS = 50;

/** Roles an actor has: the API's three, `open` (no authentication configured), and the service's own workers (`system`). */
export type ActorRole = 'service' | 'proctor' | 'student' | 'open' | 'system';

/** Who did something, and in which request. */
export interface EventContext {
  actor: { id: string | null; role: ActorRole };
  requestId: string | null;
}

/** The service acting on its own: the deadline, idleness. */
export const SYSTEM_CONTEXT: EventContext = { actor: { id: null, role: 'system' }, requestId: null };

/** One event, as stored and returned (`at` epoch ms here; ISO in the API). */
export interface AttemptEvent {
  seq: number;
  type: EventType;
  at: number;
  actor: { id: string | null; role: ActorRole };
  request_id: string | null;
  data: Record<string, unknown>;
}

/**
 * The context as the JSON fragment the scripts put into every event they append:
 * `"actor":{...},"request_id":...` (encoded here, so the scripts only concatenate).
 */
export const contextFragment = (ctx: EventContext): string =>
  `"actor":${JSON.stringify({ id: ctx.actor.id, role: ctx.actor.role })},"request_id":${JSON.stringify(ctx.requestId)}`;

/** The answers at each version: folds answer_saved events in seq order, up to `version` (all when undefined). */
export function foldAnswers(events: readonly AttemptEvent[], version?: number): Record<string, unknown> {
  const answers: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    if (e.type !== 'answer_saved') continue;
    if (version !== undefined && (e.data.version as number) > version) break;
    for (const [questionId, value] of Object.entries(e.data.answers as Record<string, unknown>)) answers[questionId] = value;
  }
  return { ...answers };
}

/** The event a status the deadline (or a close) moves an attempt to is recorded as. */
export const EVENT_OF_STATUS: Readonly<Record<string, EventType>> = {
  completed: 'completed',
  expired: 'expired',
  abandoned: 'abandoned',
  overdue: 'overdue',
};

/** append_event in Lua: the events key is KEYS[3]; the seq counter is the hash field `event_seq`. */
export const EVENTS_LUA = `
local EVENT_OF_STATUS = {${Object.entries(EVENT_OF_STATUS)
  .map(([s, e]) => `[${luaLiteral(s)}] = ${luaLiteral(e)}`)
  .join(', ')}}
`;
