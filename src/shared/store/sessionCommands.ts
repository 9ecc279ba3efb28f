import { Command, ReplyError } from 'ioredis';
import { isCluster, type RedisClient } from '../redis';
import { sessionLibrary, sessionScripts, type SessionLibrary } from './luaScripts';

/*
 * The session scripts as commands of a connection (sessionStore.ts SessionCommands names them):
 * `sessionProgress(...)` and the others.
 *
 * On a Redis with Functions (7.0 and later) each is an FCALL of the session library
 * (luaScripts.ts sessionLibrary): its shared pieces (the rules, the field table, the channels, the
 * render) are defined once, when the library is loaded, not on every call as an EVALSHA defines
 * them (about 5–8 µs of a progress write's Redis time, docs/BENCHMARKS.md). The library is loaded
 * by the first call that finds it missing (`FUNCTION LOAD`, on every master of a cluster); Redis
 * replicates it and keeps it in its RDB and AOF, so a replica promoted by a failover has it, and a
 * Redis that lost it (a restart without persistence, `FUNCTION FLUSH`, a new master) gets it again
 * the same way. Where Functions are not there (Redis 6) or not allowed (an ACL without `FUNCTION`
 * or `FCALL`), the connection keeps to EVALSHA, with EVAL on NOSCRIPT, as ioredis sends scripts.
 *
 * A call in a pipeline before the connection's first call has found out is sent as a script. One
 * that finds the library missing later (the server lost it) loads it and fails with TRYAGAIN, not
 * sent again on its own: the pipeline's other commands (WAIT after an acknowledged write) ran
 * before it, so its caller sends the pipeline again (sessionStore.ts `acknowledged`) or fails as on
 * any transient reply (a write-behind job is retried).
 */

/** What ioredis' Script holds (not in its typings): the Command class it sends EVALSHA as, and how it sends. */
interface ScriptInternals {
  numberOfKeys: number;
  Command: CommandClass;
  execute(container: Container, args: unknown[], options: CommandOptions, callback?: unknown): unknown;
}

type CommandOptions = { keyPrefix?: string; replyEncoding?: string | null };
type CommandClass = new (name: string, args: unknown[], options: CommandOptions, callback?: unknown) => Command;
/** A connection, or a pipeline of one (its `redis`). */
type Container = RedisClient & { isPipeline?: boolean; redis?: RedisClient; sendCommand(command: Command): unknown };

const NO_ARGUMENTS: never[] = [];

/**
 * ioredis' Command copies its arguments with Array.prototype.flat, which V8 makes slow: 2.3 µs for
 * a progress write's 16, about 1.5 % of the API's CPU per write. A script's arguments are flat
 * already (ours never nest arrays), so its command takes them as they are (flattened only if one is
 * an array), then makes them text as the constructor does. Not with a key prefix (ioredis prefixes
 * the keys in that constructor; none is used).
 */
function withFlatArguments(Base: CommandClass): CommandClass {
  return class FlatArgumentsCommand extends Base {
    constructor(name: string, args: unknown[], options: CommandOptions, callback?: unknown) {
      if (options.keyPrefix) {
        super(name, args, options, callback);
        return;
      }
      super(name, NO_ARGUMENTS, options, callback);
      this.args = (args.some(Array.isArray) ? args.flat() : args) as typeof this.args;
      // what the constructor did to its (empty) arguments: the number of keys becomes text
      this.stringifyArguments();
    }
  };
}

const FlatCommand = withFlatArguments(Command as unknown as CommandClass);

/** FCALL's reply when the server has no such function (the library is not loaded there). */
const FUNCTION_MISSING = /^ERR Function not found/;
/** Replies that say the server has no Functions, or this user may not use them. */
const NO_FUNCTIONS = /^(ERR unknown command|NOPERM)/;
/** FUNCTION LOAD's reply when the library is there already (another process loaded it). */
const ALREADY_LOADED = /^ERR Library '.*' already exists/;

/** Whether a connection calls the session scripts as functions: on, off, or not known until its first call. */
interface FunctionsUse {
  mode: 'unknown' | 'on' | 'off';
  /** The library's load under way, which concurrent calls that found it missing share. */
  loading: Promise<void> | null;
}

const uses = new WeakMap<RedisClient, FunctionsUse>();

const useOf = (client: RedisClient): FunctionsUse => {
  let use = uses.get(client);
  if (!use) uses.set(client, (use = { mode: 'unknown', loading: null }));
  return use;
};

/** How a connection calls the session scripts: 'function' (FCALL), 'script' (EVALSHA), or not yet known. */
export const sessionCallMode = (client: RedisClient): 'function' | 'script' | 'unknown' => {
  const mode = useOf(client).mode;
  return mode === 'on' ? 'function' : mode === 'off' ? 'script' : 'unknown';
};

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Loads the library on the connection's server (every master of a cluster): `on` when each has it
 * after, `off` when one says it has no Functions or refuses them. Any other failure (a server
 * unreachable) is thrown and decides nothing.
 */
async function loadLibrary(client: RedisClient, library: SessionLibrary, use: FunctionsUse): Promise<void> {
  const servers: RedisClient[] = isCluster(client) ? client.nodes('master') : [client];
  let refused = false;
  await Promise.all(
    servers.map(async (server) => {
      try {
        await server.call('FUNCTION', 'LOAD', library.code);
      } catch (err) {
        const message = messageOf(err);
        if (ALREADY_LOADED.test(message)) return;
        if (NO_FUNCTIONS.test(message)) {
          refused = true;
          return;
        }
        throw err;
      }
    }),
  );
  use.mode = refused ? 'off' : 'on';
}

/** The library loaded (once, for all the calls that found it missing meanwhile). */
function ensureLoaded(client: RedisClient, library: SessionLibrary, use: FunctionsUse): Promise<void> {
  use.loading ??= loadLibrary(client, library, use).finally(() => {
    use.loading = null;
  });
  return use.loading;
}

/**
 * Makes a script call its function (FCALL) where the connection can, with the script's own EVALSHA
 * where it cannot (see above).
 */
function asFunction(script: ScriptInternals, library: SessionLibrary, functionName: string): void {
  const asScript = script.execute.bind(script);
  script.execute = (container, args, options, callback) => {
    const client = container.isPipeline ? container.redis! : container;
    const use = useOf(client);
    // in a pipeline, before the connection's first call has told: the script (EVAL on the socket's
    // first use), which never needs the pipeline sent again
    if (use.mode === 'off' || (use.mode === 'unknown' && container.isPipeline)) return asScript(container, args, options, callback);
    const fcallOf = () => new FlatCommand('fcall', [functionName, script.numberOfKeys, ...args], { ...options });
    const fcall = fcallOf();
    fcall.promise = fcall.promise.then(
      (reply) => {
        use.mode = 'on';
        return reply;
      },
      async (err: unknown) => {
        const message = messageOf(err);
        if (!FUNCTION_MISSING.test(message) && !(use.mode === 'unknown' && NO_FUNCTIONS.test(message))) throw err;
        if (NO_FUNCTIONS.test(message)) use.mode = 'off';
        else await ensureLoaded(client, library, use);
        if (container.isPipeline) throw new ReplyError('TRYAGAIN the session functions were loaded: send the pipeline again');
        if (use.mode === 'off') return asScript(client, [...args], { ...options });
        const again = fcallOf();
        client.sendCommand(again);
        return again.promise;
      },
    );
    if (typeof callback === 'function') fcall.promise.then((r) => callback(null, r), callback as (err: unknown) => void);
    return container.sendCommand(fcall);
  };
}

const defined = new WeakSet<RedisClient>();

/** The command a session script is registered as: `read` -> `sessionRead`. */
const commandOf = (name: string): string => `session${name[0].toUpperCase()}${name.slice(1)}`;

/**
 * Registers the session scripts on a connection as SessionCommands names them: those of the
 * process's key layout, which publish as its pub/sub mode does; as functions where the server has
 * them, else as scripts (see above).
 */
export function defineSessionCommands(redis: RedisClient): void {
  if (defined.has(redis)) return;
  defined.add(redis);
  const library = sessionLibrary();
  for (const [name, script] of Object.entries(sessionScripts())) {
    redis.defineCommand(commandOf(name), script);
    const internals = (redis.scriptsSet as Record<string, ScriptInternals>)[commandOf(name)];
    internals.Command = withFlatArguments(internals.Command);
    asFunction(internals, library, library.functions[name]);
  }
}
