import type { Attempt } from '../shared/domain/attempt';
import type { AttemptEvent } from '../shared/domain/events';
import { ServiceUnavailableError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import type { SessionRepository } from '../shared/store/sessionRepository';
import { writeSnapshots, type HeldSnapshot } from '../shared/store/snapshotWriter';
import type { StoredAttempt } from '../shared/store/sessionCodec';
import type { MarkResult, SessionStore } from '../shared/store/sessionStore';
import { PERSIST_BATCH_MAX, PERSIST_LINGER_MS } from '../shared/domain/writeBehind';
import { shardOf, shardOfBucket } from '../shared/queues/jobs';
import { keyLayout } from '../shared/store/keys';

/** What happened to one attempt in a flush. */
export type PersistOutcome = 'written' | 'current' | 'gone' | 'redirtied';

/** One attempt of a batch, as the batch learns about it. */
interface BatchRecord {
  id: string;
  /** Its Redis copy, with its events not yet in PostgreSQL; null when the key is gone. */
  stored: (StoredAttempt & { events: AttemptEvent[] }) | null;
  /** What PostgreSQL holds after the upsert, when it holds this attempt. */
  held?: HeldSnapshot;
  /** Why PostgreSQL refused it. */
  refused?: Error;
  /** The mark after the upsert. */
  mark?: MarkResult;
}

interface Waiter {
  resolve: (o: PersistOutcome) => void;
  reject: (e: unknown) => void;
}

/** Observers of the write-behind, for metrics. */
export interface PersisterEvents {
  /** An attempt reached PostgreSQL `lagMs` after its first unpersisted change. */
  persisted?(lagMs: number): void;
  /** A newer write landed during the persist: the attempt needs another window. */
  redirtied?(sessionId: string, dirtySince: number): Promise<void>;
  /** These events are durable in PostgreSQL (SessionHooks.eventsDurable); a failure fails the batch, before the mark. */
  eventsDurable?(attempt: Attempt, events: readonly AttemptEvent[]): Promise<void>;
}

/**
 * The write-behind: collects the attempts that jobs ask to persist and writes them in batches —
 * one pipelined Redis read of their current state, one multi-row PostgreSQL upsert guarded by
 * version, one pipelined mark. A job's promise settles only when its attempt's batch is written,
 * so a job completes only after PostgreSQL has the data (at-least-once).
 */
export class SnapshotPersister {
  private pending = new Map<string, Waiter[]>();
  private timer: NodeJS.Timeout | null = null;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly store: SessionStore,
    private readonly repo: SessionRepository,
    private readonly log: Logger,
    private readonly events: PersisterEvents = {},
    private readonly options: { maxBatch: number; lingerMs: number } = { maxBatch: PERSIST_BATCH_MAX, lingerMs: PERSIST_LINGER_MS },
    private readonly clock: () => number = Date.now,
  ) {}

  /** Persists the attempt's current state in the next batch. */
  persist(sessionId: string): Promise<PersistOutcome> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(sessionId);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(sessionId, [{ resolve, reject }]);
      if (this.pending.size >= this.options.maxBatch) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), this.options.lingerMs);
    });
  }

  /** Writes everything pending now and waits for every batch under way. */
  async drain(): Promise<void> {
    this.flushNow();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const run = this.write([...batch.keys()]).then(
      (outcomes) =>
        batch.forEach((waiters, id) => {
          const outcome = outcomes.get(id) ?? 'gone';
          waiters.forEach((w) => (outcome instanceof Error ? w.reject(outcome) : w.resolve(outcome)));
        }),
      (err) => batch.forEach((waiters) => waiters.forEach((w) => w.reject(err))),
    );
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  /**
   * Persists these attempts as one batch; returns what happened to each, or the error of an
   * attempt PostgreSQL refused (that attempt stays dirty; the others are written).
   */
  async write(ids: readonly string[]): Promise<Map<string, PersistOutcome | Error>> {
    const records: BatchRecord[] = (await this.store.getMany(ids)).map((stored, i) => ({ id: ids[i], stored }));
    // the events first, in one statement (each once), so a snapshot never reaches PostgreSQL
    // without the events that led to it
    await this.repo.insertEvents(
      records.flatMap((r) => (r.stored ? r.stored.events.map((event) => ({ attempt: r.stored!.attempt, event })) : [])),
    );
    // outbox: what they announce is enqueued before the mark clears them, so a failed enqueue
    // fails the batch and the persist is retried
    const { eventsDurable } = this.events;
    if (eventsDurable) {
      await Promise.all(records.map((r) => (r.stored?.events.length ? eventsDurable(r.stored.attempt, r.stored.events) : undefined)));
    }
    const { held, refused } = await this.upsert(records.flatMap((r) => (r.stored ? [r.stored.attempt] : [])));
    for (const r of records) {
      r.held = held.get(r.id);
      r.refused = refused.get(r.id);
    }
    const now = this.clock();
    // marked: what PostgreSQL now holds, and the keys that vanished (evicted, deleted), which have
    // nothing left to write and leave the dirty set
    const marked = records.filter((r) => r.held !== undefined || r.stored === null);
    const marks = await this.store.markPersistedMany(
      marked.map((r) => ({
        id: r.id,
        version: r.held?.attempt.version ?? null,
        eventsThrough: r.stored?.events.length ? r.stored.events[r.stored.events.length - 1].seq : undefined,
      })),
      now,
    );
    marked.forEach((r, i) => (r.mark = marks[i]));
    const outcomes = new Map<string, PersistOutcome | Error>();
    for (const r of records) outcomes.set(r.id, await this.outcomeOf(r, now));
    return outcomes;
  }

  /** What happened to one attempt of a batch; reports its lag and reschedules it when re-dirtied. */
  private async outcomeOf(r: BatchRecord, now: number): Promise<PersistOutcome | Error> {
    if (r.refused) return r.refused;
    if (!r.stored) return 'gone';
    if (r.held?.wrote && r.stored.dirtySince !== null) this.events.persisted?.(now - r.stored.dirtySince);
    if (r.held && r.mark !== 'DIRTY') return r.held.wrote ? 'written' : 'current';
    // a newer write landed meanwhile: it needs another window
    await this.events.redirtied?.(r.id, now).catch((err) => this.log.warn(`rescheduling persist of ${r.id} failed: ${String(err)}`));
    return 'redirtied';
  }

  /**
   * One multi-row upsert; when PostgreSQL refuses the batch for its data (not for being away), the
   * rows are written one by one, so one bad row cannot hold back the others.
   */
  private async upsert(attempts: Attempt[]): Promise<{ held: Map<string, HeldSnapshot>; refused: Map<string, Error> }> {
    const refused = new Map<string, Error>();
    try {
      return { held: await writeSnapshots(this.store, this.repo, attempts, this.clock), refused };
    } catch (err) {
      if (err instanceof ServiceUnavailableError || attempts.length <= 1) throw err;
    }
    const held = new Map<string, HeldSnapshot>();
    await Promise.all(
      attempts.map(async (attempt) => {
        try {
          for (const [id, h] of await writeSnapshots(this.store, this.repo, [attempt], this.clock)) held.set(id, h);
        } catch (err) {
          if (err instanceof ServiceUnavailableError) throw err;
          this.log.error(`attempt ${attempt.id} v${attempt.version} cannot be written to PostgreSQL: ${(err as Error).message}`);
          refused.set(attempt.id, err as Error);
        }
      }),
    );
    return { held, refused };
  }

  /**
   * Writes every attempt of queue shard `shard` (of `shards`) dirty since at or before `until`: a
   * `persist-window` job's work. In the bucketed layout only the shard's buckets' dirty sets are
   * read. Returns how many were written.
   */
  async flushWindow(until: number, shard: number, shards: number, batchSize: number): Promise<number> {
    let written = 0;
    await this.store.eachDirty(
      until,
      (id) => shardOf(id, shards) === shard,
      (_set, bucket) => keyLayout().dirtySets().length === 1 || shardOfBucket(bucket, shards) === shard,
      batchSize,
      async (ids) => {
        const outcomes = await this.write(ids);
        const failed = [...outcomes.values()].find((o): o is Error => o instanceof Error);
        written += [...outcomes.values()].filter((o) => o === 'written').length;
        // PostgreSQL refused one: the job fails and is retried (the others are written)
        if (failed) throw failed;
      },
    );
    return written;
  }

  /**
   * Persists every attempt that is dirty now, in batches, until done or `deadline` (epoch ms).
   * Used on shutdown and by the sweep. Returns how many were written.
   */
  async flushDirty(olderThan: number, deadline: number, batchSize: number): Promise<number> {
    let total = 0;
    let cursorTime = olderThan;
    while (this.clock() < deadline) {
      const ids = await this.store.dirtySince(cursorTime, batchSize);
      if (ids.length === 0) break;
      await this.store.touch(ids);
      const outcomes = await this.write(ids);
      total += [...outcomes.values()].filter((o) => o === 'written').length;
      if (ids.length < batchSize) break;
      // attempts re-dirtied by this flush get a new score (now); the next page starts after them
      cursorTime = Math.min(cursorTime, this.clock() - 1);
    }
    return total;
  }
}
