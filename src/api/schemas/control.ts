import { z } from 'zod';
import { EXTEND_FROM, MAX_EXTENSION_SECONDS } from '../../shared/domain/control';
import { CLIENT_EVENT_TYPES, MAX_CLIENT_EVENTS } from '../../shared/domain/events';
import { LIMITS } from '../../shared/limits';

const reason = z
  .string()
  .min(1, 'reason must not be empty')
  .max(LIMITS.reasonLength, `reason must be at most ${LIMITS.reasonLength} characters`)
  .regex(/^[^\u0000-\u0008\u000b-\u001f\u007f]+$/, 'reason must not contain control characters')
  .optional()
  .meta({ description: 'Why (kept with the action: the fire alarm, the medical break)' });

/** POST .../:id/extend; unknown fields are refused. */
export const extendBody = z.strictObject({
  seconds: z
    .number()
    .int()
    .min(1)
    .max(MAX_EXTENSION_SECONDS)
    .meta({ description: `Seconds to add, 1 to ${MAX_EXTENSION_SECONDS}` }),
  from: z.enum(EXTEND_FROM).default('deadline').meta({
    description:
      'deadline: the current deadline moves later by `seconds`; now: the deadline becomes now + `seconds` (for a paused attempt, its pause), never earlier than it was',
  }),
  reason,
  reopen: z
    .boolean()
    .default(false)
    .meta({ description: 'Bring an attempt that expired by time back in progress, with its answers and the new deadline' }),
});

/** POST .../:id/pause and .../:id/resume; unknown fields are refused. */
export const pauseBody = z.strictObject({ reason });

/** GET .../:id/events query: after a seq, at most limit. */
export const eventsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).max(LIMITS.version).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** POST .../:id/events: a client's events; unknown fields are refused. */
export const clientEventsBody = z.strictObject({
  events: z
    .array(
      z.strictObject({
        type: z.enum(CLIENT_EVENT_TYPES),
        client_time: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 time, such as 2026-12-01T09:00:00Z' }),
        data: z
          .record(z.string().max(LIMITS.idLength), z.unknown())
          .refine((d) => !Object.prototype.hasOwnProperty.call(d, '__proto__'), 'data must not hold __proto__')
          .refine(
            (d) => JSON.stringify(d).length <= LIMITS.clientEventDataBytes,
            `data must be at most ${LIMITS.clientEventDataBytes} bytes of JSON`,
          )
          .optional(),
      }),
    )
    .min(1)
    .max(MAX_CLIENT_EVENTS),
});
