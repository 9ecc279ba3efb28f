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
  /** Apply the attempt's deadline when it is due (deadline.ts dueAt: the deadline, or the end of the grace), if it still is. */
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
 * (the window is named by when the attempt became dirty), one expiry job per attempt and due time
 * (an extension or a resume schedules a new one; the old one finds nothing due).
 */
export const jobIds = {
  persist: (sessionId: string, dirtySince: number) => `persist-${sessionId}-${dirtySince}`,
  expire: (sessionId: string, dueAt: number) => `expire-${sessionId}-${dueAt}`,
};

/** The id of the repeatable sweep's job scheduler. */
export const SWEEP_SCHEDULER_ID: JobName = 'sweep';
