import fc from 'fast-check';
import { BODY_FIELDS, FIELD_ALIASES, LONE_SURROGATE } from './inputContract';

/*
 * fast-check arbitraries for hostile input. Values for JSON fields are generated as raw JSON text
 * (so tokens like 1e999, -0 or 10 000 nested brackets reach the service exactly as written); the
 * tests parse that text themselves and ask test/support/inputContract.ts what the answer must be.
 */

/** Strings that look like SQL, sent as data: they must be stored verbatim and do nothing. */
export const SQL_STRINGS = [
  "'; drop table quiz_sessions; --",
  "' OR '1'='1",
  '1; DELETE FROM quiz_sessions WHERE 1=1; --',
  '"; truncate quiz_sessions cascade; --',
  "' UNION SELECT usename, passwd FROM pg_shadow --",
  "'); select pg_sleep(10); --",
  '$$; drop table quiz_sessions; $$',
  '1)) or true; --',
  '?',
  '??',
  '$1',
  ':user_id',
  '%',
  '_%_',
  '\\',
  "\\'",
  "E'\\\\x00'",
  '/* */ or 1=1',
  '`id`',
  'quiz_sessions',
] as const;

/** Strings that look like Redis commands, Lua or this service's hash fields, sent as data. */
export const REDIS_STRINGS = [
  'FLUSHALL',
  'KEYS *',
  'session:*',
  'sessions:dirty',
  'a:',
  'a:v',
  'v',
  'version',
  'status',
  'dirty',
  'dirty_since',
  'user_id',
  "redis.call('FLUSHALL')",
  ']] .. redis.call("DEL", KEYS[1]) .. [[',
  '*1\r\n$8\r\nFLUSHALL\r\n',
] as const;

/** Names that live on Object.prototype (or are special to JavaScript objects), as question ids. */
export const OBJECT_KEYS = [
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
  'then',
  'length',
  'toJSON',
] as const;

/** Unicode that stresses encodings: combining marks, RTL override, zero-width, BOM, non-characters, astral. */
const TRICKY_UNITS = [
  'a',
  'é',
  'e\u0301',
  '漢',
  '😀',
  '👩‍👩‍👧',
  '\u202e',
  '\u200b',
  '\ufeff',
  '\uffff',
  '\ufffd',
  '\u00a0',
  '\u2028',
  '"',
  '\\',
  '/',
  '<',
  '{',
  '%00',
];
/** Control characters: refused in ids (NUL refused everywhere), allowed inside answers otherwise. */
export const CONTROL_UNITS = ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f'];

/** `__proto__` as an id is tested on its own (see the regressions at the end of test/hostile.input.test.ts). */
const notProto = (s: string): boolean => s !== '__proto__';
/** Halves of surrogate pairs on their own: not Unicode, refused in ids and answers. */
export const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff'];

/** Id-like text: unicode, control characters, SQL, names from Object.prototype, lengths around the limit (in characters and in UTF-16 units). */
export const idText: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 0, maxLength: 30 }) },
    {
      weight: 2,
      arbitrary: fc.string({ unit: fc.constantFrom(...TRICKY_UNITS, ...CONTROL_UNITS, ...LONE_SURROGATES), minLength: 1, maxLength: 20 }),
    },
    { weight: 2, arbitrary: fc.constantFrom(...SQL_STRINGS, ...REDIS_STRINGS, ...OBJECT_KEYS) },
    { weight: 1, arbitrary: fc.integer({ min: 120, max: 140 }).map((n) => 'q'.repeat(n)) },
    { weight: 1, arbitrary: fc.integer({ min: 120, max: 140 }).map((n) => 'é'.repeat(n)) },
    // astral characters: two UTF-16 units each, one character as the limit counts them
    { weight: 1, arbitrary: fc.integer({ min: 120, max: 140 }).map((n) => '😀'.repeat(n)) },
  )
  .filter(notProto);

/** Id text that the contract accepts (no control characters, 1..maxLength long). */
export const validIdText = (maxLength = 60): fc.Arbitrary<string> =>
  fc
    .oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: Math.min(maxLength, 30) }),
      fc.string({ unit: fc.constantFrom(...TRICKY_UNITS), minLength: 1, maxLength: Math.min(maxLength, 20) }),
      fc.constantFrom(
        ...SQL_STRINGS,
        ...OBJECT_KEYS,
        'FLUSHALL',
        'KEYS *',
        'session:*',
        'a:',
        'a:v',
        'v',
        'version',
        'status',
        'dirty',
        'dirty_since',
      ),
    )
    .filter((s) => notProto(s) && !LONE_SURROGATE.test(s) && s.length <= maxLength && !/[\u0000-\u001f\u007f]/.test(s));

/** Numbers as JSON tokens: every size and sign, fractions, exponents, -0, overflow to Infinity, range edges. */
export const numberToken: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.integer({ min: -5, max: 10_010 }).map(String),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
  fc.constantFrom(
    '-0',
    '0.0',
    '1.0',
    '1e2',
    '1E+2',
    '1e-2',
    '0.1e1',
    '1e999',
    '-1e999',
    '5e-324',
    '1.7976931348623157e308',
    '2147483647',
    '2147483648',
    '-2147483648',
    '4294967296',
    '604800',
    '604801',
    '10000',
    '10001',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '-9007199254740991',
    '1e21',
    '123456789012345678901234567890',
  ),
);

/** `n` levels of nested arrays or objects as JSON text (innermost empty): depth n by the contract's count. */
export function nestedText(n: number, kind: 'array' | 'object' | 'mixed' = 'array'): string {
  if (kind === 'array') return '['.repeat(n) + ']'.repeat(n);
  if (kind === 'object') return '{"k":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1);
  let open = '';
  let close = '';
  for (let i = 0; i < n - 1; i++) {
    open += i % 2 === 0 ? '[' : '{"k":';
    close = (i % 2 === 0 ? ']' : '}') + close;
  }
  return open + '[]' + close;
}

/** Any JSON value as text, of any type, usually the wrong one for the field it lands in. */
export const hostileValueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: numberToken },
  { weight: 2, arbitrary: idText.map((s) => JSON.stringify(s)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('true', 'false', 'null', '[]', '{}', '""', '"1"', '"-1"', '" 5"', '[1]', '{"0":1}', '"NaN"', '"Infinity"'),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 1500 }).map((n) => nestedText(n)) },
);

/** An answer value as JSON text: anything JSON, with sizes and depths around the limits, NULs, SQL. */
export const answerText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom(...SQL_STRINGS, ...REDIS_STRINGS).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.integer({ min: 4080, max: 4110 }).map((n) => JSON.stringify('x'.repeat(n - 2))) },
  { weight: 1, arbitrary: fc.integer({ min: 1360, max: 1370 }).map((n) => JSON.stringify('€'.repeat(n))) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 14 }), fc.constantFrom('array', 'object', 'mixed') as fc.Arbitrary<'array' | 'object' | 'mixed'>)
      .map(([n, kind]) => nestedText(n, kind)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '"a\\u0000b"',
      '{"k\\u0000":1}',
      '["\\u0000"]',
      '"\\u0001\\t\\r\\n"',
      '"\\ud800"',
      '{"\\udc00":1}',
      '["ok","x\\udbff"]',
      '"\\ud83d\\ude00"',
      '{"constructor":{"prototype":{"polluted":true}}}',
    ),
  },
  { weight: 1, arbitrary: numberToken },
);

/** JSON text of an object with these entries, keys encoded, values given as JSON text. */
export function objectText(entries: ReadonlyArray<readonly [string, string]>): string {
  return '{' + entries.map(([key, value]) => JSON.stringify(key) + ':' + value).join(',') + '}';
}

/** An answers map as JSON text: a few hostile entries, or about a hundred (around the per-request limit). */
export const answersMapText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.tuple(idText, answerText), { maxLength: 5 }).map(objectText) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 95, max: 110 }), fc.string({ unit: 'grapheme-ascii', maxLength: 4 }))
      .map(([n, tag]) => objectText(Array.from({ length: n }, (_, i) => [`m${tag}${i}`, String(i)] as const))),
  },
);

/** How a version is written relative to the attempt's current one (resolved when the request is made). */
export type VersionSpec = { kind: 'current' } | { kind: 'offset'; by: number } | { kind: 'raw'; text: string };

/** A version for a body or If-Match: usually the current one, else stale, ahead, or any JSON at all. */
export const versionSpec: fc.Arbitrary<VersionSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'current' } as const) },
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: -3, max: 3 })
      .filter((by) => by !== 0)
      .map((by) => ({ kind: 'offset', by }) as const),
  },
  { weight: 2, arbitrary: hostileValueText.map((text) => ({ kind: 'raw', text }) as const) },
);

/** The version spec as JSON text against `current`. */
export function versionText(spec: VersionSpec, current: number): string {
  if (spec.kind === 'current') return String(current);
  if (spec.kind === 'offset') return String(current + spec.by);
  return spec.text;
}

/** An If-Match header: none, `*`, a version in each accepted form, or garbage. */
export type IfMatchSpec =
  { kind: 'none' } | { kind: 'literal'; header: string } | { kind: 'version'; form: 'bare' | 'quoted' | 'weak'; version: VersionSpec };

export const ifMatchSpec: fc.Arbitrary<IfMatchSpec> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ kind: 'none' } as const) },
  {
    weight: 3,
    arbitrary: fc
      .record({ form: fc.constantFrom('bare', 'quoted', 'weak') as fc.Arbitrary<'bare' | 'quoted' | 'weak'>, version: versionSpec })
      // a header is Latin-1 text: keep raw versions that fetch can send
      .filter((r) => r.version.kind !== 'raw' || /^[\x20-\x7e]*$/.test(r.version.text))
      .map((r) => ({ kind: 'version', ...r }) as const),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '*',
          '',
          '"0"',
          'W/"0"',
          '0',
          '"-1"',
          '"1.5"',
          '"2147483648"',
          '"99999999999"',
          '"1", "2"',
          'W/ "1"',
          '""',
          'abc',
          'null',
          '"${version}"',
          "'; drop table quiz_sessions; --",
        ),
        // printable garbage with a character no version form has, so it is refused whatever the parser
        fc
          .string({ unit: 'binary-ascii', minLength: 1, maxLength: 20 })
          .filter((s) => /^[\x20-\x7e]+$/.test(s) && /[^0-9W/" ]/.test(s) && s.trim() !== '*'),
      )
      .map((header) => ({ kind: 'literal', header }) as const),
  },
);

/** The If-Match header text for a spec against `current`, or undefined for none. */
export function ifMatchHeader(spec: IfMatchSpec, current: number): string | undefined {
  if (spec.kind === 'none') return undefined;
  if (spec.kind === 'literal') return spec.header;
  const v = versionText(spec.version, current);
  // a raw (non-numeric) version in a header is sent as it is, quoted as the form says
  if (spec.form === 'bare') return v;
  return spec.form === 'weak' ? `W/"${v}"` : `"${v}"`;
}

/** Which spelling a field is sent under: snake_case, its camelCase alias, or both with the same value. */
export type Spelling = 'snake' | 'camel' | 'both';
export const spelling: fc.Arbitrary<Spelling> = fc.constantFrom<Spelling>('snake', 'snake', 'snake', 'snake', 'camel', 'both');

/** Every field name a body takes, and their aliases: what a near miss is near to. */
const FIELD_NAMES: readonly string[] = [
  ...new Set([...Object.values(BODY_FIELDS).flat(), ...FIELD_ALIASES.flatMap(([alias, name]) => [alias, name])]),
];

/**
 * A near miss of a field name: one letter dropped, doubled or changed, two swapped, the case or
 * the separator changed (`versoin`, `Version`, `question-id`, `currentquestion`). Never a name a
 * body takes.
 */
export const nearMissName: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...FIELD_NAMES), fc.constantFrom('drop', 'double', 'swap', 'change', 'upper', 'dash', 'squash'), fc.nat())
  .map(([name, how, n]) => {
    const i = n % name.length;
    switch (how) {
      case 'drop':
        return name.slice(0, i) + name.slice(i + 1);
      case 'double':
        return name.slice(0, i) + name[i] + name.slice(i);
      case 'swap':
        return i + 1 < name.length ? name.slice(0, i) + name[i + 1] + name[i] + name.slice(i + 2) : name + 's';
      case 'change':
        return name.slice(0, i) + (name[i] === 'x' ? 'y' : 'x') + name.slice(i + 1);
      case 'upper':
        return name[0].toUpperCase() + name.slice(1);
      case 'dash':
        return name.includes('_') ? name.replace(/_/g, '-') : `${name}_`;
      default:
        return name.replace(/_/g, '').toLowerCase();
    }
  })
  .filter((name) => !FIELD_NAMES.includes(name) && notProto(name));

/** Extra keys the contract does not define (refused, by name): near misses of real ones, and some named like Object.prototype members. */
export const extraEntries: fc.Arbitrary<Array<[string, string]>> = fc.oneof(
  // mostly none: a body with an unknown field is refused, and the other fields need testing too
  { weight: 3, arbitrary: fc.constant<Array<[string, string]>>([]) },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.tuple(
        fc
          .oneof(
            fc.constantFrom(...OBJECT_KEYS, ...SQL_STRINGS, 'status', 'id', 'answers_count', '\ud800'),
            nearMissName,
            fc.string({ unit: 'grapheme', maxLength: 10 }),
          )
          .filter((name) => notProto(name) && !FIELD_NAMES.includes(name)),
        hostileValueText,
      ),
      { minLength: 1, maxLength: 2 },
    ),
  },
);

/** An x-request-id header: well-formed (echoed) or hostile (replaced), or none. */
export const requestIdHeader: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9-]{1,64}$/) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constantFrom(
        '<script>alert(1)</script>',
        "'; drop table quiz_sessions; --",
        'id with spaces',
        '{"json":1}',
        '../../etc/passwd',
        'a'.repeat(300),
      ),
      fc
        .string({ unit: 'binary-ascii', minLength: 1, maxLength: 40 })
        .filter((s) => /^[\x21-\x7e]+$/.test(s) && /[^A-Za-z0-9._:-]/.test(s)),
    ),
  },
);
