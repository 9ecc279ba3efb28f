import { RenderedAnswers, type Attempt, type AttemptStatus } from '../domain/attempt';

/** Prefix of the hash fields that hold answers; meta fields never start with it. */
export const ANSWER_FIELD_PREFIX = 'a:';

/**
 * The meta fields of `session:{id}`, always all present ('' for null), so the number of answers
 * is HLEN minus their count. `dirty` is when the first change not yet in PostgreSQL was made.
 */
export const META_FIELDS = [
  'id',
  'user_id',
  'quiz_id',
  'status',
  'cq',
  'v',
  'limit',
  'started_at',
  'expires_at',
  'updated_at',
  'completed_at',
  'ended_at',
  'dirty',
] as const;

const optional = (n: number | null): string => (n === null ? '' : String(n));
const parseOptional = (s: string | undefined): number | null => (s === undefined || s === '' ? null : Number(s));

/** The hash fields and values (flat) of an attempt; `dirty` is '' (in PostgreSQL) unless given. */
export function encodeAttempt(a: Attempt, dirtySince: number | null = null): string[] {
  const out = [
    'id', a.id,
    'user_id', a.userId,
    'quiz_id', JSON.stringify(a.quizId),
    'status', a.status,
    'cq', String(a.currentQuestion),
    'v', String(a.version),
    'limit', String(a.timeLimitSeconds),
    'started_at', String(a.startedAt),
    'expires_at', optional(a.expiresAt),
    'updated_at', String(a.lastUpdated),
    'completed_at', optional(a.completedAt),
    'ended_at', optional(a.endedAt),
    'dirty', optional(dirtySince),
  ];
  for (const [questionId, answer] of a.answers) out.push(ANSWER_FIELD_PREFIX + questionId, answer);
  return out;
}

/** An attempt decoded from its hash, with when it became dirty (null when PostgreSQL has it). */
export interface StoredAttempt {
  attempt: Attempt;
  dirtySince: number | null;
}

/** Position of each meta field in a script's render() reply. */
const AT = Object.fromEntries(META_FIELDS.map((field, i) => [field, i])) as Record<(typeof META_FIELDS)[number], number>;

/** Decodes a script's render(): the meta fields in META_FIELDS order, then the answers' JSON text. */
export function decodeRendered(r: readonly string[]): StoredAttempt {
  return {
    attempt: {
      id: r[AT.id],
      userId: r[AT.user_id],
      quizId: JSON.parse(r[AT.quiz_id]) as string | number,
      status: r[AT.status] as AttemptStatus,
      currentQuestion: Number(r[AT.cq]),
      answers: new RenderedAnswers(r[META_FIELDS.length]),
      version: Number(r[AT.v]),
      timeLimitSeconds: Number(r[AT.limit]),
      startedAt: Number(r[AT.started_at]),
      expiresAt: parseOptional(r[AT.expires_at]),
      lastUpdated: Number(r[AT.updated_at]),
      completedAt: parseOptional(r[AT.completed_at]),
      endedAt: parseOptional(r[AT.ended_at]),
    },
    dirtySince: parseOptional(r[AT.dirty]),
  };
}

/** Decodes HGETALL output given as an object (as ioredis returns it). */
export function decodeHash(hash: Record<string, string>): StoredAttempt {
  const meta: Record<string, string> = Object.create(null);
  const answers = new Map<string, string>();
  for (const field of Object.keys(hash)) {
    if (field.startsWith(ANSWER_FIELD_PREFIX)) answers.set(field.slice(ANSWER_FIELD_PREFIX.length), hash[field]);
    else meta[field] = hash[field];
  }
  return decodeMeta(meta, answers);
}

function decodeMeta(m: Record<string, string>, answers: Map<string, string>): StoredAttempt {
  return {
    attempt: {
      id: m.id,
      userId: m.user_id,
      quizId: JSON.parse(m.quiz_id) as string | number,
      status: m.status as AttemptStatus,
      currentQuestion: Number(m.cq),
      answers,
      version: Number(m.v),
      timeLimitSeconds: Number(m.limit),
      startedAt: Number(m.started_at),
      expiresAt: parseOptional(m.expires_at),
      lastUpdated: Number(m.updated_at),
      completedAt: parseOptional(m.completed_at),
      endedAt: parseOptional(m.ended_at),
    },
    dirtySince: parseOptional(m.dirty),
  };
}
