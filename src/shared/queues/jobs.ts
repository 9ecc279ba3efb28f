/** The queues: write-behind, and attempt lifecycle (expiry at the deadline, periodic sweeps). */
export const QUEUES = {
  persist: 'persist-snapshot',
  lifecycle: 'session-lifecycle',
} as const;

/** A queue name. */
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Every job name tied to its payload: the one contract between producers and consumers. */
export interface JobPayloads {
  /** Write the attempt's current Redis state to PostgreSQL (the 30-second write-behind). */
  'persist-snapshot': { sessionId: string; dirtySince: number };
  /** Close the attempt at its deadline, if it is still open. */
  'expire-session': { sessionId: string; expiresAt: number };
  /** The safety net: expire overdue, abandon idle, persist stragglers. */
  sweep: { scheduledBy: 'scheduler' };
}

/** A job name. */
export type JobName = keyof JobPayloads;

/** Which queue carries each job. */
export const QUEUE_OF: { [J in JobName]: QueueName } = {
  'persist-snapshot': QUEUES.persist,
  'expire-session': QUEUES.lifecycle,
  sweep: QUEUES.lifecycle,
};

/**
 * Deterministic job ids, so a duplicate add is dropped: one persist job per attempt per window
 * (the window is named by when the attempt became dirty), one expiry job per attempt.
 */
export const jobIds = {
  persist: (sessionId: string, dirtySince: number) => `persist-${sessionId}-${dirtySince}`,
  expire: (sessionId: string) => `expire-${sessionId}`,
};

/** The id of the repeatable sweep's job scheduler. */
export const SWEEP_SCHEDULER_ID: JobName = 'sweep';
