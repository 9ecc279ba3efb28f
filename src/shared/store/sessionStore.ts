import type { ChainableCommander } from 'ioredis';
import { isCluster, type RedisClient } from '../redis';
import { Command, ReplyError } from 'ioredis';
import type { Attempt } from '../domain/attempt';
import type { Control } from '../domain/control';
import { contextFragment, SYSTEM_CONTEXT, type AttemptEvent, type EventContext } from '../domain/events';
import { ServiceUnavailableError } from '../errors';
import { isoTime } from '../domain/isoTime';
import { pubSubOf, quizChannelOf } from './channels';
import { dirtySetOf, eventsKey, keyLayout, sessionKey, SINGLE_DIRTY_SET_KEY } from './keys';
import { defineSessionCommands } from './sessionCommands';
import { scriptRecordPrefix, type IdempotencyClaim } from './idempotencyStore';
import { decodeHash, decodeRendered, encodeAttempt, isSessionHash, META_FIELDS, RENDER_FIELDS, type StoredAttempt } from './sessionCodec';

export { sessionKey, eventsKey, dirtySetOf } from './keys';
/** The single layout's dirty set (keys.ts): attempts with changes not yet in PostgreSQL, scored by when they became dirty. */
export const DIRTY_SET_KEY = SINGLE_DIRTY_SET_KEY;

/** What a write script answered. */
export type WriteCode =
  | 'OK'
  | 'MISS'
  | 'FORBIDDEN'
  | 'CONFLICT'
  | 'COMPLETED'
  | 'CLOSED'
  | 'EXPIRED'
  | 'PAUSED'
  | 'OVERDUE'
  | 'UNCHANGED'
  | 'UNTIMED'
  | 'PAST'
  | 'TOO_MANY'
  | 'ALREADY'
  | 'NOOP';

/**
 * The outcome of a write: its code, the attempt after it, whether it made the attempt dirty, and
 * whether the deadline moved it in the same step (deadline.ts).
 */
export type WriteResult =
  | { code: 'MISS' }
  | { code: 'FORBIDDEN' }
  | { code: 'REPLAY'; record: string }
  | { code: Exclude<WriteCode, 'MISS' | 'FORBIDDEN'>; becameDirty: boolean; movedByDeadline: boolean; stored: StoredAttempt };

/** A write result when the caller acts for nobody in particular (a worker): never FORBIDDEN. */
export type UnownedResult = Exclude<WriteResult, { code: 'FORBIDDEN' } | { code: 'REPLAY' }>;

/** A write result that found the attempt in Redis, and it was the caller's. */
export type FoundResult = Exclude<WriteResult, { code: 'MISS' } | { code: 'FORBIDDEN' } | { code: 'REPLAY' }>;

/** What marking a persisted attempt found (markPersistedMany). */
export type MarkResult = 'CLEAN' | 'DIRTY' | 'GONE';

/** The guard a close applies: none (the student asks), the deadline, or idleness. */
export type CloseGuard = { kind: 'none' } | { kind: 'deadline' } | { kind: 'idle'; idleMs: number };

/** What a close asks for: the student's target status, or what the deadline or idleness does. */
export type CloseRequest =
  | { guard: { kind: 'none' }; target: 'completed' | 'abandoned' }
  | { guard: { kind: 'deadline' } }
  | { guard: { kind: 'idle'; idleMs: number } };

type ScriptReply = [string, number?, string[]?, number?, string?];

interface SessionCommands {
  sessionRebase(key: string, dirtyKey: string, ...args: string[]): Promise<ScriptReply>;
  sessionRead(key: string): Promise<ScriptReply>;
  sessionProgress(key: string, dirtyKey: string, eventsKey: string, recordKey: string, ...args: string[]): Promise<ScriptReply>;
  sessionClose(key: string, dirtyKey: string, eventsKey: string, ...args: string[]): Promise<ScriptReply>;
  sessionControl(key: string, dirtyKey: string, eventsKey: string, ...args: string[]): Promise<ScriptReply>;
  sessionNote(key: string, dirtyKey: string, eventsKey: string, ...args: string[]): Promise<ScriptReply>;
  sessionFill(key: string, eventsKey: string, ...args: string[]): Promise<number>;
  sessionMarkPersisted(key: string, dirtyKey: string, eventsKey: string, ...args: string[]): Promise<MarkResult>;
}

/** The write scripts whose outcome a client is told (and so may wait for replicas). */
type AcknowledgedCommand = 'sessionProgress' | 'sessionClose' | 'sessionControl' | 'sessionNote';

/** Replies that mean Redis cannot take the command now (as opposed to a bug in a script). */
/** Where a read's HMGET (RENDER_FIELDS) has the version, and the answers' text. */
const VERSION_AT = META_FIELDS.indexOf('version');
const ANSWERS_AT = META_FIELDS.length;

const TRANSIENT_REPLY = /^(OOM|LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MOVED|ASK)\b/;

/** A cluster's redirection: the command did not run (the slot moved, a failover); it may be sent again. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/;
/** Tries of an acknowledged write whose pipeline was redirected (ioredis refreshes the slots meanwhile). */
const REDIRECT_TRIES = 4;

/** The field names of a read's HMGET in RESP, built once (RENDER_FIELDS). */
const RENDER_FIELDS_RESP = RENDER_FIELDS.map((f) => `$${Buffer.byteLength(f)}\r\n${f}\r\n`).join('');
const READ_HEAD = `*${RENDER_FIELDS.length + 2}\r\n$5\r\nHMGET\r\n`;

/**
 * A read's `HMGET <key> <RENDER_FIELDS...>`, written from its field list's RESP built once: the
 * field names are the same on every read, and ioredis' own command building copied, checked and
 * encoded all 22 of them each time (about a tenth of the API's CPU per read). ioredis itself
 * does the same for EVALSHA (its Script command overrides toWritable). The command carries the
 * key alone as its argument, which is all a cluster's slot lookup reads.
 */
class RenderReadCommand extends Command {
  constructor(key: string) {
    super('hmget', [key], { replyEncoding: 'utf8' });
  }

  override toWritable(): string {
    const key = this.args[0] as string;
    return `${READ_HEAD}$${Buffer.byteLength(key)}\r\n${key}\r\n${RENDER_FIELDS_RESP}`;
  }
}

/** Turns a connection failure or timeout into a 503; a script error stays a bug (500). */
function unavailable(err: unknown): never {
  if (err instanceof ReplyError && !TRANSIENT_REPLY.test((err as Error).message)) throw err;
  throw new ServiceUnavailableError('redis');
}

/** The live state of attempts in Redis: one hash per attempt, every write one atomic script. */
export class SessionStore {
  private readonly redis: RedisClient & SessionCommands;

  constructor(
    redis: RedisClient,
    private readonly ttlSeconds: number,
    private readonly durability: { waitReplicas: number; waitTimeoutMs: number } = { waitReplicas: 0, waitTimeoutMs: 0 },
  ) {
    this.redis = redis as RedisClient & SessionCommands;
    defineSessionCommands(redis);
  }

  /**
   * Runs a write script the API acknowledges to a client; with REDIS_WAIT_REPLICAS, WAIT follows
   * it in the same pipeline (one round trip), and fewer replicas than asked within the timeout is
   * a 503: the write may have applied, and the client's retry finds out by its version.
   */
  private async acknowledged(command: AcknowledgedCommand, args: string[], attempt = 1): Promise<ScriptReply> {
    const { waitReplicas, waitTimeoutMs } = this.durability;
    if (waitReplicas === 0) return (this.redis[command] as (...a: string[]) => Promise<ScriptReply>)(...args).catch(unavailable);
    const pipeline = this.redis.pipeline() as unknown as Record<AcknowledgedCommand, (...a: string[]) => void> & {
      wait(replicas: number, timeoutMs: number): void;
      exec(): Promise<Array<[Error | null, unknown]> | null>;
    };
    pipeline[command](...args);
    pipeline.wait(waitReplicas, waitTimeoutMs);
    const [[scriptErr, reply], [waitErr, replicas]] = (await pipeline.exec().catch(unavailable)) ?? [];
    // on a cluster ioredis follows a redirection only when every command of a pipeline got it, and
    // WAIT (no key) does not: the script did not run, so it is sent again once the slots are known
    if (scriptErr && REDIRECTED.test(scriptErr.message) && attempt < REDIRECT_TRIES) {
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      return this.acknowledged(command, args, attempt + 1);
    }
    if (scriptErr) unavailable(scriptErr);
    if (waitErr) unavailable(waitErr);
    if ((replicas as number) < waitReplicas) throw new ServiceUnavailableError('redis');
    return reply as ScriptReply;
  }

  /**
   * The cached attempt for a response, or null on a miss: one HMGET of RENDER_FIELDS, whose last
   * value is the answers' JSON text as it is sent (sessionCodec.ts). A hash of the earlier layout
   * (no answers field) is converted and read by the read script, once.
   */
  async read(id: string): Promise<StoredAttempt | null> {
    const key = sessionKey(id);
    const values = await (this.redis.sendCommand(new RenderReadCommand(key)) as Promise<Array<string | null>>).catch(unavailable);
    if (values[VERSION_AT] === null) return null;
    // a field a hash cached before it existed lacks reads as '' (as render() gives it)
    if (values[ANSWERS_AT] !== null) return decodeRendered(values.map((v) => v ?? ''));
    const reply = await this.redis.sessionRead(key).catch(unavailable);
    return reply[0] === 'MISS' ? null : decodeRendered(reply[2] ?? []);
  }

  /** The cached attempt with its answers as separate entries, or null on a miss. */
  async get(id: string): Promise<StoredAttempt | null> {
    const hash = await this.redis.hgetall(sessionKey(id)).catch(unavailable);
    return isSessionHash(hash) ? decodeHash(hash) : null;
  }

  /**
   * Caches an attempt unless the cached copy is as new or newer; true when written. `announce`
   * publishes it as a change (a new attempt: the quiz's stream shows it).
   */
  async fill(attempt: Attempt, dirtySince: number | null = null, announce = false): Promise<boolean> {
    const fields = encodeAttempt(attempt, dirtySince);
    const written = await this.redis
      .sessionFill(
        sessionKey(attempt.id),
        eventsKey(attempt.id),
        String(this.ttlSeconds),
        String(attempt.version),
        announce ? '1' : '',
        ...fields,
      )
      .catch(unavailable);
    return written === 1;
  }

  /** Applies answers and/or a current question, checking version and deadline atomically. */
  async progress(
    id: string,
    now: number,
    change: {
      expectedVersion?: number;
      currentQuestion?: number;
      answers: ReadonlyMap<string, string>;
      maxAnswers: number;
      owner?: string;
      /** The request's idempotency key: checked, and the outcome kept, in the same step. */
      idempotency?: IdempotencyClaim;
    },
    ctx: EventContext = SYSTEM_CONTEXT,
  ): Promise<WriteResult> {
    const claim = change.idempotency;
    const args = [
      String(now),
      String(this.ttlSeconds),
      versionArg(change.expectedVersion),
      change.owner ?? '',
      contextFragment(ctx),
      change.currentQuestion === undefined ? '' : String(change.currentQuestion),
      String(change.maxAnswers),
      claim ? scriptRecordPrefix(claim, ctx.requestId, now) : '',
    ];
    for (const [questionId, answer] of change.answers) args.push(JSON.stringify(questionId), answer);
    // without a key, KEYS[4] is not read (the attempt's own key stands in, in its slot)
    const recordKey = claim ? claim.recordKey : sessionKey(id);
    const reply = await this.acknowledged('sessionProgress', [sessionKey(id), dirtySetOf(id), eventsKey(id), recordKey, ...args]);
    if (reply[0] === 'REPLAY') return { code: 'REPLAY', record: reply[4] ?? '' };
    return toResult(reply);
  }

  /**
   * Closes an attempt as asked (see CloseRequest). With `owner`, only that user's attempt (else
   * FORBIDDEN); without, any attempt, so FORBIDDEN cannot come back.
   */
  close(id: string, now: number, request: CloseRequest): Promise<UnownedResult>;
  close(
    id: string,
    now: number,
    request: CloseRequest,
    expectedVersion: number | undefined,
    owner: string | undefined,
    ctx?: EventContext,
  ): Promise<WriteResult>;
  async close(
    id: string,
    now: number,
    request: CloseRequest,
    expectedVersion?: number,
    owner = '',
    ctx: EventContext = SYSTEM_CONTEXT,
  ): Promise<WriteResult> {
    const { guard } = request;
    const reply = await this.acknowledged('sessionClose', [
      sessionKey(id),
      dirtySetOf(id),
      eventsKey(id),
      String(now),
      String(this.ttlSeconds),
      versionArg(expectedVersion),
      owner,
      contextFragment(ctx),
      'target' in request ? request.target : guard.kind === 'idle' ? 'abandoned' : '',
      guard.kind === 'none' ? '' : guard.kind,
      guard.kind === 'idle' ? String(guard.idleMs) : '',
    ]);
    return toResult(reply);
  }

  /** Applies a live control (extend, pause, resume) to any attempt: FORBIDDEN cannot come back. */
  async control(id: string, now: number, control: Control, ctx: EventContext = SYSTEM_CONTEXT, reason?: string): Promise<UnownedResult> {
    const extend = control.action === 'extend' ? control : null;
    const reply = await this.acknowledged('sessionControl', [
      sessionKey(id),
      dirtySetOf(id),
      eventsKey(id),
      String(now),
      String(this.ttlSeconds),
      '',
      '',
      contextFragment(ctx),
      control.action,
      extend ? String(extend.seconds) : '',
      extend ? extend.from : '',
      extend?.reopen ? '1' : '',
      JSON.stringify(reason ?? null),
    ]);
    return toResult(reply) as UnownedResult;
  }

  /**
   * Appends events that change nothing else (started, resumed, a client's events), marking the
   * attempt dirty; with `owner`, only to that user's attempt.
   */
  async note(
    id: string,
    now: number,
    events: ReadonlyArray<{ type: string; data: Record<string, unknown> }>,
    ctx: EventContext,
    owner = '',
  ): Promise<WriteResult> {
    const args = [String(now), String(this.ttlSeconds), '', owner, contextFragment(ctx)];
    for (const e of events) args.push(e.type, JSON.stringify(e.data));
    const reply = await this.acknowledged('sessionNote', [sessionKey(id), dirtySetOf(id), eventsKey(id), ...args]);
    return toResult(reply);
  }

  /**
   * Publishes client events just noted (the last `events.length` of the attempt's log) on its
   * quiz's channel (quizChannelOf), for the proctor's console. Best effort: the events are in the log
   * already; a failed publish only means a live view learns of them later.
   */
  async publishClientEvents(
    attempt: Attempt,
    events: ReadonlyArray<{ type: string; data: Record<string, unknown> }>,
    at: number,
  ): Promise<void> {
    // on the quiz channel the attempt's changes go to (its bucket's, sharded), in one round trip
    const channel = quizChannelOf(attempt);
    const sharded = pubSubOf().name === 'sharded';
    const first = attempt.eventSeq - events.length + 1;
    const pipeline = this.redis.pipeline();
    events.forEach((e, i) => {
      const message = JSON.stringify({
        client_event: { attempt_id: attempt.id, user_id: attempt.userId, seq: first + i, type: e.type, at: isoTime(at), data: e.data },
      });
      if (sharded) pipeline.spublish(channel, message);
      else pipeline.publish(channel, message);
    });
    await pipeline.exec().catch(() => null);
  }

  /** The attempt's events not yet in PostgreSQL, in seq order. */
  async pendingEvents(id: string): Promise<AttemptEvent[]> {
    const texts = await this.redis.lrange(eventsKey(id), 0, -1).catch(unavailable);
    return texts.map((t) => JSON.parse(t) as AttemptEvent);
  }

  /**
   * Runs `build` for every item on a pipeline and returns each item's replies (an error in any is
   * thrown as for one command). On one Redis all items share one pipeline: one round trip. On a
   * cluster each item gets its own, sent at once (an item's keys share a slot; a pipeline across
   * slots is refused there).
   */
  private async perItem<T>(items: readonly T[], build: (pipeline: ChainableCommander, item: T) => void): Promise<unknown[][]> {
    if (items.length === 0) return [];
    const run = async (list: readonly T[]): Promise<Array<[Error | null, unknown]>> => {
      const pipeline = this.redis.pipeline();
      for (const item of list) build(pipeline, item);
      return (await pipeline.exec().catch(unavailable)) ?? [];
    };
    const replies = isCluster(this.redis) ? await Promise.all(items.map((item) => run([item]))) : [await run(items)];
    const flat = replies.flat().map(([err, reply]) => (err ? unavailable(err) : reply));
    const per = flat.length / items.length;
    return items.map((_item, i) => flat.slice(i * per, (i + 1) * per));
  }

  /**
   * The cached attempts for many ids, each with its events not yet in PostgreSQL, in one round trip
   * (null where missing), in order.
   */
  async getMany(ids: readonly string[]): Promise<Array<(StoredAttempt & { events: AttemptEvent[] }) | null>> {
    const replies = await this.perItem(ids, (p, id) => p.hgetall(sessionKey(id)).lrange(eventsKey(id), 0, -1));
    return replies.map(([hash, events]) => {
      const h = hash as Record<string, string>;
      if (!isSessionHash(h)) return null;
      return { ...decodeHash(h), events: (events as string[]).map((t) => JSON.parse(t) as AttemptEvent) };
    });
  }

  /**
   * Records, for many attempts in one round trip, which version PostgreSQL now holds (null: none was
   * written, because the key was gone): CLEAN when that is the current one, DIRTY when a newer write
   * landed since (a new window opens now), GONE when the key is gone (out of the dirty set).
   */
  async markPersistedMany(
    entries: ReadonlyArray<{ id: string; version: number | null; eventsThrough?: number }>,
    now: number,
  ): Promise<MarkResult[]> {
    const replies = await this.perItem(entries, (p, e) =>
      (p as unknown as { sessionMarkPersisted: (...a: string[]) => void }).sessionMarkPersisted(
        sessionKey(e.id),
        dirtySetOf(e.id),
        eventsKey(e.id),
        versionArg(e.version ?? undefined),
        String(now),
        e.id,
        versionArg(e.eventsThrough),
      ),
    );
    return replies.map(([r]) => r as MarkResult);
  }

  /** Ids of attempts dirty since at or before `before` (ms), oldest first, at most `limit` (over every dirty set). */
  async dirtySince(before: number, limit: number): Promise<string[]> {
    const sets = keyLayout().dirtySets();
    if (sets.length === 1) return this.redis.zrangebyscore(sets[0], '-inf', before, 'LIMIT', 0, limit).catch(unavailable);
    const replies = await this.perItem(sets, (p, set) => p.zrangebyscore(set, '-inf', before, 'WITHSCORES', 'LIMIT', 0, limit));
    const found: Array<{ id: string; since: number }> = [];
    for (const [reply] of replies) {
      const flat = reply as string[];
      for (let i = 0; i < flat.length; i += 2) found.push({ id: flat[i], since: Number(flat[i + 1]) });
    }
    found.sort((a, b) => a.since - b.since || (a.id < b.id ? -1 : 1));
    return found.slice(0, limit).map((f) => f.id);
  }

  /**
   * Every attempt dirty since at or before `before` that `owns` (its queue shard), page by page
   * (`pageSize` ids read at a time), each page of owned ids handed to `visit` (which may write them:
   * the pages follow the dirty sets by score, so what a visit cleans or re-dirties does not shift
   * them). Only the sets `ownsSet` keeps are read (a shard's buckets). Returns how many it handed on.
   */
  async eachDirty(
    before: number,
    owns: (id: string) => boolean,
    ownsSet: (set: string, index: number) => boolean,
    pageSize: number,
    visit: (ids: string[]) => Promise<void>,
  ): Promise<number> {
    let handed = 0;
    const sets = keyLayout().dirtySets();
    for (let index = 0; index < sets.length; index++) {
      if (!ownsSet(sets[index], index)) continue;
      const seen = new Set<string>();
      let min = '-inf';
      for (;;) {
        const flat = await this.redis.zrangebyscore(sets[index], min, before, 'WITHSCORES', 'LIMIT', 0, pageSize).catch(unavailable);
        const fresh: string[] = [];
        let last = min;
        for (let i = 0; i < flat.length; i += 2) {
          last = flat[i + 1];
          if (seen.has(flat[i])) continue;
          seen.add(flat[i]);
          if (owns(flat[i])) fresh.push(flat[i]);
        }
        if (fresh.length > 0) {
          await visit(fresh);
          handed += fresh.length;
        }
        if (flat.length < 2 * pageSize) break;
        // a full page of one score and nothing new in it: past that score (the sweep has the rest)
        min = last === min && fresh.length === 0 ? `(${last}` : last;
      }
    }
    return handed;
  }

  /**
   * Refreshes the TTL of every attempt dirty since at or before `before`, page by page, so an
   * attempt PostgreSQL has not yet received outlives an outage longer than the TTL. Returns how many.
   */
  async touchDirty(before: number, pageSize: number): Promise<number> {
    let touched = 0;
    for (const set of keyLayout().dirtySets()) {
      for (let offset = 0; ;) {
        const ids = await this.redis.zrangebyscore(set, '-inf', before, 'LIMIT', offset, pageSize).catch(unavailable);
        await this.touch(ids);
        offset += ids.length;
        touched += ids.length;
        if (ids.length < pageSize) break;
      }
    }
    return touched;
  }

  /** How many attempts are dirty (over every dirty set). */
  async dirtyCount(): Promise<number> {
    const replies = await this.perItem(keyLayout().dirtySets(), (p, set) => p.zcard(set));
    return replies.reduce((sum, [n]) => sum + (n as number), 0);
  }

  /** How many attempts are dirty, and since when the oldest has been (epoch ms; null when none is). */
  async dirtyBacklog(): Promise<{ count: number; oldestSince: number | null }> {
    const replies = await this.perItem(keyLayout().dirtySets(), (p, set) => p.zcard(set).zrange(set, 0, 0, 'WITHSCORES'));
    let count = 0;
    let oldestSince: number | null = null;
    for (const [n, first] of replies) {
      count += n as number;
      const since = (first as string[]).length === 2 ? Number((first as string[])[1]) : null;
      if (since !== null && (oldestSince === null || since < oldestSince)) oldestSince = since;
    }
    return { count, oldestSince };
  }

  /** Refreshes the TTL of these attempts' keys (so an unpersisted attempt outlives a long outage). */
  async touch(ids: readonly string[]): Promise<void> {
    await this.perItem(ids, (p, id) => p.expire(sessionKey(id), this.ttlSeconds).expire(eventsKey(id), this.ttlSeconds));
  }

  /**
   * Moves the attempt from version `from` to `to` (above what PostgreSQL holds), when Redis came back
   * from an older state and handed versions out again. Null when it changed meanwhile.
   */
  async rebase(id: string, from: number, to: number, now: number): Promise<StoredAttempt | null> {
    const reply = await this.redis.sessionRebase(sessionKey(id), dirtySetOf(id), String(from), String(to), String(now)).catch(unavailable);
    return reply[0] === 'OK' ? decodeRendered(reply[2] ?? []) : null;
  }
}

const versionArg = (v: number | undefined): string => (v === undefined ? '' : String(v));

function toResult(reply: ScriptReply): WriteResult {
  const code = reply[0] as WriteCode;
  if (code === 'MISS' || code === 'FORBIDDEN') return { code } as WriteResult;
  return { code, becameDirty: reply[1] === 1, movedByDeadline: reply[3] === 1, stored: decodeRendered(reply[2] ?? []) };
}
