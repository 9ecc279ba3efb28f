import { z } from 'zod';
import { LIMITS } from '../shared/limits';
import { WEBHOOK_TYPE_OF_EVENT } from '../shared/domain/webhook';
import { quizAttemptsQuery, userAttemptsQuery } from './routes/listings';
import { attemptStreamQuery } from './routes/streams';
import { consoleQuery, demoQuery } from './routes/web';
import {
  attemptResponse,
  attemptsPageResponse,
  clientEventsAccepted,
  errorResponse,
  eventsPageResponse,
  healthResponse,
  notReadyResponse,
  readyResponse,
  streamClientEvent,
  streamTimeEvent,
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

/** The query parameters of a strict object schema, one per property. */
function queryParameters(s: z.ZodObject): Array<Record<string, unknown>> {
  const properties = (schema(s).properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(properties).map(([name, p]) => ({ name, in: 'query', required: false, schema: p }));
}
const json = (s: JsonSchema) => ({ 'application/json': { schema: s } });

const ERROR_TEXT: Record<number, string> = {
  400: 'VALIDATION_ERROR: malformed JSON, wrong types, invalid UUID, out-of-range or oversized values; `field` names the field',
  401: 'UNAUTHORIZED: authentication is configured and the bearer token is missing, expired, without exp, too old (AUTH_MAX_TOKEN_AGE_SECONDS) or invalid',
  403: "QUIZ_NOT_OPEN on start: outside the quiz policy's window (`opens_at`, `closes_at`); or FORBIDDEN: the token's role may not do this (a proctor never answers, completes, abandons or starts; a student never sets time_limit_seconds, extends, pauses, resumes or reopens), or its subject is not the attempt's user_id (or a different user_id was given to start), or the attempt is of a quiz outside a proctor's quiz_ids",
  404: 'SESSION_NOT_FOUND (or ROUTE_NOT_FOUND; POLICY_NOT_FOUND for a quiz without a policy; SETTING_NOT_FOUND for a missing accommodation or override)',
  409: 'SESSION_CONFLICT (stale version; `retry-after: 1`, retryable, current attempt under `session`), SESSION_COMPLETED, on start ATTEMPT_LIMIT_REACHED (every attempt the quiz policy allows is used; not retryable; `attempts_used`, `max_attempts`), or on a reopen ANOTHER_ATTEMPT_OPEN (the user has started another attempt at the quiz since), or IDEMPOTENCY_KEY_IN_USE (the first request with this Idempotency-Key is still running; retryable)',
  410: 'SESSION_EXPIRED: the deadline passed (progress on an overdue attempt too), or the attempt was abandoned; the attempt under `session`',
  423: 'SESSION_PAUSED: a proctor paused the attempt; retryable (`retry-after`), the attempt under `session`',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE: the body is not JSON',
  422: 'IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used for a different request (route, If-Match or body); nothing applied',
  500: 'INTERNAL_SERVER_ERROR',
  503: 'SERVICE_UNAVAILABLE: Redis or PostgreSQL unreachable; retryable',
};

const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: ERROR_TEXT[c], content: json(ref('Error')) }]));

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
const attemptOk = (description: string) => ({
  description,
  headers: {
    ETag: { description: 'The attempt version, quoted', schema: { type: 'string' } },
    'idempotent-replayed': {
      description: '`true` when this is the kept response of an earlier request with the same Idempotency-Key',
      schema: { type: 'string' },
    },
  },
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
    parameters: [idParam, ifMatch, idempotencyKey, requestId],
    requestBody: { required: true, content: json(ref('ProgressRequest')) },
    responses: {
      '200': attemptOk('The attempt after the write (version + 1)'),
      ...errors(400, 401, 403, 404, 409, 410, 413, 415, 422, 423, 500, 503),
    },
  });
  const control = (what: 'extend' | 'pause' | 'resume', summary: string, body: string) => ({
    tags: [tag],
    security,
    operationId: `${what}${tag}`,
    summary,
    parameters: [idParam, idempotencyKey, requestId],
    requestBody: { required: what === 'extend', content: json(ref(body)) },
    responses: {
      '200': attemptOk('The attempt after the control (version + 1), or as it was when there was nothing to do'),
      ...errors(400, 401, 403, 404, 409, 410, 413, 415, 422, 500, 503),
    },
  });
  const close = (what: 'complete' | 'abandon', summary: string) => ({
    tags: [tag],
    security,
    operationId: `${what}${tag}`,
    summary,
    parameters: [idParam, ifMatch, idempotencyKey, requestId],
    requestBody: { required: false, content: json(ref('CloseRequest')) },
    responses: {
      '200': attemptOk('The closed attempt (repeating returns the same)'),
      ...errors(400, 401, 403, 404, 409, 410, 413, 415, 422, 423, 500, 503),
    },
  });
  return {
    [`${prefix}/start`]: {
      post: {
        tags: [tag],
        security,
        operationId: `start${tag}`,
        summary: 'Start an attempt, or resume the open one for this user and quiz',
        parameters: [idempotencyKey, requestId],
        requestBody: { required: true, content: json(ref('StartRequest')) },
        responses: {
          '201': attemptOk('A new attempt'),
          '200': attemptOk('The open attempt for this user and quiz (resume)'),
          ...errors(400, 401, 403, 409, 413, 415, 422, 500, 503),
        },
      },
    },
    [`${prefix}/{id}`]: {
      get: {
        tags: [tag],
        security,
        operationId: `get${tag}`,
        summary: 'Read an attempt; time_remaining is computed at response time',
        parameters: [idParam, requestId],
        responses: { '200': attemptOk('The attempt'), ...errors(400, 401, 403, 404, 410, 413, 415, 500, 503) },
      },
    },
    [`${prefix}/{id}/progress`]: { patch: progress('patch'), put: progress('put') },
    [`${prefix}/{id}/complete`]: { post: close('complete', 'Complete the attempt; durable in PostgreSQL before the response') },
    [`${prefix}/{id}/abandon`]: { post: close('abandon', 'The student quits: the attempt becomes abandoned') },
    [`${prefix}/{id}/extend`]: {
      post: control(
        'extend',
        'Add time (a proctor or a service): the deadline moves, the expiry job follows; an untimed attempt is 400, a completed one 409, one that expired by time 410 unless `reopen`',
        'ExtendRequest',
      ),
    },
    [`${prefix}/{id}/events`]: {
      get: {
        tags: [tag],
        security,
        operationId: `events${tag}`,
        summary: "The attempt's event log after `after` (seq), at most `limit` (the owner, a proctor or a service)",
        parameters: [
          idParam,
          { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: 0, default: 0 } },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          requestId,
        ],
        responses: {
          '200': { description: 'Events in seq order', content: json(ref('EventsPage')) },
          ...errors(400, 401, 403, 404, 500, 503),
        },
      },
      post: {
        tags: [tag],
        security,
        operationId: `clientEvents${tag}`,
        summary:
          "Report the client's events (page_blurred, page_focused, question_viewed, connection_lost, connection_restored), up to 50; the server adds `at`",
        parameters: [idParam, requestId],
        requestBody: { required: true, content: json(ref('ClientEventsRequest')) },
        responses: {
          '202': { description: 'Recorded', content: json(ref('ClientEventsAccepted')) },
          ...errors(400, 401, 403, 404, 413, 415, 500, 503),
        },
      },
    },
    [`${prefix}/{id}/stream`]: {
      get: {
        tags: [tag],
        security,
        operationId: `stream${tag}`,
        summary:
          'Server-Sent Events of the attempt (whoever may read it): `event: attempt` with `id: <version>` on connect (unless Last-Event-ID is that version already), then one per change from any API process or worker; `event: time` (StreamTimeEvent: `{time_remaining, server_time}`) on connect and at least every 15 s. A reconnect with Last-Event-ID gets the newer state at once. 503 (retryable) when the process holds MAX_STREAMS streams',
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
          '200': { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
          ...errors(400, 401, 403, 404, 410, 500, 503),
        },
      },
    },
    [`${prefix}/{id}/pause`]: {
      post: control(
        'pause',
        'Pause (a proctor or a service): status paused, the clock stops, writes get 423 and no worker closes it; a repeat is 200 unchanged',
        'PauseRequest',
      ),
    },
    [`${prefix}/{id}/resume`]: {
      post: control(
        'resume',
        'Resume (a proctor or a service): the status before the pause returns, with the time remaining at the pause; on an attempt not paused, 200 unchanged',
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
    },
    servers: [{ url: 'http://localhost:8002' }],
    tags: [
      { name: 'Sessions', description: 'Seed 2 routes (/api/sessions)' },
      { name: 'SessionsV1', description: 'Seed 1 routes (/sessions), same handlers' },
      { name: 'Quizzes', description: "The institution's rules per quiz" },
      { name: 'Operations' },
      { name: 'Pages', description: 'The student reference client and the proctor console' },
    ],
    webhooks: Object.fromEntries(
      Object.values(WEBHOOK_TYPE_OF_EVENT).map((type) => [
        type,
        {
          post: {
            operationId: type.replace('.', '_'),
            summary: `Sent to every WEBHOOK_URLS receiver once the attempt's ${type.split('.')[1]} is durable (Standard Webhooks: at least once, retried with backoff for WEBHOOK_RETRY_SECONDS, then dead-lettered); answer 2xx`,
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
          parameters: [quizIdPathParam, requestId],
          responses: { '200': { description: 'The policy', content: json(ref('QuizPolicy')) }, ...errors(400, 401, 404, 500, 503) },
        },
        put: {
          tags: ['Quizzes'],
          security,
          operationId: 'putQuizPolicy',
          summary: "Create or replace the quiz's policy (a service only); it applies to the next start at once",
          parameters: [quizIdPathParam, requestId],
          requestBody: { required: true, content: json(ref('QuizPolicyRequest')) },
          responses: {
            '200': { description: 'The policy as stored', content: json(ref('QuizPolicy')) },
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
          parameters: [userIdPathParam, requestId],
          responses: {
            '200': { description: 'The accommodations', content: json(ref('Accommodation')) },
            ...errors(400, 401, 403, 404, 500, 503),
          },
        },
        put: {
          tags: ['Quizzes'],
          security,
          operationId: 'putAccommodations',
          summary:
            "Create or replace the user's accommodations (a service only): on every timed quiz the limit becomes round(limit × time_multiplier) + extra_time_seconds",
          parameters: [userIdPathParam, requestId],
          requestBody: { required: true, content: json(ref('AccommodationRequest')) },
          responses: {
            '200': { description: 'As stored', content: json(ref('Accommodation')) },
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
          parameters: [quizIdPathParam, userIdPathParam, requestId],
          responses: { '200': { description: 'The override', content: json(ref('Override')) }, ...errors(400, 401, 403, 404, 500, 503) },
        },
        put: {
          tags: ['Quizzes'],
          security,
          operationId: 'putOverride',
          summary:
            "Create or replace the user's override (a service only): its time limit comes first, its extra attempts add to max_attempts, its closes_at replaces the policy's",
          parameters: [quizIdPathParam, userIdPathParam, requestId],
          requestBody: { required: true, content: json(ref('OverrideRequest')) },
          responses: { '200': { description: 'As stored', content: json(ref('Override')) }, ...errors(400, 401, 403, 413, 415, 500, 503) },
        },
        delete: {
          tags: ['Quizzes'],
          security,
          operationId: 'deleteOverride',
          summary: 'Remove the override (a service only)',
          parameters: [quizIdPathParam, userIdPathParam, requestId],
          responses: { '204': { description: 'Removed' }, ...errors(400, 401, 403, 404, 500, 503) },
        },
      },
      '/api/quizzes/{quiz_id}/attempts': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'listQuizAttempts',
          summary:
            "The quiz's attempts (a proctor of the quiz or a service), in a stable order (started_at, id), keyset-paged; open ones in their live state. With `status`, the live status decides, so a page may hold fewer than `limit` while `next_cursor` is set",
          parameters: [quizIdPathParam, ...queryParameters(quizAttemptsQuery), requestId],
          responses: { '200': { description: 'A page', content: json(ref('AttemptsPage')) }, ...errors(400, 401, 403, 500, 503) },
        },
      },
      '/api/quizzes/{quiz_id}/stream': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'streamQuiz',
          summary:
            "Server-Sent Events of every change of any attempt of the quiz (a proctor of the quiz or a service), new attempts included: `event: attempt` with the attempt, `id: <attempt id>.<version>`; `event: client_event` (no id) with each event a student's page reports (StreamClientEvent: connection_lost, connection_restored, page_blurred, …); a keep-alive comment at least every 15 s",
          parameters: [quizIdPathParam, requestId],
          responses: {
            '200': { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            ...errors(400, 401, 403, 500, 503),
          },
        },
      },
      '/api/users/{user_id}/attempts': {
        get: {
          tags: ['Quizzes'],
          security,
          operationId: 'listUserAttempts',
          summary: "The user's attempts (a service, or the student themselves), as the quiz listing",
          parameters: [userIdPathParam, ...queryParameters(userAttemptsQuery), requestId],
          responses: { '200': { description: 'A page', content: json(ref('AttemptsPage')) }, ...errors(400, 401, 403, 500, 503) },
        },
      },
      '/health': {
        get: {
          tags: ['Operations'],
          operationId: 'health',
          summary: 'Liveness',
          responses: { '200': { description: 'The process runs', content: json(ref('Health')) } },
        },
      },
      '/ready': {
        get: {
          tags: ['Operations'],
          operationId: 'ready',
          summary: 'Readiness: Redis and PostgreSQL answer',
          responses: {
            '200': { description: 'Ready', content: json(ref('Ready')) },
            '503': { description: 'Names what is down', content: json(ref('NotReady')) },
          },
        },
      },
      '/metrics': {
        get: {
          tags: ['Operations'],
          operationId: 'metrics',
          summary: 'Prometheus metrics (text format)',
          responses: {
            '200': { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
            '404': {
              description: 'ROUTE_NOT_FOUND: with API_METRICS_PORT set, metrics are served on that port instead',
              content: json(ref('Error')),
            },
          },
        },
      },
      '/demo': {
        get: {
          tags: ['Pages'],
          operationId: 'demoPage',
          summary:
            'The student reference client (HTML; its script and stylesheet under /web/): the built-in sample quiz (q1–q5) as quiz `quiz`, for `user` in open mode (with authentication on the page asks for a token). Content-Security-Policy: this origin only, no inline scripts',
          parameters: queryParameters(demoQuery),
          responses: {
            '200': { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } },
            ...errors(400, 503),
          },
        },
      },
      '/console': {
        get: {
          tags: ['Pages'],
          operationId: 'consolePage',
          summary:
            "The proctor console (HTML) of quiz `quiz`: its attempts live from the quiz's stream, the live controls, the event log (with authentication on, a proctor's token is pasted once per tab)",
          parameters: queryParameters(consoleQuery),
          responses: {
            '200': { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } },
            ...errors(400, 503),
          },
        },
      },
      '/web/{file}': {
        get: {
          tags: ['Pages'],
          operationId: 'pageAsset',
          summary: "The pages' files: demo.js, console.js, session-client.js (the client library as an ES module), app.css",
          parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'The file',
              content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } },
            },
            ...errors(404, 503),
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['Operations'],
          operationId: 'openapi',
          summary: 'This document',
          responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } },
        },
      },
    },
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        StartRequest: schema(startBody),
        ProgressRequest: schema(progressBodyShape),
        CloseRequest: schema(closeBody),
        ExtendRequest: schema(extendBody),
        PauseRequest: schema(pauseBody),
        ClientEventsRequest: schema(clientEventsBody),
        ClientEventsAccepted: schema(clientEventsAccepted),
        EventsPage: schema(eventsPageResponse),
        AttemptsPage: schema(attemptsPageResponse),
        QuizPolicyRequest: schema(policyBody),
        QuizPolicy: schema(policyResponse),
        AccommodationRequest: schema(accommodationBody),
        Accommodation: schema(accommodationResponse),
        OverrideRequest: schema(overrideBody),
        Override: schema(overrideResponse),
        Attempt: schema(attemptResponse),
        StreamTimeEvent: schema(streamTimeEvent),
        StreamClientEvent: schema(streamClientEvent),
        Error: schema(errorResponse),
        Health: schema(healthResponse),
        Ready: schema(readyResponse),
        NotReady: schema(notReadyResponse),
      },
    },
  };
  return cached;
}
