import type { Routes } from '../routeTable';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { attemptJson, type Attempt } from '../../shared/domain/attempt';
import { presentAt, timeRemaining } from '../../shared/domain/deadline';
import { isoTime } from '../../shared/domain/isoTime';
import { ForbiddenError, ValidationError } from '../../shared/errors';
import type { SessionService } from '../../shared/sessionService';
import { attemptFeed, quizFeed } from '../../shared/store/channels';
import { ownerOf, requireAuth, type Authenticator } from '../auth';
import { authorize, quizScopeOf } from '../permissions';
import { quizIdParam } from '../schemas/quiz';
import type { SseStream, StreamHub } from '../streamHub';
import { parse } from '../validate';
import { SESSION_PREFIXES, sessionIdOf } from './sessions';

/** GET …/:id/stream query: where to resume (instead of the Last-Event-ID header, for clients that cannot set it). */
export const attemptStreamQuery = z.strictObject({
  last_event_id: z.string().max(20).optional().meta({ description: 'The last version the client has (as Last-Event-ID)' }),
});

/** GET /api/quizzes/:quiz_id/stream takes no query. */
export const quizStreamQuery = z.strictObject({});

/** The version a reconnecting client has: Last-Event-ID (the attempt event's id), else the query's; 0 for none. */
function resumeFrom(ctx: Context): number {
  const query = parse(attemptStreamQuery, ctx.query, 'query');
  const given = ctx.get('last-event-id').trim() || query.last_event_id;
  if (given === undefined || given === '') return 0;
  const version = /^[0-9]{1,10}$/.test(given) ? Number(given) : NaN;
  if (!Number.isSafeInteger(version))
    throw new ValidationError('Last-Event-ID: must be a version the stream sent, such as 5', 'Last-Event-ID');
  return version;
}

/** The `time` event: the seconds left and the server's clock, so a client corrects its own. */
function timeEvent(attempt: Attempt, now: number): string {
  const remaining = timeRemaining(presentAt(attempt, now), now);
  return `{"time_remaining":${remaining === null ? 'null' : remaining},"server_time":"${isoTime(now)}"}`;
}

/**
 * Server-Sent Events: an attempt's changes (`…/:id/stream`, to whoever may read it) and a quiz's
 * (`/api/quizzes/:quiz_id/stream`, to a proctor of the quiz or a service).
 */
export function registerStreamRoutes(
  router: Routes,
  service: SessionService,
  hub: StreamHub,
  authenticate: Authenticator | null = null,
): void {
  const auth: Middleware[] = authenticate ? [requireAuth(authenticate)] : [];
  const now = service.clock;
  for (const prefix of SESSION_PREFIXES) {
    router.get(`${prefix}/:id/stream`, ...auth, async (ctx) => {
      authorize(ctx, 'read');
      const id = sessionIdOf(ctx);
      let sent = resumeFrom(ctx);
      let latest: Attempt;
      const send = (stream: SseStream, attempt: Attempt) => {
        stream.send('attempt', attemptJson(attempt, now()), String(attempt.version));
        sent = attempt.version;
      };
      await hub.serve(ctx, {
        feed: attemptFeed(id),
        prepare: async () => {
          latest = await service.get(id, ownerOf(ctx), quizScopeOf(ctx));
        },
        open: (stream) => {
          // a client resuming at the current version has it: only the clock
          if (latest.version > sent) send(stream, latest);
          stream.send('time', timeEvent(latest, now()));
        },
        change: (stream, attempt) => {
          // versions only grow: an older message (delivered after the first read) is no news
          if (attempt.version <= latest.version) return;
          latest = attempt;
          if (attempt.version > sent) send(stream, attempt);
        },
        tick: (stream) => stream.send('time', timeEvent(latest, now())),
      });
    });
  }

  router.get('/api/quizzes/:quiz_id/stream', ...auth, async (ctx) => {
    authorize(ctx, 'list:quiz');
    const quizId = parse(quizIdParam, ctx.params.quiz_id, 'path');
    const scope = quizScopeOf(ctx);
    if (scope !== undefined && !scope.includes(quizId)) throw new ForbiddenError('This quiz is outside the token’s quiz_ids');
    parse(quizStreamQuery, ctx.query, 'query');
    await hub.serve(ctx, {
      feed: quizFeed(quizId),
      prepare: async () => undefined,
      open: (stream) => stream.comment('attempts of this quiz follow as they change'),
      change: (stream, attempt) => stream.send('attempt', attemptJson(attempt, now()), `${attempt.id}.${attempt.version}`),
      clientEvent: (stream, message) => stream.send('client_event', message),
      tick: (stream) => stream.comment('keep-alive'),
    });
  });
}
