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

/** Loads lua/<name>-<keys>.lua. */
function loadScript(dir: string, files: readonly string[], generated: Readonly<Record<string, string>>, name: string): LuaScript {
  const matching = files.filter((f) => new RegExp(`^${name}-\\d+\\.lua$`).test(f));
  if (matching.length !== 1) throw new Error(`expected one Lua script ${name}-<keys>.lua in ${dir}, found ${matching.length}`);
  const file = matching[0];
  const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)![1]);
  return { numberOfKeys, lua: resolveIncludes(dir, readFileSync(path.join(dir, file), 'utf8'), generated, new Set()) };
}

function loadAll(dir: string, files: readonly string[], mode: PubSubMode) {
  const generated = generatedIncludes(mode);
  const load = (name: string) => loadScript(dir, files, generated, name);
  return {
    read: load('read'),
    progress: load('progress'),
    close: load('close'),
    control: load('control'),
    note: load('note'),
    fill: load('fill'),
    markPersisted: load('markPersisted'),
    rebase: load('rebase'),
  };
}

/** Every session script in both pub/sub modes, read once when this module loads. */
const SCRIPTS = (() => {
  const dir = luaDir();
  const files = readdirSync(dir);
  return { plain: loadAll(dir, files, pubSubOf('single')), sharded: loadAll(dir, files, pubSubOf('bucketed')) };
})();

/** The session scripts of a key layout (the process's unless given): they publish as its pub/sub mode does. */
export const sessionScripts = (layout?: KeyLayoutName) => SCRIPTS[pubSubOf(layout).name];
/** A session script's name. */
export type SessionScriptName = keyof (typeof SCRIPTS)['plain'];
