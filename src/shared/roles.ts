/** The roles a process runs until stopped (src/main.ts says what each starts); `all` is for development. */
export const SERVING_ROLES = ['api', 'persist-worker', 'lifecycle-worker', 'webhook-worker', 'all'] as const;
/** A serving role. */
export type ServingRole = (typeof SERVING_ROLES)[number];
/** Every process role: the serving ones, and `migrate`, which runs once and exits. */
export const ROLES = [...SERVING_ROLES, 'migrate'] as const;
/** A process role. */
export type Role = (typeof ROLES)[number];
