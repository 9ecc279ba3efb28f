import type { Knex } from 'knex';
import { answersJson, UNCONTROLLED, type Attempt, type SubmittedBy } from '../domain/attempt';
import { pastDeadlineSql } from '../domain/deadline';
import type { SqlCondition } from '../domain/fragments';
import { idleSql } from '../domain/idle';
import type { ActorRole, AttemptEvent, EventType } from '../domain/events';
import type { OverdueHandling } from '../domain/policy';
import { shardOf, shardOfId } from '../domain/shard';
import { OPEN_SQL, type AttemptStatus, type RunningStatus } from '../domain/status';
import { newerSnapshotSql } from '../domain/version';
import { ServiceUnavailableError } from '../errors';

/** The durable copy's table (the seeds' name). */
export const TABLE = 'quiz_sessions';
/** The event log (events.ts). */
export const EVENTS_TABLE = 'attempt_events';
/** Most event rows one INSERT carries (8 bind parameters each, PostgreSQL allows 65,535). */
export const EVENTS_PER_STATEMENT = 2000;

interface EventRow {
  shard: number;
  attempt_id: string;
  seq: number;
  type: EventType;
  at: Date;
  actor_id: string | null;
  actor_role: ActorRole;
  request_id: string | null;
  data: Record<string, unknown>;
}

/** Columns a snapshot never changes: set when the attempt starts. */
const FIXED_COLUMNS: ReadonlySet<string> = new Set([
  'shard',
  'id',
  'user_id',
  'quiz_id',
  'quiz_id_is_int',
  'time_limit_seconds',
  'started_at',
  'attempt_number',
  'overdue_handling',
  'grace_period_seconds',
]);

interface Row {
  shard: number;
  id: string;
  user_id: string;
  quiz_id: string;
  quiz_id_is_int: boolean;
  status: AttemptStatus;
  current_question: number;
  answers: Record<string, unknown>;
  version: number;
  time_limit_seconds: number;
  started_at: Date;
  expires_at: Date | null;
  last_updated: Date;
  completed_at: Date | null;
  ended_at: Date | null;
  attempt_number: number;
  submitted_by: SubmittedBy | null;
  paused_at: Date | null;
  paused_from: RunningStatus | null;
  extra_time_seconds: number;
  overdue_handling: OverdueHandling;
  grace_period_seconds: number | null;
  /** Selected by ATTEMPT_COLUMNS: the latest event seq PostgreSQL holds. */
  event_seq?: number;
  persisted_at: Date;
  persist_count: number;
}

/** What locates an attempt's rows: its id and its user (whose shard it is in). */
export type AttemptRef = Pick<Attempt, 'id' | 'userId'>;

/** A nullable timestamp column as epoch ms, and back. */
export const ms = (d: Date | null): number | null => (d === null ? null : d.getTime());
export const date = (n: number | null): Date | null => (n === null ? null : new Date(n));

function fromRow(r: Row): Attempt {
  const answers = new Map<string, string>();
  for (const questionId of Object.keys(r.answers)) answers.set(questionId, JSON.stringify(r.answers[questionId]));
  return {
    id: r.id,
    userId: r.user_id,
    quizId: r.quiz_id_is_int ? Number(r.quiz_id) : r.quiz_id,
    status: r.status,
    currentQuestion: r.current_question,
    answers,
    version: r.version,
    timeLimitSeconds: r.time_limit_seconds,
    startedAt: r.started_at.getTime(),
    expiresAt: ms(r.expires_at),
    lastUpdated: r.last_updated.getTime(),
    completedAt: ms(r.completed_at),
    endedAt: ms(r.ended_at),
    attemptNumber: r.attempt_number,
    submittedBy: r.submitted_by,
    pausedAt: ms(r.paused_at),
    pausedFrom: r.paused_from,
    extraTimeSeconds: r.extra_time_seconds,
    overdueHandling: r.overdue_handling,
    gracePeriodSeconds: r.grace_period_seconds,
    eventSeq: r.event_seq ?? 0,
  };
}

/** The row's columns and their bindings; `answers` is JSON text (cast to jsonb where it is written). */
function rowValues(a: Attempt): Record<string, string | number | boolean | Date | null> {
  return {
    shard: shardOf(a.userId),
    id: a.id,
    user_id: a.userId,
    quiz_id: String(a.quizId),
    quiz_id_is_int: typeof a.quizId === 'number',
    status: a.status,
    current_question: a.currentQuestion,
    answers: answersJson(a.answers),
    version: a.version,
    time_limit_seconds: a.timeLimitSeconds,
    started_at: new Date(a.startedAt),
    expires_at: date(a.expiresAt),
    last_updated: new Date(a.lastUpdated),
    completed_at: date(a.completedAt),
    ended_at: date(a.endedAt),
    attempt_number: a.attemptNumber,
    submitted_by: a.submittedBy,
    paused_at: date(a.pausedAt),
    paused_from: a.pausedFrom,
    extra_time_seconds: a.extraTimeSeconds,
    overdue_handling: a.overdueHandling,
    grace_period_seconds: a.gracePeriodSeconds,
  };
}

function toRow(knex: Knex, a: Attempt): Record<string, unknown> {
  const values = rowValues(a);
  return { ...values, answers: knex.raw('?::jsonb', [values.answers]), persisted_at: knex.fn.now() };
}

/** An attempt whose row has every column: the snapshot upsert's column list comes from it. */
const EXAMPLE_ATTEMPT: Attempt = {
  id: '00000000-0000-4000-8000-000000000000',
  userId: '',
  quizId: '',
  status: 'started',
  currentQuestion: 0,
  answers: new Map(),
  version: 1,
  timeLimitSeconds: 0,
  startedAt: 0,
  expiresAt: null,
  lastUpdated: 0,
  completedAt: null,
  endedAt: null,
  attemptNumber: 1,
  submittedBy: null,
  ...UNCONTROLLED,
};

/** Errors that mean PostgreSQL is unreachable or shutting down, as opposed to a bad query. */
function isUnavailable(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === 'KnexTimeoutError') return true;
  if (typeof e?.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|57P0[123]|08\w{3}|53300)$/.test(e.code))
    return true;
  return (
    typeof e?.message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Query read timeout/.test(e.message)
  );
}

/** Turns an unreachable PostgreSQL into a 503; anything else stays as it is. */
export function pgUnavailable(err: unknown): never {
  if (isUnavailable(err)) throw new ServiceUnavailableError('postgres');
  throw err;
}

/** The durable copy of attempts in PostgreSQL (`quiz_sessions`). Every statement is parameterised. */
export class SessionRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Inserts a new open attempt unless the user already has one open for the quiz, or (with
   * `maxAttempts`) has made that many already. The attempt's number is its user's count of attempts
   * at the quiz plus one, counted in the same statement. Returns the number, or null when not inserted.
   */
  async insertIfNoneOpen(a: Omit<Attempt, 'attemptNumber'>, maxAttempts: number | null, started?: AttemptEvent): Promise<number | null> {
    // the number is counted in the statement itself; the `started` event is written by it too
    const values = rowValues({ ...a, attemptNumber: 0 });
    delete values.attempt_number;
    const columns = Object.keys(values);
    const placeholders = columns.map((c) => (c === 'answers' ? '?::jsonb' : '?')).join(', ');
    const insert = `insert into ${TABLE} (${columns.join(', ')}, attempt_number)
         select ${placeholders}, count(*) + 1
         from ${TABLE} where shard = ? and user_id = ? and quiz_id = ?
         having ?::integer is null or count(*) < ?::integer
         on conflict (shard, user_id, quiz_id) where ${OPEN_SQL} do nothing
         returning shard, id, attempt_number`;
    const bindings = [...Object.values(values), values.shard, a.userId, String(a.quizId), maxAttempts, maxAttempts];
    const sql = started
      ? `with inserted as (${insert}),
           started as (insert into ${EVENTS_TABLE} (shard, attempt_id, seq, type, at, actor_id, actor_role, request_id, data)
             select shard, id, ?, ?, ?, ?, ?, ?, ?::jsonb from inserted)
         select attempt_number from inserted`
      : insert;
    const eventBindings = started
      ? [
          started.seq,
          started.type,
          new Date(started.at),
          started.actor.id,
          started.actor.role,
          started.request_id,
          JSON.stringify(started.data),
        ]
      : [];
    const result = await this.knex.raw(sql, [...bindings, ...eventBindings]).catch(pgUnavailable);
    const inserted = result.rows as Array<{ attempt_number: number }>;
    return inserted.length === 1 ? inserted[0].attempt_number : null;
  }

  /**
   * Attempts of a quiz and/or a user, in a stable order (started_at, then id), after a keyset
   * position, at most `limit`; with `statuses`, only rows in those statuses.
   */
  async listAttempts(filter: {
    quizId?: string;
    userId?: string;
    statuses?: readonly string[];
    after?: { startedAt: number; id: string };
    limit: number;
  }): Promise<Attempt[]> {
    const query = this.withEventSeq();
    if (filter.quizId !== undefined) query.where(`${TABLE}.quiz_id`, filter.quizId);
    if (filter.userId !== undefined) query.where(`${TABLE}.shard`, shardOf(filter.userId)).where(`${TABLE}.user_id`, filter.userId);
    if (filter.statuses) query.whereIn(`${TABLE}.status`, [...filter.statuses]);
    if (filter.after) query.whereRaw(`(${TABLE}.started_at, ${TABLE}.id) > (?, ?)`, [new Date(filter.after.startedAt), filter.after.id]);
    const rows = await query
      .orderBy([`${TABLE}.started_at`, `${TABLE}.id`])
      .limit(filter.limit)
      .catch(pgUnavailable);
    return (rows as Row[]).map(fromRow);
  }

  /** How many attempts the user has made at the quiz (open or closed). */
  async countAttempts(userId: string, quizId: string | number): Promise<number> {
    const row = await this.knex(TABLE)
      .count<{ count: string }[]>('*')
      .where({ shard: shardOf(userId), user_id: userId, quiz_id: String(quizId) })
      .catch(pgUnavailable);
    return Number(row[0].count);
  }

  /** The user's open attempt for the quiz, if any. */
  async findOpen(userId: string, quizId: string | number): Promise<Attempt | null> {
    const row = await this.withEventSeq()
      .where(`${TABLE}.shard`, shardOf(userId))
      .where({ user_id: userId, quiz_id: String(quizId) })
      .whereRaw(OPEN_SQL)
      .first()
      .catch(pgUnavailable);
    return row ? fromRow(row) : null;
  }

  /** The attempt's columns and the latest event seq PostgreSQL holds for it (a cache fill continues from there). */
  private withEventSeq() {
    return this.knex<Row>(TABLE).select(
      `${TABLE}.*`,
      this.knex.raw(
        `(select coalesce(max(seq), 0) from ${EVENTS_TABLE} e where e.shard = ${TABLE}.shard and e.attempt_id = ${TABLE}.id) as event_seq`,
      ),
    );
  }

  /** Writes events (each once: a replayed batch writes nothing twice). */
  async insertEvents(events: ReadonlyArray<{ attempt: AttemptRef; event: AttemptEvent }>): Promise<void> {
    // in statements of at most EVENTS_PER_STATEMENT rows: a backlog after an outage can hold more
    // events than one statement may have bind parameters (65,535)
    for (let from = 0; from < events.length; from += EVENTS_PER_STATEMENT) {
      await this.insertEventRows(events.slice(from, from + EVENTS_PER_STATEMENT));
    }
  }

  private async insertEventRows(events: ReadonlyArray<{ attempt: AttemptRef; event: AttemptEvent }>): Promise<void> {
    await this.knex(EVENTS_TABLE)
      .insert(
        events.map(({ attempt, event }) => ({
          shard: shardOf(attempt.userId),
          attempt_id: attempt.id,
          seq: event.seq,
          type: event.type,
          at: new Date(event.at),
          actor_id: event.actor.id,
          actor_role: event.actor.role,
          request_id: event.request_id,
          data: this.knex.raw('?::jsonb', [JSON.stringify(event.data)]),
        })),
      )
      .onConflict(['shard', 'attempt_id', 'seq'])
      .ignore()
      .catch(pgUnavailable);
  }

  /** The attempt's events after `after`, in seq order, at most `limit`. */
  async eventsAfter(attempt: AttemptRef, after: number, limit: number): Promise<AttemptEvent[]> {
    const rows: EventRow[] = await this.knex<EventRow>(EVENTS_TABLE)
      .where({ shard: shardOf(attempt.userId), attempt_id: attempt.id })
      .andWhere('seq', '>', after)
      .orderBy('seq')
      .limit(limit)
      .catch(pgUnavailable);
    return rows.map((r) => ({
      seq: r.seq,
      type: r.type,
      at: r.at.getTime(),
      actor: { id: r.actor_id, role: r.actor_role },
      request_id: r.request_id,
      data: r.data,
    }));
  }

  /**
   * The attempt with this id, if any: looked for in the partition its id names (shard.ts), then,
   * for an id that names none (made before the shard key), in every partition.
   */
  async findById(id: string): Promise<Attempt | null> {
    const byId = () => this.withEventSeq().where(`${TABLE}.id`, id);
    const row =
      (await byId().where(`${TABLE}.shard`, shardOfId(id)).first().catch(pgUnavailable)) ?? (await byId().first().catch(pgUnavailable));
    return row ? fromRow(row as Row) : null;
  }

  /** What a newer snapshot replaces: every column but the fixed ones, and one more write counted. */
  private snapshotMerge(): Record<string, Knex.Raw> {
    const merge: Record<string, Knex.Raw> = {};
    for (const column of Object.keys(toRow(this.knex, EXAMPLE_ATTEMPT))) {
      if (!FIXED_COLUMNS.has(column)) merge[column] = this.knex.raw('??', [`excluded.${column}`]);
    }
    merge.persist_count = this.knex.raw(`${TABLE}.persist_count + 1`);
    return merge;
  }

  /**
   * Writes snapshots in one multi-row upsert, each only over an older version, so a replayed or
   * reordered snapshot never overwrites a newer one. Returns the ids actually written.
   */
  async upsertSnapshots(attempts: readonly Attempt[]): Promise<string[]> {
    if (attempts.length === 0) return [];
    const rows = await this.knex(TABLE)
      .insert(attempts.map((a) => toRow(this.knex, a)))
      .onConflict(['shard', 'id'])
      .merge(this.snapshotMerge())
      .whereRaw(newerSnapshotSql(TABLE))
      .returning('id')
      .catch(pgUnavailable);
    return rows.map((r: { id: string }) => r.id);
  }

  /** Ids of attempts the deadline moves at `now` (deadline.ts), oldest deadline first. */
  async findOverdue(now: number, limit: number): Promise<string[]> {
    return this.findIds(pastDeadlineSql(now), 'expires_at', limit);
  }

  /** Ids of running attempts idle for `idleMs` at `now`, least recently active first. */
  async findIdle(now: number, idleMs: number, limit: number): Promise<string[]> {
    return this.findIds(idleSql(now, idleMs), 'last_updated', limit);
  }

  private async findIds(condition: SqlCondition, orderBy: 'expires_at' | 'last_updated', limit: number): Promise<string[]> {
    const rows = await this.knex<Row>(TABLE)
      .select('id')
      .whereRaw(condition.sql, condition.bindings)
      .orderBy(orderBy)
      .limit(limit)
      .catch(pgUnavailable);
    return rows.map((r) => r.id);
  }

  /** Version and last update of these attempts' rows, for the ones that exist. */
  async versionsOf(attempts: readonly AttemptRef[]): Promise<Map<string, { version: number; lastUpdated: number }>> {
    if (attempts.length === 0) return new Map();
    const rows = await this.knex<Row>(TABLE)
      .select('id', 'version', 'last_updated')
      .whereIn(
        ['shard', 'id'],
        attempts.map((a) => [shardOf(a.userId), a.id]),
      )
      .catch(pgUnavailable);
    return new Map(rows.map((r) => [r.id, { version: r.version, lastUpdated: r.last_updated.getTime() }]));
  }
}
