import type { Context } from 'koa';
import { ForbiddenError } from '../shared/errors';
import { principalOf, type Role } from './auth';

/*
 * Who may do what: the one table the routes consult. Open mode (no authentication configured)
 * allows everything. A student's actions are further restricted to their own attempts (ownerOf),
 * a proctor's to the quizzes of its `quiz_ids` claim, when it has one (quizScopeOf).
 */

/** What a request may ask to do. */
export const ACTIONS = [
  'start',
  'read',
  'progress',
  'complete',
  'abandon',
  'extend',
  'pause',
  'resume',
  'reopen',
  'events:read',
  'events:write',
  'list:quiz',
  'list:user',
  'policy:read',
  'policy:write',
  'settings:read',
  'settings:write',
] as const;
/** One of ACTIONS. */
export type Action = (typeof ACTIONS)[number];

const GRANTS: Record<Role, ReadonlySet<Action>> = {
  service: new Set<Action>(ACTIONS),
  proctor: new Set<Action>(['read', 'extend', 'pause', 'resume', 'reopen', 'events:read', 'list:quiz', 'policy:read', 'settings:read']),
  // list:user: a student only for themselves (the route checks the subject)
  student: new Set<Action>(['start', 'read', 'progress', 'complete', 'abandon', 'events:read', 'events:write', 'list:user', 'policy:read']),
};

/** Why a role may not: said in the 403. */
function refusal(role: Role, action: Action): string {
  if (action === 'policy:write') return 'Only a service may set a quiz policy';
  if (action === 'settings:write') return "Only a service may set a user's accommodations and overrides";
  if (action === 'settings:read') return 'A student may not read accommodations and overrides';
  if (action === 'list:quiz') return "Only a proctor or a service may list a quiz's attempts";
  if (action === 'list:user') return "Only a service, or the student themselves, may list a user's attempts";
  if (action === 'extend' || action === 'pause' || action === 'resume' || action === 'reopen')
    return 'Only a proctor or a service may extend, pause, resume or reopen an attempt';
  if (role === 'proctor') return 'A proctor may read attempts and run the live controls, not act for the student';
  return `This token may not ${action}`;
}

/** Throws 403 unless the request's role may do `action`. */
export function authorize(ctx: Context, action: Action): void {
  const principal = principalOf(ctx);
  if (!principal || GRANTS[principal.role].has(action)) return;
  throw new ForbiddenError(refusal(principal.role, action));
}

/** The quizzes a request may see: a proctor's `quiz_ids`, or undefined for every quiz. */
export function quizScopeOf(ctx: Context): readonly string[] | undefined {
  const principal = principalOf(ctx);
  return principal?.role === 'proctor' ? principal.quizIds : undefined;
}

/** True when the request may give a start its own time limit: a service, or open mode. */
export function maySetTimeLimit(ctx: Context): boolean {
  const principal = principalOf(ctx);
  return !principal || principal.role === 'service';
}
