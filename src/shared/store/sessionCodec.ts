import { RenderedAnswers, type Attempt, type SubmittedBy } from '../domain/attempt';
import { luaLiteral } from '../domain/fragments';
import { OVERDUE_HANDLINGS, type OverdueHandling } from '../domain/policy';
import type { AttemptStatus, RunningStatus } from '../domain/status';

/*
 * The one field table of `session:{id}`: every meta field's name and how it maps to the Attempt.
 * The encoder, both decoders and the Lua scripts (META_FIELDS, read by name) all come from it.
 * Meta fields are always all present ('' for null). The answers are two more fields:
 *   answers       the answers as one JSON object text, `{"<question id>":<answer>,...}`, ready to
 *                 be sent: a read is one HMGET, with nothing to render (answersText()).
 *   answer_index  each entry's key and its value's length in bytes, in the text's order, each
 *                 entry as `\n<key>\t<length>`, the key as its JSON text without the quotes ('' for
 *                 none): a write finds an answered question by one plain search for `\n<key>\t`
 *                 (JSON text holds no raw newline or tab), and replaces or appends it without
 *                 parsing JSON or walking the entries.
 *                 (Before 2026-12-02 it was the lengths alone, `k1,v1,k2,v2,...`: the first write
 *                 converts such an index, includes/layout.lua.)
 * Keys are the question ids as JSON.stringify writes them (the API sends them so to the scripts);
 * values the answer's JSON text, stored and returned without re-encoding.
 * A hash cached before (ANSWER_FIELD_PREFIX fields, one per answer) is converted in place by the
 * first script that writes it or reads it (includes/layout.lua).
 */

/** The hash field of the answers' JSON object text. */
export const ANSWERS_FIELD = 'answers';
/** The hash field of the entries' lengths in ANSWERS_FIELD. */
export const ANSWER_INDEX_FIELD = 'answer_index';
/** Prefix of the per-answer fields of the earlier layout (converted when met). */
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

/** The fields a read takes, in the order render() returns them: META_FIELDS, then the answers' text. */
export const RENDER_FIELDS: readonly string[] = [...META_FIELDS, ANSWERS_FIELD];

/** What starts an answer_index entry and what ends its key (JSON text holds neither raw). */
const INDEX_ENTRY_START = '\n';
const INDEX_KEY_END = '\t';

/** An answer_index entry: the key (its JSON text, quotes included) unquoted, then the value's length. */
const indexEntry = (keyJson: string, valueBytes: number): string =>
  `${INDEX_ENTRY_START}${keyJson.slice(1, -1)}${INDEX_KEY_END}${valueBytes}`;

/**
 * The field table for the scripts: META_FIELDS, RENDER_FIELDS, read_fields(), is_answer_field(),
 * and the answer_index entry as indexEntry writes it: index_entry(), index_key() (what a search for
 * a key's entry looks for), INDEX_ENTRY_START and INDEX_ENTRY_PATTERN (an entry's unquoted key and length).
 */
export const FIELDS_LUA = `
local META_FIELDS = {${META_FIELDS.map(luaLiteral).join(', ')}}
local RENDER_FIELDS = {${RENDER_FIELDS.map(luaLiteral).join(', ')}}
local ANSWERS_FIELD = ${luaLiteral(ANSWERS_FIELD)}
local ANSWER_INDEX_FIELD = ${luaLiteral(ANSWER_INDEX_FIELD)}
local ANSWER_FIELD_PREFIX_LENGTH = ${ANSWER_FIELD_PREFIX.length}
local function is_answer_field(f)
  return ${[...ANSWER_FIELD_PREFIX].map((c, i) => `string.byte(f, ${i + 1}) == ${c.charCodeAt(0)}`).join(' and ')}
end
local INDEX_ENTRY_START = ${luaLiteral(INDEX_ENTRY_START)}
local INDEX_ENTRY_PATTERN = ${luaLiteral(`${INDEX_ENTRY_START}([^${INDEX_KEY_END}]*)${INDEX_KEY_END}(%d+)`)}
local function index_key(key_json)
  return INDEX_ENTRY_START .. string.sub(key_json, 2, -2) .. ${luaLiteral(INDEX_KEY_END)}
end
local function index_entry(key_json, length)
  return index_key(key_json) .. length
end
local function read_fields(key, names)
  local values = redis.call('HMGET', key, unpack(names))
  local out = {}
  for i = 1, #names do out[names[i]] = values[i] end
  return out
end
`;

/** An answers map's JSON object text and its answer_index (each key, and its value's length in bytes). */
export function answersFields(answers: Map<string, string>): [text: string, index: string] {
  let text = '{';
  let index = '';
  for (const [questionId, answer] of answers) {
    const key = JSON.stringify(questionId);
    text += (index === '' ? '' : ',') + key + ':' + answer;
    index += indexEntry(key, Buffer.byteLength(answer));
  }
  return [text + '}', index];
}

/** The hash fields and values of an answers map (ANSWERS_FIELD, ANSWER_INDEX_FIELD), flat for HSET. */
export function answerHashFields(answers: Map<string, string>): string[] {
  const [text, index] = answersFields(answers);
  return [ANSWERS_FIELD, text, ANSWER_INDEX_FIELD, index];
}

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
  out.push(...answerHashFields(a.answers));
  return out;
}

/**
 * The attempt from its meta fields' texts, in META_FIELDS order, and its answers: one object
 * literal with every property (one shape for every attempt, so the reads of it that follow stay
 * fast), generated from the field table once. A loop setting properties by name made an object
 * of no fixed shape and was about half of the read's decoding and rendering time.
 */
type RowDecoder = (values: ArrayLike<string | undefined>, answers: Map<string, string>) => StoredAttempt;
const decodeRow: RowDecoder = (() => {
  const props = ENTRIES.map(([, { property }], i) => (property === 'dirtySince' ? '' : `${property}: c${i}(v[${i}]),`)).join(' ');
  const dirtyAt = ENTRIES.findIndex(([, { property }]) => property === 'dirtySince');
  const body = `return function decodeRow(v, answers) { return { attempt: { ${props} answers }, dirtySince: c${dirtyAt}(v[${dirtyAt}]) }; };`;
  // the codecs' decode functions as parameters c0, c1, …; the generated text holds only the table's property names
  const codecs = ENTRIES.map(([, { codec }]) => codec.decode);
  return new Function(...codecs.map((_, i) => `c${i}`), body)(...codecs) as RowDecoder;
})();

/** Decodes a script's render(): the meta fields in META_FIELDS order, then the answers' JSON text. */
export function decodeRendered(r: readonly string[]): StoredAttempt {
  return decodeRow(r, new RenderedAnswers(r[META_FIELDS.length]));
}

/** Decodes HGETALL output given as an object (as ioredis returns it), in either layout. */
export function decodeHash(hash: Record<string, string>): StoredAttempt {
  const text = hash[ANSWERS_FIELD];
  const values = META_FIELDS.map((field) => hash[field]);
  if (text !== undefined) return decodeRow(values, new RenderedAnswers(text));
  const answers = new Map<string, string>();
  for (const field of Object.keys(hash)) {
    if (field.startsWith(ANSWER_FIELD_PREFIX)) answers.set(field.slice(ANSWER_FIELD_PREFIX.length), hash[field]);
  }
  return decodeRow(values, answers);
}

/** True when the HGETALL output is an attempt's hash (an empty object is a missing key). */
export const isSessionHash = (hash: Record<string, string>): boolean => hash.version !== undefined;
