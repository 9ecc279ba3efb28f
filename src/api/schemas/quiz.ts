import { z } from 'zod';
import { OVERDUE_HANDLINGS } from '../../shared/domain/policy';
import { LIMITS } from '../../shared/limits';
import { text } from './session';

/** A quiz id in a path: id text, as in a start body. */
export const quizIdParam = text('quiz_id');

/** A user id in a path: id text, as in a start body. */
export const userIdParam = text('user_id');

const isoTime = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 time, such as 2026-12-01T09:00:00Z' });

/** PUT /api/quizzes/:quiz_id/policy: the whole policy (a PUT replaces it); unknown fields are refused. */
export const policyBody = z
  .strictObject({
    time_limit_seconds: z.number().int().min(0).max(LIMITS.timeLimitSeconds).meta({ description: '0 means untimed' }),
    max_attempts: z.number().int().min(1).max(1000).nullable().default(null).meta({ description: 'null: unlimited' }),
    overdue_handling: z.enum(OVERDUE_HANDLINGS).default('expire'),
    grace_period_seconds: z.number().int().min(1).max(LIMITS.timeLimitSeconds).nullable().default(null),
    opens_at: isoTime.nullable().default(null),
    closes_at: isoTime.nullable().default(null),
  })
  .superRefine((p, ctx) => {
    if (p.overdue_handling === 'graceperiod' && p.grace_period_seconds === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['grace_period_seconds'],
        message: 'grace_period_seconds is required with overdue_handling graceperiod',
      });
    }
    if (p.overdue_handling !== 'graceperiod' && p.grace_period_seconds !== null) {
      ctx.addIssue({
        code: 'custom',
        path: ['grace_period_seconds'],
        message: 'grace_period_seconds is only for overdue_handling graceperiod',
      });
    }
    if (p.opens_at !== null && p.closes_at !== null && Date.parse(p.opens_at) >= Date.parse(p.closes_at)) {
      ctx.addIssue({ code: 'custom', path: ['closes_at'], message: 'closes_at must be after opens_at' });
    }
  });

/** A quiz policy as the API returns it. */
export const policyResponse = z.object({
  quiz_id: z.string(),
  time_limit_seconds: z.number().int().min(0),
  max_attempts: z.number().int().min(1).nullable(),
  overdue_handling: z.enum(OVERDUE_HANDLINGS),
  grace_period_seconds: z.number().int().min(1).nullable(),
  opens_at: z.iso.datetime().nullable(),
  closes_at: z.iso.datetime().nullable(),
  updated_at: z.iso.datetime(),
});

/** PUT /api/users/:user_id/accommodations: more time on every timed quiz; unknown fields are refused. */
export const accommodationBody = z.strictObject({
  time_multiplier: z.number().min(1).max(5).default(1).meta({ description: 'The time limit is multiplied by this (1 to 5), then rounded' }),
  extra_time_seconds: z.number().int().min(0).max(LIMITS.timeLimitSeconds).default(0).meta({ description: 'Then this is added' }),
});

/** An accommodation as the API returns it. */
export const accommodationResponse = z.object({ user_id: z.string(), time_multiplier: z.number(), extra_time_seconds: z.number().int() });

/** PUT /api/quizzes/:quiz_id/overrides/:user_id: at least one field; unknown fields are refused. */
export const overrideBody = z
  .strictObject({
    time_limit_seconds: z.number().int().min(0).max(LIMITS.timeLimitSeconds).nullable().default(null),
    extra_attempts: z.number().int().min(0).max(1000).nullable().default(null),
    closes_at: isoTime.nullable().default(null),
  })
  .refine((o) => o.time_limit_seconds !== null || o.extra_attempts !== null || o.closes_at !== null, {
    message: 'an override needs time_limit_seconds, extra_attempts or closes_at',
    path: ['body'],
  });

/** An override as the API returns it. */
export const overrideResponse = z.object({
  quiz_id: z.string(),
  user_id: z.string(),
  time_limit_seconds: z.number().int().min(0).nullable(),
  extra_attempts: z.number().int().min(0).nullable(),
  closes_at: z.iso.datetime().nullable(),
});
