import type { Knex } from 'knex';
import { answersJson, type Attempt, type SubmittedBy } from '../domain/attempt';
import { pastDeadlineSql } from '../domain/deadline';
import type { SqlCondition } from '../domain/fragments';
import { idleSql } from '../domain/idle';
import { OPEN_SQL, type AttemptStatus, type ClosedStatus } from '../domain/status';
import { newerSnapshotSql } from '../domain/version';
import { ServiceUnavailableError } from '../errors';
import type { CloseGuard } from './sessionStore';

/** The durable copy's table (the seeds' name). */
export const TABLE = 'quiz_sessions';

/** The rows a close guard allows at `now`: any open attempt, or only one past its deadline, or idle. */
function guardSql(guard: CloseGuard, now: number): SqlCondition {
  if (guard.kind === 'deadline') return pastDeadlineSql(now);
  if (guard.kind === 'idle') return idleSql(now, guard.idleMs);
  return { sql: OPEN_SQL, bindings: [] };
}

interface Row {
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
  persisted_at: Date;
  persist_count: number;
}

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
  };
}

/** The row's columns and their bindings; `answers` is JSON text (cast to jsonb where it is written). */
function rowValues(a: Attempt): Record<string, string | number | boolean | Date | null> {
  return {
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
  };
}

function toRow(knex: Knex, a: Attempt): Record<string, unknown> {
  const values = rowValues(a);
  return { ...values, answers: knex.raw('?::jsonb', [values.answers]), persisted_at: knex.fn.now() };
}

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
  async insertIfNoneOpen(a: Omit<Attempt, 'attemptNumber'>, maxAttempts: number | null): Promise<number | null> {
    // the number is counted in the statement itself
    const values = rowValues({ ...a, attemptNumber: 0 });
    delete values.attempt_number;
    const columns = Object.keys(values);
    const placeholders = columns.map((c) => (c === 'answers' ? '?::jsonb' : '?')).join(', ');
    const result = await this.knex
      .raw(
        `insert into ${TABLE} (${columns.join(', ')}, attempt_number)
         select ${placeholders}, count(*) + 1
         from ${TABLE} where user_id = ? and quiz_id = ?
         having ?::integer is null or count(*) < ?::integer
         on conflict (user_id, quiz_id) where ${OPEN_SQL} do nothing
         returning attempt_number`,
        [...Object.values(values), a.userId, String(a.quizId), maxAttempts, maxAttempts],
      )
      .catch(pgUnavailable);
    const inserted = result.rows as Array<{ attempt_number: number }>;
    return inserted.length === 1 ? inserted[0].attempt_number : null;
  }

  /** How many attempts the user has made at the quiz (open or closed). */
  async countAttempts(userId: string, quizId: string | number): Promise<number> {
    const row = await this.knex(TABLE)
      .count<{ count: string }[]>('*')
      .where({ user_id: userId, quiz_id: String(quizId) })
      .catch(pgUnavailable);
    return Number(row[0].count);
  }

  /** The user's open attempt for the quiz, if any. */
  async findOpen(userId: string, quizId: string | number): Promise<Attempt | null> {
    const row = await this.knex<Row>(TABLE)
      .where({ user_id: userId, quiz_id: String(quizId) })
      .whereRaw(OPEN_SQL)
      .first()
      .catch(pgUnavailable);
    return row ? fromRow(row) : null;
  }

  /** The attempt with this id, if any. */
  async findById(id: string): Promise<Attempt | null> {
    const row = await this.knex<Row>(TABLE).where({ id }).first().catch(pgUnavailable);
    return row ? fromRow(row) : null;
  }

  /**
   * Writes snapshots in one multi-row upsert, each only over an older version, so a replayed or
   * reordered snapshot never overwrites a newer one. Returns the ids actually written.
   */
  async upsertSnapshots(attempts: readonly Attempt[]): Promise<string[]> {
    if (attempts.length === 0) return [];
    const rows = await this.knex(TABLE)
      .insert(attempts.map((a) => toRow(this.knex, a)))
      .onConflict('id')
      .merge({
        status: this.knex.raw('excluded.status'),
        current_question: this.knex.raw('excluded.current_question'),
        answers: this.knex.raw('excluded.answers'),
        version: this.knex.raw('excluded.version'),
        last_updated: this.knex.raw('excluded.last_updated'),
        completed_at: this.knex.raw('excluded.completed_at'),
        ended_at: this.knex.raw('excluded.ended_at'),
        submitted_by: this.knex.raw('excluded.submitted_by'),
        persisted_at: this.knex.raw('excluded.persisted_at'),
        persist_count: this.knex.raw(`${TABLE}.persist_count + 1`),
      })
      .whereRaw(newerSnapshotSql(TABLE))
      .returning('id')
      .catch(pgUnavailable);
    return rows.map((r: { id: string }) => r.id);
  }

  /**
   * Closes an open attempt in PostgreSQL alone (used when Redis holds no copy of it), under the
   * same guard the Redis close applies. Returns the closed attempt, or null when the guard or the
   * status did not allow it. An expired attempt ends at its deadline, as the Redis close has it.
   */
  async close(id: string, target: ClosedStatus, now: number, guard: CloseGuard): Promise<Attempt | null> {
    const allowed = guardSql(guard, now);
    const rows = await this.knex<Row>(TABLE)
      .where({ id })
      .whereRaw(allowed.sql, allowed.bindings)
      .update({
        status: target,
        version: this.knex.raw('version + 1'),
        ended_at: target === 'expired' ? this.knex.raw('expires_at') : new Date(now),
        completed_at: target === 'completed' ? new Date(now) : null,
        submitted_by: target === 'completed' ? 'student' : null,
        last_updated: new Date(now),
        persisted_at: this.knex.fn.now(),
        persist_count: this.knex.raw('persist_count + 1'),
      })
      .returning('*')
      .catch(pgUnavailable);
    return rows.length === 1 ? fromRow(rows[0] as Row) : null;
  }

  /** Ids of open attempts past their deadline at `now`, oldest deadline first. */
  async findOverdue(now: number, limit: number): Promise<string[]> {
    return this.findIds(pastDeadlineSql(now), 'expires_at', limit);
  }

  /** Ids of open attempts idle for `idleMs` at `now`, least recently active first. */
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
  async versionsOf(ids: readonly string[]): Promise<Map<string, { version: number; lastUpdated: number }>> {
    if (ids.length === 0) return new Map();
    const rows = await this.knex<Row>(TABLE).select('id', 'version', 'last_updated').whereIn('id', ids).catch(pgUnavailable);
    return new Map(rows.map((r) => [r.id, { version: r.version, lastUpdated: r.last_updated.getTime() }]));
  }
}
