import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CONTROL_LUA } from '../domain/control';
import { DEADLINE_LUA } from '../domain/deadline';
import { EVENTS_LUA } from '../domain/events';
import { IDLE_LUA } from '../domain/idle';
import { STATUS_LUA } from '../domain/status';
import { VERSION_LUA } from '../domain/version';
import { channelsLua, pubSubOf, type PubSubMode } from './channels';
import { IDEMPOTENCY_LUA } from '../domain/idempotency';
import { FIELDS_LUA } from './sessionCodec';
import type { KeyLayoutName } from './keys';

/*
 * The Redis scripts of session:{id}, one file each under lua/ (as BullMQ lays out its commands):
 * `<name>-<number of keys>.lua`, opening with its KEYS, ARGV and replies. A line
 * `--- @include "<name>"` pulls in a shared piece once: lua/includes/<name>.lua, or one of the
 * pieces built here from the rules' one home:
 *   "rules"   is_running, is_open, due_change, is_idle, version_matches, next_version, the
 *             controls' clock (src/shared/domain/)
 *   "fields"  META_FIELDS, read_fields, is_answer_field (the field table in sessionCodec.ts)
 *   "channels" publish_change: an applied change, out on the attempt's and the quiz's channel (channels.ts)
 *   "idempotency" the TTL of an idempotency record (idempotencyStore.ts)
 * Every script is built twice, once per pub/sub mode (PUBLISH for the single key layout, SPUBLISH
 * for the bucketed one): the "channels" piece is the only difference.
 */

/** The rules as Lua functions, in dependency order (test/rules.agree.test.ts runs them on their own). */
export const RULES_LUA = STATUS_LUA + DEADLINE_LUA + IDLE_LUA + VERSION_LUA + CONTROL_LUA + EVENTS_LUA;

/** Shared pieces generated from TypeScript, so Lua restates no rule and no field list. */
const generatedIncludes = (mode: PubSubMode): Readonly<Record<string, string>> => ({
  rules: RULES_LUA,
  fields: FIELDS_LUA,
  channels: channelsLua(mode),
  idempotency: IDEMPOTENCY_LUA,
});

/** A script ready for ioredis' defineCommand. */
export interface LuaScript {
  numberOfKeys: number;
  lua: string;
}

/**
 * The lua/ folder: beside this module when built (the build copies it into dist), else in the
 * source tree (the bench compiles this module elsewhere and runs from a checkout).
 */
function luaDir(): string {
  const beside = path.join(__dirname, 'lua');
  if (existsSync(beside)) return beside;
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const source = path.join(dir, 'src', 'shared', 'store', 'lua');
    if (existsSync(path.join(dir, 'package.json')) && existsSync(source)) return source;
  }
  throw new Error(`the Lua scripts are missing: no lua/ beside ${__dirname} nor in a source tree above it`);
}

const INCLUDE = /^--- @include "([A-Za-z0-9_-]+)"$/gm;

/** `source` with its includes resolved, each piece once (includes may include others). */
function resolveIncludes(dir: string, source: string, generated: Readonly<Record<string, string>>, seen: Set<string>): string {
  return source.replace(INCLUDE, (_line, name: string) => {
    if (seen.has(name)) return `-- (${name} included above)`;
    seen.add(name);
    const piece = generated[name] ?? readFileSync(path.join(dir, 'includes', `${name}.lua`), 'utf8');
    return `-- include ${name}\n${resolveIncludes(dir, piece, generated, seen)}`;
  });
}

const SCRIPT_NAMES = ['read', 'progress', 'close', 'control', 'note', 'fill', 'markPersisted', 'rebase'] as const;
type ScriptName = (typeof SCRIPT_NAMES)[number];

/** A script's file as read: lua/<name>-<keys>.lua, its includes not yet resolved. */
interface ScriptSource {
  numberOfKeys: number;
  source: string;
}

/** Reads lua/<name>-<keys>.lua. */
function readScript(dir: string, files: readonly string[], name: string): ScriptSource {
  const matching = files.filter((f) => new RegExp(`^${name}-\\d+\\.lua$`).test(f));
  if (matching.length !== 1) throw new Error(`expected one Lua script ${name}-<keys>.lua in ${dir}, found ${matching.length}`);
  const file = matching[0];
  return { numberOfKeys: Number(/-(\d+)\.lua$/.exec(file)![1]), source: readFileSync(path.join(dir, file), 'utf8') };
}

/** The scripts as EVALSHA sends them: each with every include resolved in it. */
function loadAll(dir: string, sources: Readonly<Record<ScriptName, ScriptSource>>, mode: PubSubMode): Record<ScriptName, LuaScript> {
  const generated = generatedIncludes(mode);
  const load = (name: ScriptName): LuaScript => ({
    numberOfKeys: sources[name].numberOfKeys,
    lua: resolveIncludes(dir, sources[name].source, generated, new Set()),
  });
  return Object.fromEntries(SCRIPT_NAMES.map((name) => [name, load(name)])) as Record<ScriptName, LuaScript>;
}

/**
 * The shared pieces a Redis Functions library defines once, when it is loaded, rather than on every
 * call: they hold no state of a call (what they read of the call, KEYS[1], is the library's upvalue
 * set by each function before it runs). "write" is per call (the call's fields, events and reply).
 */
const LOAD_TIME_PIECES = ['rules', 'fields', 'channels', 'idempotency', 'layout', 'render'] as const;

/** The session scripts as one Redis Functions library: its name, its code, and each script's function. */
export interface SessionLibrary {
  name: string;
  code: string;
  functions: Readonly<Record<string, string>>;
}

/**
 * The session scripts as a Redis Functions library (Redis 7): the load-time pieces defined once at
 * `FUNCTION LOAD`, each script a function running its own code (its per-call pieces included) with
 * KEYS and ARGV as the function's keys and arguments. Named after a digest of its code, so API
 * processes of two releases (a rolling upgrade) each call their own.
 */
function libraryOf(dir: string, sources: Readonly<Record<ScriptName, ScriptSource>>, mode: PubSubMode): SessionLibrary {
  const generated = generatedIncludes(mode);
  const shared = new Set<string>();
  const head = LOAD_TIME_PIECES.map((name) => resolveIncludes(dir, `--- @include "${name}"`, generated, shared)).join('\n');
  const bodies = SCRIPT_NAMES.map((name) => ({ name, body: resolveIncludes(dir, sources[name].source, generated, new Set(shared)) }));
  const tail = bodies.map(({ name, body }) => `local function run_${name}()\n${body}\nend`).join('\n');
  const digest = createHash('sha1').update(head).update(tail).digest('hex').slice(0, 12);
  const functions = Object.fromEntries(bodies.map(({ name }) => [name, `quiz_session_${name}_${digest}`]));
  const register = bodies
    .map(
      ({ name }) => `redis.register_function('${functions[name]}', function(keys, args) KEYS, ARGV = keys, args return run_${name}() end)`,
    )
    .join('\n');
  const name = `quiz_sessions_${digest}`;
  return { name, code: `#!lua name=${name}\nlocal KEYS, ARGV\n${head}\n${tail}\n${register}\n`, functions };
}

/** Every session script in both pub/sub modes, read once when this module loads, and their libraries. */
const SCRIPTS = (() => {
  const dir = luaDir();
  const files = readdirSync(dir);
  const sources = Object.fromEntries(SCRIPT_NAMES.map((name) => [name, readScript(dir, files, name)])) as Record<ScriptName, ScriptSource>;
  const both = (mode: PubSubMode) => ({ scripts: loadAll(dir, sources, mode), library: libraryOf(dir, sources, mode) });
  return { plain: both(pubSubOf('single')), sharded: both(pubSubOf('bucketed')) };
})();

/** The session scripts of a key layout (the process's unless given): they publish as its pub/sub mode does. */
export const sessionScripts = (layout?: KeyLayoutName) => SCRIPTS[pubSubOf(layout).name].scripts;
/** The same scripts as one Redis Functions library. */
export const sessionLibrary = (layout?: KeyLayoutName): SessionLibrary => SCRIPTS[pubSubOf(layout).name].library;
/** A session script's name. */
export type SessionScriptName = keyof (typeof SCRIPTS)['plain']['scripts'];
