import type { Routes } from '../routeTable';
import type { Context, Middleware } from 'koa';
import { attemptJson, type Attempt } from '../../shared/domain/attempt';
import { ForbiddenError, ValidationError } from '../../shared/errors';
import type { SessionService } from '../../shared/sessionService';
import { closeBody, parseProgressBody, SESSION_ID_MESSAGE, startBody, UUID_V4 } from '../schemas/session';
import { clientEventsBody, eventsQuery, extendBody, pauseBody } from '../schemas/control';
import { isoTime } from '../../shared/domain/isoTime';
import type { AttemptEvent, EventContext } from '../../shared/domain/events';
import type { Control } from '../../shared/domain/control';
import type { Logger } from '../../shared/logger';
import { parse } from '../validate';
import { claimOf, IdempotentReplay, replayProgress, runIdempotent, type CurrentAttempt } from '../idempotency';
import { attemptRecordKey, startRecordKey, type IdempotencyClaim, type IdempotencyStore } from '../../shared/store/idempotencyStore';
import { ownerOf, principalOf, requireAuth, type Authenticator } from '../auth';
import { authorize, maySetTimeLimit, quizScopeOf } from '../permissions';

/** The prefixes the session routes are served under: seed 2's and seed 1's. */
export const SESSION_PREFIXES = ['/api/sessions', '/sessions'] as const;

/**
 * The attempt id from the path, checked against the same pattern as sessionIdParam: on every
 * request, so a regex test rather than a schema parse that allocates.
 */
export function sessionIdOf(ctx: { params: Record<string, string> }): string {
  const id = ctx.params.id;
  if (!UUID_V4.test(id)) throw new ValidationError(SESSION_ID_MESSAGE, 'id');
  return id.toLowerCase();
}

/** Who makes the request and which request it is, for the event log. */
function eventContext(ctx: Context): EventContext {
  const principal = principalOf(ctx);
  return {
    actor: principal ? { id: principal.subject, role: principal.role } : { id: null, role: 'open' },
    requestId: (ctx.state.requestId as string | undefined) ?? null,
  };
}

/** An event as the API shows it: `at` as an ISO time. */
const eventJson = (e: AttemptEvent) => ({ ...e, at: isoTime(e.at) });

/** Writes an attempt as the response body, with its version as the ETag. */
function send(ctx: Context, status: number, attempt: Attempt, now: number): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('etag', `"${attempt.version}"`);
  ctx.body = attemptJson(attempt, now);
}

/** The version a write expects: from the body or an If-Match header (`5`, `"5"`, `W/"5"`; `*` is none). */
function expectedVersion(ctx: Context, fromBody: number | undefined): number | undefined {
  const header = ctx.get('if-match').trim();
  if (header === '' || header === '*') return fromBody;
  const match = /^(?:W\/)?"?([0-9]{1,10})"?$/.exec(header);
  const fromHeader = match ? Number(match[1]) : NaN;
  if (!Number.isInteger(fromHeader) || fromHeader < 1 || fromHeader > 2_147_483_647) {
    throw new ValidationError('If-Match: must be a version number, such as "5"', 'If-Match');
  }
  if (fromBody !== undefined && fromBody !== fromHeader) {
    throw new ValidationError(`version: the body says ${fromBody} but If-Match says ${fromHeader}`, 'version');
  }
  return fromHeader;
}

/**
 * The user an attempt is started for: the token's subject for a student (a different user_id is
 * refused), the body's user_id when open or for a service.
 */
function startingUser(ctx: Context, fromBody: string | undefined): string {
  const principal = principalOf(ctx);
  if (principal?.role === 'student') {
    if (fromBody !== undefined && fromBody !== principal.subject) throw new ForbiddenError('user_id must be the token subject');
    return principal.subject;
  }
  if (fromBody === undefined) throw new ValidationError('user_id: Required', 'user_id');
  return fromBody;
}

/** Registers start, read, progress, complete, abandon and the live controls under every prefix. */
export function registerSessionRoutes(
  router: Routes,
  service: SessionService,
  idempotency: IdempotencyStore,
  log: Logger,
  authenticate: Authenticator | null = null,
): void {
  const now = service.clock;
  /** The claim of a request on attempt :id (its record beside the attempt). */
  const attemptClaim = (ctx: Context & { params: Record<string, string> }, route: string) => {
    const id = sessionIdOf(ctx);
    return claimOf(ctx, `${ctx.method} ${route}`, (caller, key) => attemptRecordKey(id, caller, key));
  };
  /**
   * Runs a route's work at most once per Idempotency-Key (see runIdempotent); on attempt :id's
   * routes a 409 for a key still in use carries the attempt as it is now (`current`).
   */
  const once = (ctx: Context, claim: IdempotencyClaim | undefined, work: () => Promise<void>, current?: CurrentAttempt) =>
    runIdempotent(ctx, claim, idempotency, log, now, work, current);
  /** Attempt `id` as this request may see it, read only for a 409 IDEMPOTENCY_KEY_IN_USE (see SessionService.current). */
  const currentOf =
    (ctx: Context, id: string): CurrentAttempt =>
    () =>
      service.current(id, ownerOf(ctx), quizScopeOf(ctx));
  // open (no authenticator): no auth layer at all, rather than one that passes every request on
  const auth: Middleware[] = authenticate ? [requireAuth(authenticate)] : [];
  for (const prefix of SESSION_PREFIXES) {
    router.post(`${prefix}/start`, ...auth, async (ctx) => {
      authorize(ctx, 'start');
      const claim = claimOf(ctx, 'POST start', startRecordKey);
      await once(ctx, claim, () => start(ctx));
    });

    const start = async (ctx: Context) => {
      const body = parse(startBody, ctx.request.body);
      if (body.time_limit_seconds !== undefined && !maySetTimeLimit(ctx)) {
        throw new ForbiddenError('time_limit_seconds is set by the institution (quiz policy), not by the student');
      }
      const { attempt, created } = await service.start({
        userId: startingUser(ctx, body.user_id),
        quizId: body.quiz_id,
        timeLimitSeconds: body.time_limit_seconds,
        fromService: principalOf(ctx)?.role === 'service',
        ctx: eventContext(ctx),
      });
      ctx.set('location', `${prefix}/${attempt.id}`);
      send(ctx, created ? 201 : 200, attempt, now());
    };

    router.get(`${prefix}/:id`, ...auth, async (ctx) => {
      authorize(ctx, 'read');
      const id = sessionIdOf(ctx);
      send(ctx, 200, await service.get(id, ownerOf(ctx), quizScopeOf(ctx)), now());
    });

    const progress = async (ctx: Context & { params: Record<string, string> }) => {
      authorize(ctx, 'progress');
      const id = sessionIdOf(ctx);
      const body = parseProgressBody(ctx.request.body);
      const expected = expectedVersion(ctx, body.version);
      // with a key, the progress script checks it and keeps the outcome: no round trip of its own
      const claim = attemptClaim(ctx, 'progress');
      try {
        const attempt = await service.progress(
          id,
          {
            expectedVersion: expected,
            currentQuestion: body.currentQuestion,
            answers: body.answers,
            ctx: eventContext(ctx),
            idempotency: claim,
          },
          ownerOf(ctx),
        );
        send(ctx, 200, attempt, now());
      } catch (err) {
        if (!(err instanceof IdempotentReplay) || !claim) throw err;
        await replayProgress(ctx, err, claim, service, expected, log, (attempt, at) => send(ctx, 200, attempt, at), currentOf(ctx, id));
      }
    };
    router.patch(`${prefix}/:id/progress`, ...auth, progress);
    router.put(`${prefix}/:id/progress`, ...auth, progress);

    for (const target of ['complete', 'abandon'] as const) {
      router.post(`${prefix}/:id/${target}`, ...auth, async (ctx) => {
        authorize(ctx, target);
        const id = sessionIdOf(ctx);
        await once(
          ctx,
          attemptClaim(ctx, target),
          async () => {
            const body = parse(closeBody, ctx.request.body);
            send(ctx, 200, await service[target](id, expectedVersion(ctx, body.version), ownerOf(ctx), eventContext(ctx)), now());
          },
          currentOf(ctx, id),
        );
      });
    }

    /** A live control: 200 with the attempt, changed or (a repeat) as it was. */
    const control =
      (read: (ctx: Context) => { control: Control; reason?: string }) => async (ctx: Context & { params: Record<string, string> }) => {
        const { control: c, reason } = read(ctx);
        const id = sessionIdOf(ctx);
        await once(
          ctx,
          attemptClaim(ctx, c.action),
          async () => {
            const { attempt, changed } = await service.control(id, {
              control: c,
              quizScope: quizScopeOf(ctx),
              reason,
              ctx: eventContext(ctx),
            });
            if (changed) {
              const who = principalOf(ctx)?.subject ?? 'open mode';
              log.info(`attempt ${id}: ${c.action} by ${who}${reason === undefined ? '' : ` (${JSON.stringify(reason)})`}`);
            }
            send(ctx, 200, attempt, now());
          },
          currentOf(ctx, id),
        );
      };
    router.post(
      `${prefix}/:id/extend`,
      ...auth,
      control((ctx) => {
        authorize(ctx, 'extend');
        const body = parse(extendBody, ctx.request.body);
        if (body.reopen) authorize(ctx, 'reopen');
        return { control: { action: 'extend', seconds: body.seconds, from: body.from, reopen: body.reopen }, reason: body.reason };
      }),
    );
    router.get(`${prefix}/:id/events`, ...auth, async (ctx) => {
      authorize(ctx, 'events:read');
      const query = parse(eventsQuery, ctx.query, 'query');
      const id = sessionIdOf(ctx);
      const { events, nextAfter } = await service.events(id, query.after, query.limit, ownerOf(ctx), quizScopeOf(ctx));
      ctx.body = { events: events.map(eventJson), next_after: nextAfter };
    });

    router.post(`${prefix}/:id/events`, ...auth, async (ctx) => {
      authorize(ctx, 'events:write');
      const body = parse(clientEventsBody, ctx.request.body);
      const id = sessionIdOf(ctx);
      const events = body.events.map((e) => ({ type: e.type, data: { ...(e.data ?? {}), client_time: e.client_time } }));
      const lastSeq = await service.clientEvents(id, events, ownerOf(ctx), eventContext(ctx));
      ctx.status = 202;
      ctx.body = { accepted: events.length, last_seq: lastSeq };
    });

    for (const action of ['pause', 'resume'] as const) {
      router.post(
        `${prefix}/:id/${action}`,
        ...auth,
        control((ctx) => {
          authorize(ctx, action);
          return { control: { action }, reason: parse(pauseBody, ctx.request.body ?? {}).reason };
        }),
      );
    }
  }
}
