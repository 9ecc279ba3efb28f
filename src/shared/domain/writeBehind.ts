/*
 * The write-behind window: an attempt's changes reach PostgreSQL at most PERSIST_DELAY_SECONDS after
 * its first change not yet there ("dirty since"). One persist job per window, named by when the
 * window opened; a write during a persist opens a new window. An attempt dirty for longer than the
 * window plus STRAGGLER_GRACE_MS has lost its job (or the job is failing), and the sweep persists it.
 * Closing an attempt (complete, abandon, expire) does not wait for the window: it is written at once.
 */

/** How long past its window an attempt may stay dirty before the sweep persists it itself. */
export const STRAGGLER_GRACE_MS = 5_000;

/** Most attempts one persist batch writes (one pipelined read, one multi-row upsert, one pipelined mark). */
export const PERSIST_BATCH_MAX = 250;
/** How long the persister waits for more jobs before writing a batch that is not full. */
export const PERSIST_LINGER_MS = 5;

/** When the window of an attempt dirty since `dirtySince` closes: its persist job's due time. */
export function persistDueAt(dirtySince: number, delaySeconds: number): number {
  return dirtySince + delaySeconds * 1000;
}

/** The granularity of the shared persist jobs: one per queue shard per this many ms at most. */
export const PERSIST_TICK_MS = 1000;

/**
 * The shared persist job an attempt dirty since `dirtySince` is written by: it runs at the first
 * tick (PERSIST_TICK_MS on the clock) at or after the attempt's window closes (persistDueAt) and
 * writes every attempt of its queue shard dirty since at or before `dirtyBefore` — each one
 * PERSIST_DELAY_SECONDS after its first change, at most a tick late, as a job per attempt would,
 * but one job (and one enqueue) per shard per tick instead of one per attempt.
 */
export function persistTick(dirtySince: number, delaySeconds: number): { runAt: number; dirtyBefore: number } {
  const runAt = Math.ceil(persistDueAt(dirtySince, delaySeconds) / PERSIST_TICK_MS) * PERSIST_TICK_MS;
  return { runAt, dirtyBefore: runAt - delaySeconds * 1000 };
}

/** Attempts dirty since at or before this are stragglers at `now`. */
export function stragglersBefore(now: number, delaySeconds: number): number {
  return now - delaySeconds * 1000 - STRAGGLER_GRACE_MS;
}
