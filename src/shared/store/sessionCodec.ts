import { RenderedAnswers, type Attempt, type SubmittedBy } from '../domain/attempt';
import { luaLiteral } from '../domain/fragments';
import { OVERDUE_HANDLINGS, type OverdueHandling } from '../domain/policy';
import type { AttemptStatus, RunningStatus } from '../domain/status';

/*
 * The one field table of `session:{id}`: every meta field's name and how it maps to the Attempt.
 * The encoder, both decoders and the Lua scripts (META_FIELDS, read by name) all come from it.
 * Meta fields are always all present ('' for null), so the number of answers is HLEN minus their
 * count; answers are fields of their own, ANSWER_FIELD_PREFIX + question id -> the answer's JSON text.
 */

/** Prefix of the hash fields that hold answers; meta fields never start with it. */
export const ANSWER_FIELD_PREFIX = 'a:';

/** How one field's value is written as hash text and read back. */
interface Codec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

const text: Codec<string> = { encode: (v) => v, decode: (s) => s };
const integer: Codec<number> = { encode: (v) => String(v), decode: (s) => Number(s) };
const optionalMs: Codec<number | null> = {
  encode: (v) => (v === null ? '' : String(v)),
  decode: (s) => (s === '' || s === undefined ? null : Number(s)),
};
// JSON text, so an integer quiz id comes back as a number
const json: Codec<string | number> = { encode: (v) => JSON.stringify(v), decode: (s) => JSON.parse(s) as string | number };
const status: Codec<AttemptStatus> = { encode: (v) => v, decode: (s) => s as AttemptStatus };
const submittedBy: Codec<SubmittedBy | null> = {
  encode: (v) => v ?? '',
  decode: (s) => (s === '' || s === undefined ? null : (s as SubmittedBy)),
};
/** An integer field that a hash cached before it existed lacks: `absent` then. */
const integerOr = (absent: number): Codec<number> => ({
  encode: (v) => String(v),
  decode: (s) => (s === '' || s === undefined ? absent : Number(s)),
});
const optionalInteger: Codec<number | null> = optionalMs;
const pausedFrom: Codec<RunningStatus | null> = {
  encode: (v) => v ?? '',
  decode: (s) => (s === '' || s === undefined ? null : (s as RunningStatus)),
};
// '' (a hash cached before policies had one) is the default, expire
const overdueHandling: Codec<OverdueHandling> = {
  encode: (v) => v,
  decode: (s) => ((OVERDUE_HANDLINGS as readonly string[]).includes(s) ? (s as OverdueHandling) : 'expire'),
};

/** What `session:{id}` holds besides the answers: the attempt's fields, and when it became dirty. */
export interface SessionMeta extends Omit<Attempt, 'answers'> {
  /** Epoch ms of the first change not yet in PostgreSQL; null when PostgreSQL is current. */
  dirtySince: number | null;
}

type FieldTable = { [F: string]: { [K in keyof SessionMeta]: { property: K; codec: Codec<SessionMeta[K]> } }[keyof SessionMeta] };

/** Hash field name -> the property it holds and its codec; in the order render() returns them. */
export const SESSION_FIELDS = {
  id: { property: 'id', codec: text },
  user_id: { property: 'userId', codec: text },
  quiz_id: { property: 'quizId', codec: json },
  status: { property: 'status', codec: status },
  current_question: { property: 'currentQuestion', codec: integer },
  version: { property: 'version', codec: integer },
  time_limit_seconds: { property: 'timeLimitSeconds', codec: integer },
  started_at: { property: 'startedAt', codec: integer },
  expires_at: { property: 'expiresAt', codec: optionalMs },
  last_updated: { property: 'lastUpdated', codec: integer },
  completed_at: { property: 'completedAt', codec: optionalMs },
  ended_at: { property: 'endedAt', codec: optionalMs },
  // a hash cached before attempt numbers existed has none: it is the user's first attempt then
  attempt_number: { property: 'attemptNumber', codec: integerOr(1) },
  submitted_by: { property: 'submittedBy', codec: submittedBy },
  paused_at: { property: 'pausedAt', codec: optionalMs },
  paused_from: { property: 'pausedFrom', codec: pausedFrom },
  extra_time_seconds: { property: 'extraTimeSeconds', codec: integerOr(0) },
  overdue_handling: { property: 'overdueHandling', codec: overdueHandling },
  grace_period_seconds: { property: 'gracePeriodSeconds', codec: optionalInteger },
  event_seq: { property: 'eventSeq', codec: integerOr(0) },
  dirty_since: { property: 'dirtySince', codec: optionalMs },
} as const satisfies FieldTable;

/** A meta field's name. */
export type SessionField = keyof typeof SESSION_FIELDS;
/** The meta fields, in table order. */
export const META_FIELDS = Object.keys(SESSION_FIELDS) as SessionField[];
const ENTRIES = Object.entries(SESSION_FIELDS) as Array<[SessionField, { property: keyof SessionMeta; codec: Codec<unknown> }]>;

/** The field table for the scripts: META_FIELDS, read_fields(), is_answer_field(). */
export const FIELDS_LUA = `
local META_FIELDS = {${META_FIELDS.map(luaLiteral).join(', ')}}
local ANSWER_FIELD_PREFIX_LENGTH = ${ANSWER_FIELD_PREFIX.length}
local function is_answer_field(f)
  return ${[...ANSWER_FIELD_PREFIX].map((c, i) => `string.byte(f, ${i + 1}) == ${c.charCodeAt(0)}`).join(' and ')}
end
local function read_fields(key, names)
  local values = redis.call('HMGET', key, unpack(names))
  local out = {}
  for i = 1, #names do out[names[i]] = values[i] end
  return out
end
`;

/** An attempt decoded from its hash, with when it became dirty (null when PostgreSQL has it). */
export interface StoredAttempt {
  attempt: Attempt;
  dirtySince: number | null;
}

/** The hash fields and values (flat) of an attempt; `dirty_since` is '' (in PostgreSQL) unless given. */
export function encodeAttempt(a: Attempt, dirtySince: number | null = null): string[] {
  const meta: SessionMeta = { ...a, dirtySince };
  const out: string[] = [];
  for (const [field, { property, codec }] of ENTRIES) out.push(field, codec.encode(meta[property]));
  for (const [questionId, answer] of a.answers) out.push(ANSWER_FIELD_PREFIX + questionId, answer);
  return out;
}

/** The attempt from its meta fields (looked up by `valueOf`) and its answers. */
function decode(valueOf: (field: SessionField, index: number) => string, answers: Map<string, string>): StoredAttempt {
  const attempt: Record<string, unknown> = {};
  let dirtySince: number | null = null;
  for (let i = 0; i < ENTRIES.length; i++) {
    const [field, { property, codec }] = ENTRIES[i];
    const value = codec.decode(valueOf(field, i));
    if (property === 'dirtySince') dirtySince = value as number | null;
    else attempt[property] = value;
  }
  attempt.answers = answers;
  return { attempt: attempt as unknown as Attempt, dirtySince };
}

/** Decodes a script's render(): the meta fields in META_FIELDS order, then the answers' JSON text. */
export function decodeRendered(r: readonly string[]): StoredAttempt {
  return decode((_field, i) => r[i], new RenderedAnswers(r[META_FIELDS.length]));
}

/** Decodes HGETALL output given as an object (as ioredis returns it). */
export function decodeHash(hash: Record<string, string>): StoredAttempt {
  const answers = new Map<string, string>();
  for (const field of Object.keys(hash)) {
    if (field.startsWith(ANSWER_FIELD_PREFIX)) answers.set(field.slice(ANSWER_FIELD_PREFIX.length), hash[field]);
  }
  return decode((field) => hash[field], answers);
}

/** True when the HGETALL output is an attempt's hash (an empty object is a missing key). */
export const isSessionHash = (hash: Record<string, string>): boolean => hash.version !== undefined;
