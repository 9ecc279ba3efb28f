import { z } from 'zod';
import { LIMITS } from '../shared/limits';
import { aliasOf } from './validate';
import { WEBHOOK_TYPE_OF_EVENT } from '../shared/domain/webhook';
import { quizAttemptsQuery, userAttemptsQuery } from './routes/listings';
import { attemptStreamQuery } from './routes/streams';
import { consoleQuery, demoQuery } from './routes/web';
import {
  attemptResponse,
  attemptsPageResponse,
  clientEventsAccepted,
  ERROR_RESPONSES,
  eventsPageResponse,
  healthResponse,
  notReadyResponse,
  readyResponse,
  startConflictResponse,
} from './schemas/responses';
import {
  accommodationBody,
  accommodationResponse,
  overrideBody,
  overrideResponse,
  policyBody,
  policyResponse,
  quizIdParam,
  userIdParam,
} from './schemas/quiz';
import { closeBody, progressBodyShape, sessionIdParam, startBody } from './schemas/session';
import { clientEventsBody, extendBody, pauseBody } from './schemas/control';
import { SESSION_PREFIXES } from './routes/sessions';

type JsonSchema = Record<string, unknown>;

/** A zod schema as an OpenAPI 3.1 (JSON Schema 2020-12) schema, as a client sends it. */
function schema(s: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  delete out.$schema;
  return out;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The project's license (package.json, LICENSE). */
export const LICENSE = 'MIT';

/**
 * A request body's schema with the camelCase aliases its fields take (validate.ts) as declared
 * properties (the bodies are strict): each deprecated, described as the alias it is. A required
 * field is required in either spelling: the schema is then `anyOf` one object per spelling (each
 * with every property, so a body with both still matches), which generated clients type as a union.
 */
function withAliases(s: JsonSchema): JsonSchema {
  const properties = s.properties as Record<string, JsonSchema> | undefined;
  if (!properties) return s;
  const all: Record<string, JsonSchema> = { ...properties };
  const aliased: Array<[string, string]> = [];
  for (const name of Object.keys(properties)) {
    const alias = aliasOf(name);
    if (!alias) continue;
    const { description, ...rest } = properties[name];
    all[alias] = {
      ...rest,
      deprecated: true,
      description: `Alias of \`${name}\` (the camelCase spelling earlier clients send)${description ? `: ${String(description)}` : ''}. Give one of the two; both with different values is a 400`,
    };
    aliased.push([name, alias]);
  }
  const required = (s.required as string[] | undefined) ?? [];
  const either = aliased.filter(([name]) => required.includes(name));
  if (either.length === 0) return { ...s, properties: all };
  // one object per choice of spelling of the required fields that have an alias
  let choices: string[][] = [required.filter((name) => !either.some(([n]) => n === name))];
  for (const [name, alias] of either)
    choices = choices.flatMap((c) => [
      [...c, name],
      [...c, alias],
    ]);
  return {
    description: `${either.map(([name, alias]) => `\`${name}\` (or its alias \`${alias}\`)`).join(' and ')} required`,
    anyOf: choices.map((names) => ({ ...s, properties: all, required: names })),
  };
}

/**
 * The components' schemas from their zod schemas, in one pass, so a schema that holds another
 * component (an error's `session`, a page's attempts) refers to it (`$ref`) instead of a copy.
 * A request body (`io: 'input'`) gets its aliases.
 */
function componentSchemas(named: Record<string, z.ZodType>): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, s] of Object.entries(named)) registry.add(s, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io: 'input',
    unrepresentable: 'any',
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, JsonSchema> };
  return Object.fromEntries(
    Object.keys(named).map((id) => {
      const body = { ...schemas[id] };
      delete body.$schema;
      delete body.$id;
      return [id, id.endsWith('Request') ? withAliases(body) : body];
    }),
  );
}

/** The query parameters of a strict object schema, one per property. */
function queryParameters(s: z.ZodObject): Array<Record<string, unknown>> {
  const properties = (schema(s).properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(properties).map(([name, p]) => ({ name, in: 'query', required: false, schema: p }));
}
const json = (s: JsonSchema) => ({ 'application/json': { schema: s } });

/** The error statuses operations answer, each with its schema (components), from responses.ts. */
type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 423 | 429 | 500 | 503;

/** The component name of each status's error schema; a start's 409 is StartConflict. */
const ERROR_SCHEMA: Record<ErrorStatus, string> = {
  400: 'ValidationError',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Gone',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  422: 'IdempotencyKeyReused',
  423: 'Locked',
  429: 'RateLimited',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

const ERROR_TEXT: Record<ErrorStatus, string> = {
  400: 'VALIDATION_ERROR: malformed JSON, wrong types, invalid UUID, out-of-range or oversized values, an unknown field; `field` names the field',
  401: 'UNAUTHORIZED: authentication is configured and the bearer token is missing, expired, without exp, too old (AUTH_MAX_TOKEN_AGE_SECONDS) or invalid',
  403: "QUIZ_NOT_OPEN on start: outside the quiz policy's window (`opens_at`, `closes_at`); or FORBIDDEN: the token's role may not do this (a proctor never answers, completes, abandons or starts; a student never sets time_limit_seconds, extends, pauses, resumes or reopens), or its subject is not the attempt's user_id (or a different user_id was given to start), or the attempt is of a quiz outside a proctor's quiz_ids",
  404: 'SESSION_NOT_FOUND (or ROUTE_NOT_FOUND; POLICY_NOT_FOUND for a quiz without a policy; SETTING_NOT_FOUND for a missing accommodation or override)',
  409: 'The attempt as it is now is under `session` (its version also the ETag): SESSION_CONFLICT (stale version; retryable after `retry-after: 1`: merge into `session` and retry with its version), SESSION_COMPLETED, ANOTHER_ATTEMPT_OPEN on a reopen (the user has started another attempt at the quiz since), or IDEMPOTENCY_KEY_IN_USE (the first request with this Idempotency-Key is still running; retryable after `retry-after: 1`)',
  410: 'SESSION_EXPIRED: the deadline passed (progress on an overdue attempt too), or the attempt was abandoned; the attempt under `session`',
  423: 'SESSION_PAUSED: a proctor paused the attempt; retryable (`retry-after: 5`), the attempt under `session`',
  413: 'PAYLOAD_TOO_LARGE: a body over the limit (the connection is closed)',
  429: 'RATE_LIMITED: this principal is over a limit (writes or client events per minute, streams at once); retryable after `retry-after`',
  415: 'UNSUPPORTED_MEDIA_TYPE: the body is not JSON',
  422: 'IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used for a different request (route, If-Match or body); nothing applied',
  500: 'INTERNAL_SERVER_ERROR',
  503: 'SERVICE_UNAVAILABLE: Redis or PostgreSQL unreachable; retryable (`retry-after`)',
};

/** A start's 409: no attempt to carry. */
const START_CONFLICT_TEXT =
  'ATTEMPT_LIMIT_REACHED: every attempt the quiz policy allows is used and none is open; not retryable (`attempts_used`, `max_attempts`); or IDEMPOTENCY_KEY_IN_USE: the first start with this Idempotency-Key is still running; retryable after `retry-after: 1`';

/** What a GET answers when it carries a body anyway: the edge parses any body before the route (so also on /health). */
const GET_BODY_TEXT: Partial<Record<ErrorStatus, string>> = {
  400: 'VALIDATION_ERROR: the request carries a body that is not well-formed JSON (a GET needs none)',
  413: 'PAYLOAD_TOO_LARGE: the request carries a body over the limit (a GET needs none)',
  415: 'UNSUPPORTED_MEDIA_TYPE: the request carries a body that is not JSON (a GET needs none)',
};
/** The statuses every GET may answer because of a body it carries. */
const GET_BODY: ErrorStatus[] = [400, 413, 415];

const header = (name: string) => ({ $ref: `#/components/headers/${name}` });

/** The response headers the service sends (the responses refer to them). */
const HEADERS = {
  XRequestId: {
    description:
      "The request's id: the request's own x-request-id when well-formed ([A-Za-z0-9._:-]{1,128}), else a new UUID; on every response",
    required: true,
    schema: { type: 'string' },
  },
  ETag: {
    description: 'The version of the attempt in the body (under `session` in an error), quoted: `"5"`; send it back as If-Match',
    required: true,
    schema: { type: 'string' },
  },
  RetryAfter: { description: 'Seconds to wait before a retry (as retryAfterSeconds)', required: true, schema: { type: 'string' } },
  RetryAfterWhenRetryable: {
    description: 'Seconds to wait before a retry (as retryAfterSeconds): sent when the error is retryable',
    required: false,
    schema: { type: 'string' },
  },
  Location: { description: 'The path of the attempt (under the prefix the start used)', required: true, schema: { type: 'string' } },
  IdempotentReplayed: {
    description:
      '`true` when this is the kept response of an earlier request with the same Idempotency-Key (a 4xx is kept too), answered again; absent otherwise',
    required: false,
    schema: { type: 'string', const: 'true' },
  },
  WWWAuthenticate: {
    description: '`Bearer` without a token, `Bearer error="invalid_token"` for a token that is refused',
    required: true,
    schema: { type: 'string' },
  },
};
type HeaderName = keyof typeof HEADERS;

/** How an operation's responses differ: a start's 409, /ready's 503, the statuses a kept response may have. */
interface ErrorOptions {
  /** The operation takes an Idempotency-Key: these statuses may be a kept response, answered again. */
  replayable?: boolean;
  /** The 409 is a start's (no attempt to carry). */
  start?: boolean;
  /** A GET: 400, 413 and 415 are about a body it carries. */
  get?: boolean;
}

/** The statuses a kept (Idempotency-Key) response may have: the handler's own answers, not the edge's, the auth layer's or a 5xx. */
const REPLAYABLE = new Set<number>([200, 201, 400, 403, 404, 409, 410, 423]);

/** The header each names. */
const HEADER_NAME: Record<HeaderName, string> = {
  XRequestId: 'x-request-id',
  ETag: 'ETag',
  RetryAfter: 'Retry-After',
  RetryAfterWhenRetryable: 'Retry-After',
  Location: 'Location',
  IdempotentReplayed: 'idempotent-replayed',
  WWWAuthenticate: 'WWW-Authenticate',
};

/** A response's headers: x-request-id always, then those named. */
const headers = (...names: HeaderName[]) =>
  Object.fromEntries([['x-request-id', header('XRequestId')], ...names.map((n) => [HEADER_NAME[n], header(n)])]);

/** The headers of an error status. */
function errorHeaders(status: ErrorStatus, options: ErrorOptions): HeaderName[] {
  const names: HeaderName[] = [];
  if (status === 401) names.push('WWWAuthenticate');
  if (status === 409 && !options.start) names.push('ETag', 'RetryAfterWhenRetryable');
  if (status === 409 && options.start) names.push('RetryAfterWhenRetryable');
  if (status === 410) names.push('ETag');
  if (status === 423) names.push('ETag', 'RetryAfter');
  if (status === 503) names.push('RetryAfter');
  if (options.replayable && REPLAYABLE.has(status)) names.push('IdempotentReplayed');
  return names;
}

/** The error responses of an operation: each status with its schema, headers and description. */
const errorsWith = (options: ErrorOptions, ...codes: ErrorStatus[]) =>
  Object.fromEntries(
    [...new Set([...codes, ...(options.get ? GET_BODY : [])])]
      .sort((a, b) => a - b)
      .map((c) => [
        String(c),
        {
          description:
            (options.get && !codes.includes(c) ? GET_BODY_TEXT[c] : undefined) ??
            (c === 409 && options.start ? START_CONFLICT_TEXT : ERROR_TEXT[c]),
          headers: headers(...errorHeaders(c, options)),
          content: json(ref(c === 409 && options.start ? 'StartConflict' : ERROR_SCHEMA[c])),
        },
      ]),
  );

/** The error responses of an operation that takes no Idempotency-Key and is no start or GET. */
const errors = (...codes: ErrorStatus[]) => errorsWith({}, ...codes);

/** A 200 (or 201) that is not an attempt. */
const ok = (description: string, content: Record<string, unknown>) => ({ description, headers: headers(), content });

const requestId = {
  name: 'x-request-id',
  in: 'header',
  required: false,
  description: 'Echoed when well-formed ([A-Za-z0-9._:-]{1,128}); generated otherwise',
  schema: { type: 'string' },
};
const ifMatch = {
  name: 'If-Match',
  in: 'header',
  required: false,
  description: 'The version the write expects (`5`, `"5"` or `W/"5"`); must agree with `version` in the body',
  schema: { type: 'string' },
};
const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Names the request (1–255 printable ASCII characters; a UUID): the first response is kept 24 h per caller and key, and a retry of the same request gets it again with `idempotent-replayed: true`, applying nothing',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};
const idParam = { name: 'id', in: 'path', required: true, schema: schema(sessionIdParam) };
const quizIdPathParam = { name: 'quiz_id', in: 'path', required: true, schema: schema(quizIdParam) };
const userIdPathParam = { name: 'user_id', in: 'path', required: true, schema: schema(userIdParam) };
const attemptOk = (description: string, options: { replayable?: boolean; location?: boolean } = {}) => ({
  description,
  headers: headers(
    'ETag',
    ...(options.location ? (['Location'] as const) : []),
    ...(options.replayable ? (['IdempotentReplayed'] as const) : []),
  ),
  content: json(ref('Attempt')),
});

/** Bearer token optional: required only when the service is configured with AUTH_JWT_SECRET or AUTH_JWKS_URL. */
const security = [{}, { bearerAuth: [] }];

function sessionPaths(prefix: string, tag: string): Record<string, unknown> {
  const progress = (method: string) => ({
    tags: [tag],
    security,
    operationId: `${method}Progress${tag}`,
    summary: 'Save progress: answers (merged per question) and/or the current question; version-checked when a version is given',
    description:
      "Merges `answers` (and `question_id` with `answer`) into the attempt's answers, question by question, and sets `current_question`; the version goes up by one. With `version` (or If-Match) the write applies only at that version: otherwise 409 SESSION_CONFLICT, with the current attempt under `session` to merge into and retry with its version (no read needed); without one it is last-write-wins. The owner (or a service) writes; a proctor never does. The write lands in Redis at once and in PostgreSQL within PERSIST_DELAY_SECONDS (write-behind). PATCH and PUT are the same operation (the earlier services used one each). An Idempotency-Key is checked and kept by the write itself, atomically.",
    parameters: [idParam, ifMatch, idempotencyKey, requestId],
    requestBody: { required: true, content: json(ref('ProgressRequest')) },
    responses: {
      '200': attemptOk('The attempt after the write (version + 1)', { replayable: true }),
      ...errorsWith({ replayable: true }, 400, 401, 403, 404, 409, 410, 413, 415, 422, 423, 429, 500, 503),
    },
  });
  const control = (what: 'extend' | 'pause' | 'resume', summary: string, description: string, body: string) => ({
    tags: [tag],
    security,
    operationId: `${what}${tag}`,
    summary,
    description,
    parameters: [idParam, idempotencyKey, requestId],
    requestBody: { required: what === 'extend', content: json(ref(body)) },
    responses: {
      '200': attemptOk('The attempt after the control (version + 1), or as it was when there was nothing to do', { replayable: true }),
      ...errorsWith({ replayable: true }, 400, 401, 403, 404, 409, 410, 413, 415, 422, 429, 500, 503),
    },
  });
  const close = (what: 'complete' | 'abandon', summary: string, description: string) => ({
    tags: [tag],
    security,
    operationId: `${what}${tag}`,
    summary,
    description,
    parameters: [idParam, ifMatch, idempotencyKey, requestId],
    requestBody: { required: false, content: json(ref('CloseRequest')) },
    responses: {
      '200': attemptOk('The closed attempt (repeating returns the same)', { replayable: true }),
      ...errorsWith({ replayable: true }, 400, 401, 403, 404, 409, 410, 413, 415, 422, 423, 429, 500, 503),
    },
  });
  return {
    [`${prefix}/start`]: {
      post: {
        tags: [tag],
        security,
        operationId: `start${tag}`,
        summary: 'Start an attempt, or resume the open one for this user and quiz',
        description:
          "Creates the user's next attempt at the quiz (201, in PostgreSQL before the response), unless the user has one open: that one is resumed (200) — two devices starting at once get the same attempt. The time limit is the user's override's, else the quiz policy's, else `time_limit_seconds` (a service or open mode only), else DEFAULT_TIME_LIMIT_SECONDS; then the user's accommodations apply, and the deadline never passes the quiz's `closes_at`. A student token starts for its own subject. A new attempt is refused outside the policy's window (403 QUIZ_NOT_OPEN) and once every allowed attempt is used (409 ATTEMPT_LIMIT_REACHED); resuming never is. `Location` names the attempt. With an Idempotency-Key a retry gets the first response again.",
        parameters: [idempotencyKey, requestId],
        requestBody: { required: true, content: json(ref('StartRequest')) },
        responses: {
          '201': attemptOk('A new attempt', { replayable: true, location: true }),
          '200': attemptOk('The open attempt for this user and quiz (resume)', { replayable: true, location: true }),
          ...errorsWith({ replayable: true, start: true }, 400, 401, 403, 409, 413, 415, 422, 429, 500, 503),
        },
      },
    },
    [`${prefix}/{id}`]: {
      get: {
        tags: [tag],
        security,
        operationId: `get${tag}`,
        summary: 'Read an attempt; time_remaining is computed at response time',
        description:
          'The attempt as it is now: from Redis, or from PostgreSQL on a miss or while Redis is down. The owner, a proctor (of a quiz in its quiz_ids) or a service may read it. An attempt past its deadline is shown as the deadline left it (overdue, expired or completed by the timer) even before a worker has moved it. One that expired or was abandoned is 410 with the attempt under `session`. The ETag is the version.',
        parameters: [idParam, requestId],
        responses: { '200': attemptOk('The attempt'), ...errorsWith({ get: true }, 400, 401, 403, 404, 410, 500, 503) },
      },
    },
    [`${prefix}/{id}/progress`]: { patch: progress('patch'), put: progress('put') },
    [`${prefix}/{id}/complete`]: {
      post: close(
        'complete',
        'Complete the attempt; durable in PostgreSQL before the response',
        'The owner (or a service) submits the attempt: status completed, `submitted_by` student, durable in PostgreSQL with its events before the response; a repeat answers the completed attempt again, whatever version it carries. With `version` (or If-Match) it applies only at that version (409 SESSION_CONFLICT otherwise). Refused while a proctor has it paused (423) and once it expired or was abandoned (410); an overdue attempt may still be completed in its grace period.',
      ),
    },
    [`${prefix}/{id}/abandon`]: {
      post: close(
        'abandon',
        'The student quits: the attempt becomes abandoned',
        'The owner (or a service) gives the attempt up: status abandoned, durable in PostgreSQL before the response; a repeat answers the same. Afterwards reads and writes are 410 with the attempt, and a new start creates a new attempt. Abandoning a completed attempt is 409 SESSION_COMPLETED; a paused one 423.',
      ),
    },
    [`${prefix}/{id}/extend`]: {
      post: control(
        'extend',
        'Add time (a proctor or a service): the deadline moves, the expiry job follows; an untimed attempt is 400, a completed one 409, one that expired by time 410 unless `reopen`',
        'Grants `seconds` more, from the current deadline or from now (`from`), recorded with `reason` in the event log and added to `extra_time_seconds`; durable in PostgreSQL before the response, and the expiry job follows the new deadline. With `reopen` (a service, or a proctor) an attempt that expired by time comes back in progress with its answers, unless its user has started another attempt at the quiz since (409 ANOTHER_ATTEMPT_OPEN). A proctor acts only on the quizzes of its quiz_ids.',
        'ExtendRequest',
      ),
    },
    [`${prefix}/{id}/events`]: {
      get: {
        tags: [tag],
        security,
        operationId: `events${tag}`,
        summary: "The attempt's event log after `after` (seq), at most `limit` (the owner, a proctor or a service)",
        description:
          "Every event of the attempt in seq order — started, answer_saved, write_rejected (a refused write and why), the controls, the close, and the client's own events — with who did it (the token's subject and role) and in which request. Those already in PostgreSQL first, then those still only in Redis, so the log is complete at any moment. Page with `after` = the previous page's `next_after`.",
        parameters: [
          idParam,
          { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: 0, default: 0 } },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          requestId,
        ],
        responses: {
          '200': ok('Events in seq order', json(ref('EventsPage'))),
          ...errorsWith({ get: true }, 400, 401, 403, 404, 500, 503),
        },
      },
      post: {
        tags: [tag],
        security,
        operationId: `clientEvents${tag}`,
        summary:
          "Report the client's events (page_blurred, page_focused, question_viewed, connection_lost, connection_restored), up to 50; the server adds `at`",
        description:
          "The owner's client (or a service) reports what happened on its side, each with its own `client_time` and optional `data`; they join the attempt's event log with the server's time beside the client's, for a proctor or a grader to read. They change nothing else: not the version, not the answers. Server event types are refused (400).",
        parameters: [idParam, requestId],
        requestBody: { required: true, content: json(ref('ClientEventsRequest')) },
        responses: {
          '202': ok('Recorded', json(ref('ClientEventsAccepted'))),
          ...errors(400, 401, 403, 404, 413, 415, 500, 503),
        },
      },
    },
    [`${prefix}/{id}/stream`]: {
      get: {
        tags: [tag],
        security,
        operationId: `stream${tag}`,
        summary: 'Server-Sent Events of the attempt (whoever may read it)',
        description:
          'An `event: attempt` with `id: <version>` on connect (unless Last-Event-ID is that version already), then one per change from any API process or worker; an `event: time` with `{time_remaining, server_time}` on connect and at least every 15 s, so a client corrects its clock. A reconnect with Last-Event-ID (or `last_event_id`) gets the newer state at once. 503 (retryable) when the process holds MAX_STREAMS streams.',
        parameters: [
          idParam,
          ...queryParameters(attemptStreamQuery),
          {
            name: 'Last-Event-ID',
            in: 'header',
            required: false,
            description: 'The id of the last attempt event the client has (its version)',
            schema: { type: 'string' },
          },
          requestId,
        ],
        responses: {
          '200': ok('The event stream', { 'text/event-stream': { schema: { type: 'string' } } }),
          ...errorsWith({ get: true }, 400, 401, 403, 404, 410, 500, 503),
        },
      },
    },
    [`${prefix}/{id}/pause`]: {
      post: control(
        'pause',
        'Pause (a proctor or a service): status paused, the clock stops, writes get 423 and no worker closes it; a repeat is 200 unchanged',
        'Stops the clock of an open attempt (the fire alarm, a medical break): `paused_at` is set, `time_remaining` is frozen, progress, complete and abandon answer 423 (retryable) and no worker expires it until it resumes. Recorded with `reason` in the event log; durable in PostgreSQL before the response. A completed attempt is 409, an expired, abandoned or overdue one 410.',
        'PauseRequest',
      ),
    },
    [`${prefix}/{id}/resume`]: {
      post: control(
        'resume',
        'Resume (a proctor or a service): the status before the pause returns, with the time remaining at the pause; on an attempt not paused, 200 unchanged',
        'Restarts the clock: the deadline becomes now plus the time that was left at the pause, and the expiry job follows it. Recorded with `reason` in the event log; durable in PostgreSQL before the response. A completed attempt is 409, an expired or abandoned one 410.',
        'PauseRequest',
      ),
    },
  };
}

let cached: Record<string, unknown> | null = null;

/** The OpenAPI 3.1 document, generated from the request and response zod schemas. */
export function openApiDocument(): Record<string, unknown> {
  cached ??= {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Quiz session service',
      version: '1.0.0',
      description: `Timed quiz attempts: start or resume, version-checked progress, complete, abandon. Limits: body ${LIMITS.bodyBytes / 1024} KiB, ${LIMITS.answersPerRequest} answers per request, ${LIMITS.answersPerAttempt} per attempt, answers ${LIMITS.answerBytes} bytes, ids ${LIMITS.idLength} characters.`,
      license: { name: LICENSE, identifier: LICENSE },
      contact: { name: 'The quiz session service maintainers' },
    },
    servers: [
      {
        url: '/',
        description: 'The service that serves this document (GET /openapi.json); it listens on PORT, 8002 unless configured',
      },
    ],
    tags: [
      { name: 'Sessions', description: 'Seed 2 routes (/api/sessions)' },
      { name: 'SessionsV1', description: 'Seed 1 routes (/sessions), same handlers' },
      { name: 'Quizzes', description: "The institution's rules per quiz" },
      { name: 'Operations', description: 'Liveness, readiness, metrics and this document; no authentication' },
      { name: 'Pages', description: 'The student reference client and the proctor console' },
    ],
    webhooks: Object.fromEntries(
      Object.values(WEBHOOK_TYPE_OF_EVENT).map((type) => [
        type,
        {
          post: {
            operationId: type.replace('.', '_'),
            // the receiver's endpoint: the service authenticates by signing (webhook-signature), not by a token
            security: [],
            summary: `Sent to every WEBHOOK_URLS receiver once the attempt's ${type.split('.')[1]} is durable (Standard Webhooks: at least once, retried with backoff for WEBHOOK_RETRY_SECONDS, then dead-lettered); answer 2xx`,
            description:
              'The receiver verifies webhook-signature with the WEBHOOK_SECRET key before trusting the body, and deduplicates by webhook-id: a retry, or a second delivery after a crash, carries the same id. The body holds the attempt as the API shows it, at the time of the close (`timestamp`); a reopened attempt that closes again is a new message.',
            parameters: [
              {
                name: 'webhook-id',
                in: 'header',
                required: true,
                description: 'msg_<attempt id>_<event seq>: the same on every retry',
                schema: { type: 'string' },
              },
              {
                name: 'webhook-timestamp',
                in: 'header',
                required: true,
                description: 'Unix seconds of this try',
                schema: { type: 'string' },
              },
              {
                name: 'webhook-signature',
                in: 'header',
                required: true,
                description: 'v1,<base64 HMAC-SHA256 of "id.timestamp.body" keyed with the WEBHOOK_SECRET key>',
                schema: { type: 'string' },
              },
            ],
            requestBody: {
              required: true,
              content: json({
                type: 'object',
                required: ['type', 'timestamp', 'data'],
                properties: {
                  type: { const: type },
                  timestamp: { type: 'string', format: 'date-time' },
                  data: { type: 'object', required: ['attempt'], properties: { attempt: ref('Attempt') } },
                },
              }),
            },
            responses: { '200': { description: 'Delivered (any 2xx); anything else is retried' } },
          },
        },
      ]),
    ),
    paths: {
      ...sessionPaths(SESSION_PREFIXES[0], 'Sessions'),
      ...sessionPaths(SESSION_PREFIXES[1], 'SessionsV1'),
      '/api/quizzes/{quiz_id}/policy': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'getQuizPolicy',
          summary: "The quiz's policy (any role)",
          description:
            "The institution's rules for the quiz: its time limit, how many attempts a user may make, what happens at the deadline (expire, autosubmit, or a grace period) and the window in which attempts may start. Any role may read it, a student too (to show the rules before starting). 404 POLICY_NOT_FOUND when the quiz has none.",
          parameters: [quizIdPathParam, requestId],
          responses: { '200': ok('The policy', json(ref('QuizPolicy'))), ...errorsWith({ get: true }, 400, 401, 404, 500, 503) },
        },
        put: {
          tags: ['Quizzes'],
          security,
          operationId: 'putQuizPolicy',
          summary: "Create or replace the quiz's policy (a service only); it applies to the next start at once",
          description:
            'The whole policy (a PUT replaces it; omitted fields take their defaults). It applies to attempts started from now on; attempts already started keep the deadline they have. `grace_period_seconds` goes with `overdue_handling` graceperiod only, and `closes_at` must be after `opens_at`.',
          parameters: [quizIdPathParam, requestId],
          requestBody: { required: true, content: json(ref('QuizPolicyRequest')) },
          responses: {
            '200': ok('The policy as stored', json(ref('QuizPolicy'))),
            ...errors(400, 401, 403, 413, 415, 500, 503),
          },
        },
      },
      '/api/users/{user_id}/accommodations': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'getAccommodations',
          summary: "The user's accommodations (a service or a proctor)",
          description:
            'The extra time the user gets on every timed quiz (a time multiplier and extra seconds). A service or a proctor may read it, a student may not. 404 SETTING_NOT_FOUND when the user has none.',
          parameters: [userIdPathParam, requestId],
          responses: {
            '200': ok('The accommodations', json(ref('Accommodation'))),
            ...errorsWith({ get: true }, 400, 401, 403, 404, 500, 503),
          },
        },
        put: {
          tags: ['Quizzes'],
          security,
          operationId: 'putAccommodations',
          summary:
            "Create or replace the user's accommodations (a service only): on every timed quiz the limit becomes round(limit × time_multiplier) + extra_time_seconds",
          description:
            'Applies to the attempts the user starts from now on, at every quiz with a time limit (an untimed quiz stays untimed); attempts already started keep their deadline (a proctor extends those live).',
          parameters: [userIdPathParam, requestId],
          requestBody: { required: true, content: json(ref('AccommodationRequest')) },
          responses: {
            '200': ok('As stored', json(ref('Accommodation'))),
            ...errors(400, 401, 403, 413, 415, 500, 503),
          },
        },
      },
      '/api/quizzes/{quiz_id}/overrides/{user_id}': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'getOverride',
          summary: "The user's override of the quiz's policy (a service or a proctor)",
          description:
            'What differs for this user at this quiz: a time limit of its own, extra attempts, a later closing time. A service or a proctor may read it, a student may not. 404 SETTING_NOT_FOUND when there is none.',
          parameters: [quizIdPathParam, userIdPathParam, requestId],
          responses: { '200': ok('The override', json(ref('Override'))), ...errorsWith({ get: true }, 400, 401, 403, 404, 500, 503) },
        },
        put: {
          tags: ['Quizzes'],
          security,
          operationId: 'putOverride',
          summary:
            "Create or replace the user's override (a service only): its time limit comes first, its extra attempts add to max_attempts, its closes_at replaces the policy's",
          description:
            'At least one of `time_limit_seconds`, `extra_attempts` and `closes_at`; a PUT replaces the whole override. It applies to the next start of this user at this quiz; accommodations still apply on top of its time limit.',
          parameters: [quizIdPathParam, userIdPathParam, requestId],
          requestBody: { required: true, content: json(ref('OverrideRequest')) },
          responses: { '200': ok('As stored', json(ref('Override'))), ...errors(400, 401, 403, 413, 415, 500, 503) },
        },
        delete: {
          tags: ['Quizzes'],
          security,
          operationId: 'deleteOverride',
          summary: 'Remove the override (a service only)',
          description:
            "From the next start on, the user has the quiz's policy like everyone else. 404 SETTING_NOT_FOUND when there was no override.",
          parameters: [quizIdPathParam, userIdPathParam, requestId],
          responses: { '204': { description: 'Removed', headers: headers() }, ...errors(400, 401, 403, 404, 413, 415, 500, 503) },
        },
      },
      '/api/quizzes/{quiz_id}/attempts': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'listQuizAttempts',
          summary: "The quiz's attempts (a proctor of the quiz or a service), in a stable order (started_at, id), keyset-paged",
          description:
            'Read from PostgreSQL, with each open attempt in its live state from Redis (answers and version as they are now). Filter by `status` and `user_id`; pass `next_cursor` as `cursor` for the next page. With `status`, the live status decides, so a page may hold fewer than `limit` while `next_cursor` is set.',
          parameters: [quizIdPathParam, ...queryParameters(quizAttemptsQuery), requestId],
          responses: { '200': ok('A page', json(ref('AttemptsPage'))), ...errorsWith({ get: true }, 400, 401, 403, 500, 503) },
        },
      },
      '/api/quizzes/{quiz_id}/stream': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'streamQuiz',
          summary:
            'Server-Sent Events of every change of any attempt of the quiz (a proctor of the quiz or a service), new attempts included',
          description:
            "A proctor's live view: an `event: attempt` with the attempt and `id: <attempt id>.<version>` for every change of any attempt of the quiz, from any API process or worker, new attempts included; an `event: client_event` (no id) with each event a student's page reports (`{attempt_id, user_id, seq, type, at, data}`; type connection_lost, connection_restored, page_blurred, …); a keep-alive comment at least every 15 s. Each attempt's changes arrive in order. 503 (retryable) when the process holds MAX_STREAMS streams.",
          parameters: [quizIdPathParam, requestId],
          responses: {
            '200': ok('The event stream', { 'text/event-stream': { schema: { type: 'string' } } }),
            ...errorsWith({ get: true }, 400, 401, 403, 500, 503),
          },
        },
      },
      '/api/users/{user_id}/attempts': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'listUserAttempts',
          summary: "The user's attempts (a service, or the student themselves), as the quiz listing",
          description:
            'Every attempt of the user at any quiz, in the same stable order and keyset paging as the quiz listing, open ones in their live state; filter by `quiz_id` and `status`. A student may list only their own.',
          parameters: [userIdPathParam, ...queryParameters(userAttemptsQuery), requestId],
          responses: { '200': ok('A page', json(ref('AttemptsPage'))), ...errorsWith({ get: true }, 400, 401, 403, 500, 503) },
        },
      },
      '/health': {
        get: {
          tags: ['Operations'],
          security: [],
          operationId: 'health',
          summary: 'Liveness',
          description:
            'Answers 200 while the process runs, without asking Redis or PostgreSQL (that is /ready): for a liveness probe, which restarts the process when it fails. No authentication.',
          responses: { '200': ok('The process runs', json(ref('Health'))), ...errorsWith({ get: true }) },
        },
      },
      '/ready': {
        get: {
          tags: ['Operations'],
          security: [],
          operationId: 'ready',
          summary: 'Readiness: Redis and PostgreSQL answer',
          description:
            'Pings Redis (every master, on a cluster) and PostgreSQL, each within 1.5 s: 200 when both answer, else 503 naming what is down (`checks`), so a load balancer sends no traffic to a process that cannot serve it. No authentication.',
          responses: {
            '200': ok('Ready', json(ref('Ready'))),
            ...errorsWith({ get: true }),
            '503': { description: 'Names what is down', headers: headers('RetryAfter'), content: json(ref('NotReady')) },
          },
        },
      },
      '/metrics': {
        get: {
          tags: ['Operations'],
          security: [],
          operationId: 'metrics',
          summary: 'Prometheus metrics (text format)',
          description:
            "The process's metrics for Prometheus to scrape (docs/OPERATIONS.md): request latency by route and status, version conflicts, cache reads by source, transitions, queue and persist lag, jobs, the dirty backlog, dependency_up, open streams, webhook deliveries. Its own scrapes are not in the request rate. No authentication: keep it off the public network.",
          responses: {
            '200': ok('Metrics', { 'text/plain': { schema: { type: 'string' } } }),
            ...errorsWith({ get: true }),
            '404': {
              description: 'ROUTE_NOT_FOUND: with API_METRICS_PORT set, metrics are served on that port instead',
              headers: headers(),
              content: json(ref('NotFound')),
            },
          },
        },
      },
      '/demo': {
        get: {
          tags: ['Pages'],
          security: [],
          operationId: 'demoPage',
          summary: 'The student reference client',
          description:
            'An HTML page (its script and stylesheet under /web/): the built-in sample quiz (q1–q5) as quiz `quiz`, for `user` in open mode; with authentication on, the page asks for a token (or takes one after `#token=`). Every answer autosaves. Content-Security-Policy: this origin only, no inline scripts. 503 when the pages were not built.',
          parameters: queryParameters(demoQuery),
          responses: {
            '200': ok('The page', { 'text/html': { schema: { type: 'string' } } }),
            ...errorsWith({ get: true }, 400, 503),
          },
        },
      },
      '/console': {
        get: {
          tags: ['Pages'],
          security: [],
          operationId: 'consolePage',
          summary: 'The proctor console',
          description:
            "An HTML page for quiz `quiz`: its attempts live from the quiz's stream, the live controls (extend, pause, resume, reopen, extend everyone), each attempt's event log and a picture of the room. With authentication on, a proctor's token is pasted once per tab; the page's own requests carry it. 503 when the pages were not built.",
          parameters: queryParameters(consoleQuery),
          responses: {
            '200': ok('The page', { 'text/html': { schema: { type: 'string' } } }),
            ...errorsWith({ get: true }, 400, 503),
          },
        },
      },
      '/web/{file}': {
        get: {
          tags: ['Pages'],
          security: [],
          operationId: 'pageAsset',
          summary: "The pages' files",
          description:
            'demo.js, console.js, session-client.js (the client library as an ES module) and app.css, as the build made them; any other name is 404. 503 when the pages were not built.',
          parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': ok('The file', { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } }),
            ...errorsWith({ get: true }, 404, 503),
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['Operations'],
          security: [],
          operationId: 'openapi',
          summary: 'This document',
          description:
            'The OpenAPI 3.1 document of the service, generated from the zod schemas that validate its requests and describe its responses; clients generate their code from it. No authentication.',
          responses: { '200': ok('OpenAPI 3.1', json({ type: 'object' })), ...errorsWith({ get: true }) },
        },
      },
    },
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      headers: HEADERS,
      schemas: componentSchemas({
        StartRequest: startBody,
        ProgressRequest: progressBodyShape,
        CloseRequest: closeBody,
        ExtendRequest: extendBody,
        PauseRequest: pauseBody,
        ClientEventsRequest: clientEventsBody,
        ClientEventsAccepted: clientEventsAccepted,
        EventsPage: eventsPageResponse,
        AttemptsPage: attemptsPageResponse,
        QuizPolicyRequest: policyBody,
        QuizPolicy: policyResponse,
        AccommodationRequest: accommodationBody,
        Accommodation: accommodationResponse,
        OverrideRequest: overrideBody,
        Override: overrideResponse,
        Attempt: attemptResponse,
        ValidationError: ERROR_RESPONSES[400],
        Unauthorized: ERROR_RESPONSES[401],
        Forbidden: ERROR_RESPONSES[403],
        NotFound: ERROR_RESPONSES[404],
        Conflict: ERROR_RESPONSES[409],
        StartConflict: startConflictResponse,
        Gone: ERROR_RESPONSES[410],
        Locked: ERROR_RESPONSES[423],
        RateLimited: ERROR_RESPONSES[429],
        PayloadTooLarge: ERROR_RESPONSES[413],
        UnsupportedMediaType: ERROR_RESPONSES[415],
        IdempotencyKeyReused: ERROR_RESPONSES[422],
        InternalError: ERROR_RESPONSES[500],
        ServiceUnavailable: ERROR_RESPONSES[503],
        Health: healthResponse,
        Ready: readyResponse,
        NotReady: notReadyResponse,
      }),
    },
  };
  return cached;
}
