import { writeSync } from 'node:fs';
import SonicBoom from 'sonic-boom';
import type { Config } from './config';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;

/** A plain line logger to stdout/stderr, filtered by LOG_LEVEL. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** True when messages of this level are written. */
  enabled(level: keyof typeof LEVELS): boolean;
  /** Resolves once every line logged so far is written out, in order (its sink's flush). */
  flush(): Promise<void>;
}

/** Which stream a line goes to: debug and info to stdout, warn and error to stderr. */
export type LogStream = 'stdout' | 'stderr';

/** Where a logger's lines go: whole lines, each ending in `\n`. */
export interface LogSink {
  write(stream: LogStream, line: string): void;
  /** Resolves once everything written so far is out, in order (or cannot be: a closed pipe). */
  flush(): Promise<void>;
  /** Writes out what is buffered now, synchronously: the last resort when the process exits. */
  flushSync(): void;
}

/** Characters of stdout lines held before they are handed to the writer (one write(2) per this much at load). */
export const STDOUT_BUFFER_CHARS = 4096;
/** A buffered line is written at most this long after it was logged, however quiet the process. */
export const LOG_FLUSH_INTERVAL_MS = 100;
/** How long an orderly flush may wait for the writes in flight before the exit writes the rest. */
const FLUSH_WAIT_MS = 2000;

/** How long the exit hook lets a write in flight finish before it writes the rest itself. */
const IN_FLIGHT_WAIT_MS = 100;

/** One of the process's output streams: lines held in `pending`, then written by sonic-boom. */
interface Output {
  fd: 1 | 2;
  boom: SonicBoom;
  pending: string;
  /** Bytes handed to sonic-boom, and bytes it reported written: more handed means a write may be in flight. */
  handed: number;
  written: number;
  /** The reader is gone (EPIPE, …): further lines are dropped. */
  broken: boolean;
}

/** Blocks the thread for `ms` (the exit hook's only way to let libuv's pool finish a write). */
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Writes all of `text` to `fd` synchronously, waiting out a full non-blocking pipe (EAGAIN). */
function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      sleepSync(1);
    }
  }
}

/**
 * The process's stdout and stderr through asynchronous writers (sonic-boom on fd 1 and 2): a line
 * costs a string append, not a write(2), and the writes happen off the main thread (libuv's pool;
 * a full pipe delays the log, not the requests). stdout lines (the per-request lines) are held
 * until STDOUT_BUFFER_CHARS are, and at most LOG_FLUSH_INTERVAL_MS (an unref'd timer: it keeps no
 * process alive). The buffer is this module's, not sonic-boom's `minLength`: that one measures the
 * held text's byte length on every write, which costs more per line than it saves (measured, the
 * per-request line at load). stderr lines (warnings and errors: rare, and wanted at once) go to
 * the writer at once; the stdout lines before one are handed on first, so the two stay near their
 * order when they share a pipe.
 *
 * What is still held when the process exits, however it exits short of SIGKILL (process.exit, the
 * end of the event loop, an uncaught exception), is written synchronously by an exit hook, after a
 * write still in flight had IN_FLIGHT_WAIT_MS to land (so the order holds); the orderly paths
 * (Shutdown, exitAfterLog) await flush() before they exit, which waits for the writes in flight
 * themselves. A stream whose reader is gone is dropped: the service does not stop for its log.
 */
export function createStdioSink(): LogSink {
  const open = (fd: 1 | 2): Output => {
    const out: Output = { fd, boom: new SonicBoom({ fd, sync: false }), pending: '', handed: 0, written: 0, broken: false };
    out.boom.on('write', (n: number) => (out.written += n));
    // nowhere left to report it
    out.boom.on('error', () => (out.broken = true));
    return out;
  };
  const streams = { stdout: open(1), stderr: open(2) };
  const write = (out: Output, text: string) => {
    if (out.broken) return;
    out.handed += Buffer.byteLength(text);
    out.boom.write(text);
  };
  const handOn = (out: Output) => {
    if (out.pending === '') return;
    const text = out.pending;
    out.pending = '';
    write(out, text);
  };
  const timer = setInterval(() => handOn(streams.stdout), LOG_FLUSH_INTERVAL_MS);
  timer.unref();
  const live = () => Object.values(streams).filter((s) => !s.broken);
  const sink: LogSink = {
    write(stream, line) {
      if (stream === 'stdout') {
        const out = streams.stdout;
        out.pending += line;
        if (out.pending.length >= STDOUT_BUFFER_CHARS) handOn(out);
        return;
      }
      handOn(streams.stdout);
      write(streams.stderr, line);
    },
    async flush() {
      await Promise.all(
        live().map(
          (s) =>
            new Promise<void>((resolve) => {
              handOn(s);
              const wait = setTimeout(resolve, FLUSH_WAIT_MS);
              wait.unref();
              s.boom.flush(() => {
                clearTimeout(wait);
                resolve();
              });
            }),
        ),
      );
    },
    flushSync() {
      // a write in flight (libuv's pool) would race the synchronous writes below, and a later line
      // could land before it: it is given a moment to finish first (the pool runs on meanwhile)
      if (live().some((s) => s.handed > s.written)) sleepSync(IN_FLIGHT_WAIT_MS);
      for (const s of live()) {
        try {
          // what sonic-boom holds first, then the lines this module holds, written here and now:
          // handed to sonic-boom they would start an asynchronous write, which an exit never waits for
          s.boom.flushSync();
          const text = s.pending;
          s.pending = '';
          writeAllSync(s.fd, text);
        } catch {
          // not open yet, or the reader is gone: nothing more can be done at exit
        }
      }
    },
  };
  process.once('exit', () => sink.flushSync());
  return sink;
}

let stdio: LogSink | undefined;

/** The process's one stdio sink (createStdioSink), made on first use. */
export function stdioSink(): LogSink {
  return (stdio ??= createStdioSink());
}

/**
 * Writes `line` to stderr and exits with `code` once every line logged before it is out (main's
 * usage, configuration and fatal errors): the writer is buffered, and an exit does not wait for
 * its writes in flight.
 */
export async function exitAfterLog(code: number, line: string, sink: LogSink = stdioSink()): Promise<never> {
  sink.write('stderr', `${line}\n`);
  await sink.flush();
  process.exit(code);
}

/** A logger whose lines start with `[session-service]` (the seeds' format) and the process role. */
export function createLogger(level: Config['LOG_LEVEL'], role = '', sink?: LogSink): Logger {
  const min = LEVELS[level];
  const tag = role ? `[session-service:${role}]` : '[session-service]';
  // a silent logger opens no writer
  const to = (): LogSink => (sink ??= stdioSink());
  const write = (lvl: keyof typeof LEVELS, msg: string) => {
    if (LEVELS[lvl] < min) return;
    if (lvl === 'info') to().write('stdout', `${tag} ${msg}\n`);
    else to().write(LEVELS[lvl] >= LEVELS.warn ? 'stderr' : 'stdout', `${tag} ${lvl.toUpperCase()} ${msg}\n`);
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    enabled: (lvl) => LEVELS[lvl] >= min,
    flush: () => (sink ?? stdio)?.flush() ?? Promise.resolve(),
  };
}
