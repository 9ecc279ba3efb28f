import type { z } from 'zod';
import { isOpen } from '../shared/domain/status';
import type { extendBody, clientEventsBody, pauseBody } from '../api/schemas/control';
import type {
  attemptResponse,
  attemptsPageResponse,
  clientEventsAccepted,
  ERROR_RESPONSES,
  startConflictResponse,
  eventResponse,
  eventsPageResponse,
  streamClientEvent,
  streamTimeEvent,
} from '../api/schemas/responses';
import type { startBody, progressBodyShape } from '../api/schemas/session';

/*
 * The API's types, as the client sees them: derived (type-only, nothing of the server is bundled)
 * from the zod schemas that validate the requests and generate the OpenAPI document
 * (src/api/openapi.ts), so the document, the server and this client have one source.
 */

/** An attempt as every endpoint returns it (OpenAPI `Attempt`). */
export type Attempt = z.output<typeof attemptResponse>;
/** One of the attempt's statuses. */
export type AttemptStatus = Attempt['status'];
/** The error body of any status (OpenAPI: one schema per status), as a client reads it before it knows which. */
type ErrorBodies = z.output<(typeof ERROR_RESPONSES)[keyof typeof ERROR_RESPONSES] | typeof startConflictResponse>;
/** The error contract, with the current attempt under `session` for the 409s of an attempt, 410 and 423. */
export type ApiErrorBody = ErrorBodies & { session?: Attempt; field?: string; retryAfterSeconds?: number };
/** One event of an attempt's log (OpenAPI `EventsPage.events[]`). */
export type AttemptEvent = z.output<typeof eventResponse>;
/** GET …/:id/events (OpenAPI `EventsPage`). */
export type EventsPage = z.output<typeof eventsPageResponse>;
/** GET /api/quizzes/:quiz_id/attempts (OpenAPI `AttemptsPage`). */
export type AttemptsPage = z.output<typeof attemptsPageResponse>;
/** POST …/:id/events: 202 (OpenAPI `ClientEventsAccepted`). */
export type ClientEventsAccepted = z.output<typeof clientEventsAccepted>;
/** POST …/start (OpenAPI `StartRequest`). */
export type StartRequest = z.input<typeof startBody>;
/** PATCH …/:id/progress (OpenAPI `ProgressRequest`). */
export type ProgressRequest = z.input<typeof progressBodyShape>;
/** POST …/:id/extend (OpenAPI `ExtendRequest`). */
export type ExtendRequest = z.input<typeof extendBody>;
/** POST …/:id/pause and …/resume (OpenAPI `PauseRequest`). */
export type PauseRequest = z.input<typeof pauseBody>;
/** POST …/:id/events (OpenAPI `ClientEventsRequest`). */
export type ClientEventsRequest = z.input<typeof clientEventsBody>;
/** A client event type a page may report. */
export type ClientEventType = ClientEventsRequest['events'][number]['type'];
/** A stream's `time` event. */
export type TimeEvent = z.output<typeof streamTimeEvent>;
/** A quiz stream's `client_event`. */
export type StreamClientEvent = z.output<typeof streamClientEvent>;

// the rules' one home (src/shared/domain/status.ts): isRunning (takes answers, the clock runs), isOpen
export { isOpen, isRunning } from '../shared/domain/status';

/** True for a closed status: completed, expired or abandoned. */
export const isClosed = (status: AttemptStatus): boolean => !isOpen(status);
