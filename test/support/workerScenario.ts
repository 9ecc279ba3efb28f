import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { Queue } from 'bullmq';
import type { QueueName } from '../../src/shared/queues/jobs';
import { parseRedisUrl } from '../../src/shared/redis';
import { sleep, type AttemptJson } from './harness';
import type { IsolatedStores } from './isolatedStores';
import { request } from './http';

/** An attempt's row in quiz_sessions, as the worker tests read it. */
export interface SessionRow {
  id: string;
  status: string;
  submitted_by: string | null;
  paused_at: Date | null;
  extra_time_seconds: number;
  version: number;
  persist_count: number;
  current_question: number;
  answers: Record<string, unknown>;
  expires_at: Date | null;
  ended_at: Date | null;
  completed_at: Date | null;
  last_updated: Date;
  persisted_at: Date;
}

/** The rows of these attempts, by id (missing ids are absent). */
export async function rowsById(knex: Knex, ids: readonly string[]): Promise<Map<string, SessionRow>> {
  const rows: SessionRow[] = await knex('quiz_sessions').whereIn('id', ids);
  return new Map(rows.map((r) => [r.id, r]));
}

/** The attempt's row; fails when there is none. */
export async function rowOf(knex: Knex, id: string): Promise<SessionRow> {
  const row = (await rowsById(knex, [id])).get(id);
  if (!row) throw new Error(`no row for attempt ${id}`);
  return row;
}

/**
 * Polls the rows of `ids` every 50 ms until `done` holds for every one; returns when that was
 * first seen (epoch ms). Fails after `timeoutMs` naming the attempts that were still not done.
 */
export async function waitForRows(
  knex: Knex,
  ids: readonly string[],
  done: (row: SessionRow, id: string) => boolean,
  timeoutMs: number,
  what = 'rows',
): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await rowsById(knex, ids);
    const pending = ids.filter((id) => {
      const row = rows.get(id);
      return !row || !done(row, id);
    });
    if (pending.length === 0) return Date.now();
    if (Date.now() > until) {
      const sample = pending.slice(0, 3).map((id) => JSON.stringify(rows.get(id) ?? { id, row: 'missing' }));
      throw new Error(
        `timed out after ${timeoutMs}ms waiting for ${what}: ${pending.length} of ${ids.length} not done, e.g. ${sample.join(' ')}`,
      );
    }
    await sleep(50);
  }
}

/** A client of a spawned API process for the worker tests: every call fails unless it succeeds. */
export class AttemptClient {
  private readonly userPrefix = `wt-${randomUUID().slice(0, 8)}`;

  constructor(readonly url: string) {}

  /** Starts a new attempt for a fresh user and quiz. */
  async start(timeLimitSeconds = 1800): Promise<AttemptJson> {
    const res = await request(this.url, 'POST', '/api/sessions/start', {
      user_id: `${this.userPrefix}-${randomUUID().slice(0, 8)}`,
      quiz_id: `quiz-${randomUUID().slice(0, 8)}`,
      time_limit_seconds: timeLimitSeconds,
    });
    if (res.status !== 201) throw new Error(`start answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as AttemptJson;
  }

  /** Sends a progress write and returns the response (status and attempt). */
  progressRaw(id: string, answers: Record<string, unknown>, currentQuestion?: number) {
    return request(this.url, 'PATCH', `/api/sessions/${id}/progress`, { answers, current_question: currentQuestion });
  }

  /** A progress write that must be acknowledged (200); returns the acknowledged attempt. */
  async progress(id: string, answers: Record<string, unknown>, currentQuestion?: number): Promise<AttemptJson> {
    const res = await this.progressRaw(id, answers, currentQuestion);
    if (res.status !== 200) throw new Error(`progress of ${id} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as AttemptJson;
  }

  /** Completes the attempt (must answer 200). */
  async complete(id: string): Promise<AttemptJson> {
    const res = await request(this.url, 'POST', `/api/sessions/${id}/complete`, {});
    if (res.status !== 200) throw new Error(`complete of ${id} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as AttemptJson;
  }

  /** Reads the attempt: status code and body. */
  get(id: string) {
    return request(this.url, 'GET', `/api/sessions/${id}`);
  }

  /** A fresh quiz with this policy (must answer 200); returns the quiz id. */
  async quizWithPolicy(policy: Record<string, unknown>): Promise<string> {
    const quizId = `quiz-${randomUUID().slice(0, 8)}`;
    const res = await request(this.url, 'PUT', `/api/quizzes/${quizId}/policy`, policy);
    if (res.status !== 200) throw new Error(`policy PUT answered ${res.status}: ${JSON.stringify(res.body)}`);
    return quizId;
  }

  /** Starts a new attempt at a quiz (its policy decides the time) for a fresh user. */
  async startQuiz(quizId: string): Promise<AttemptJson> {
    const res = await request(this.url, 'POST', '/api/sessions/start', {
      user_id: `${this.userPrefix}-${randomUUID().slice(0, 8)}`,
      quiz_id: quizId,
    });
    if (res.status !== 201) throw new Error(`start answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as AttemptJson;
  }

  /** A live control (extend, pause, resume): the response. */
  control(id: string, action: 'extend' | 'pause' | 'resume', body: Record<string, unknown> = {}) {
    return request(this.url, 'POST', `/api/sessions/${id}/${action}`, body);
  }

  /** A live control that must answer 200; returns the attempt. */
  async controlOk(id: string, action: 'extend' | 'pause' | 'resume', body: Record<string, unknown> = {}): Promise<AttemptJson> {
    const res = await this.control(id, action, body);
    if (res.status !== 200) throw new Error(`${action} of ${id} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as AttemptJson;
  }
}

/** A BullMQ queue over the file's Redis DB and prefix, to inspect or add jobs as the service would. */
export function openQueue(stores: Pick<IsolatedStores, 'redisUrl' | 'queuePrefix'>, name: QueueName): Queue {
  return new Queue(name, { connection: { ...parseRedisUrl(stores.redisUrl), maxRetriesPerRequest: null }, prefix: stores.queuePrefix });
}

/** How many backends of the current database are waiting on a lock inside an INSERT into quiz_sessions. */
export async function insertsWaitingOnLock(knex: Knex): Promise<number> {
  const { rows } = await knex.raw(
    `select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query ilike 'insert into "quiz_sessions"%'`,
  );
  return rows[0].n;
}

/** Epoch ms of a timestamp column (null stays null). */
export const epoch = (d: Date | null): number | null => (d === null ? null : d.getTime());
