import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { LOG_FLUSH_INTERVAL_MS, STDOUT_BUFFER_CHARS } from '../src/shared/logger';
import { waitFor } from './support/harness';
import { killAllProcesses, MAIN_JS, runStores, spawnProcess, startProcess } from './support/processes';

/*
 * The log's writer as the processes use it (logger.ts createStdioSink: sonic-boom on fd 1 and 2,
 * stdout lines buffered): lines come out promptly when the process is quiet, exact and complete at
 * volume, each on its stream, and nothing held is lost when the process exits, by any path short
 * of SIGKILL. Run against the build (scripts/test.sh builds first).
 */

/** The compiled logger, which a child process requires. */
const LOGGER_JS = path.join(path.dirname(MAIN_JS), 'shared/logger.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `body` in a node process after `const logger = require(<the compiled logger>)` and
 * `const log = logger.createLogger('debug', 'test')`; collects its stdout and stderr apart. With
 * `stallReadingMs`, its stdout is not read for that long (the pipe fills up, and the writer meets
 * a full pipe).
 */
function runLogging(body: string, { stallReadingMs = 0, timeoutMs = 20_000 } = {}): Promise<Run> {
  const script = `const logger = require(${JSON.stringify(LOGGER_JS)});\nconst log = logger.createLogger('debug', 'test');\n${body}`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  if (stallReadingMs > 0) {
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), stallReadingMs);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    }),
  );
}

const lines = (text: string): string[] => text.split('\n').slice(0, -1);
/** The lines `n` info lines `info <i>` make. */
const infoLines = (n: number) => Array.from({ length: n }, (_v, i) => `[session-service:test] info ${i}`);

describe('the writer, in a process of its own', () => {
  test('a line logged by a quiet process is out within the flush interval, while the process runs on', async () => {
    // the child logs one line, reports (synchronously, on stderr) when it did, and lives on
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const log = require(${JSON.stringify(LOGGER_JS)}).createLogger('info', 'test');
         setTimeout(() => { require('fs').writeSync(2, 'logging\\n'); log.info('one quiet line'); }, 200);
         setTimeout(() => {}, 10000);`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const loggedAt = new Promise<number>((resolve) => child.stderr.once('data', () => resolve(Date.now())));
      const seen = new Promise<{ at: number; text: string }>((resolve) =>
        child.stdout.once('data', (c: Buffer) => resolve({ at: Date.now(), text: c.toString() })),
      );
      const [at, line] = await Promise.all([loggedAt, seen]);
      expect(line.text).toBe('[session-service:test] one quiet line\n');
      // held at most LOG_FLUSH_INTERVAL_MS; the rest of the margin is for a loaded machine
      expect(line.at - at).toBeLessThan(LOG_FLUSH_INTERVAL_MS + 900);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
  });

  // each exit comes in the same tick as the lines, so they are all still held (fewer than
  // STDOUT_BUFFER_CHARS, younger than the flush interval) when it happens
  const exits: Array<[string, string, number]> = [
    ['process.exit()', 'process.exit(3)', 3],
    ['an uncaught exception', `throw new Error('crash')`, 1],
    ['an unhandled rejection', `Promise.reject(new Error('crash'))`, 1],
    ['the end of the event loop', '', 0],
    ['exitAfterLog (main: usage, configuration and fatal errors)', `logger.exitAfterLog(1, '[session-service] fatal: boom')`, 1],
  ];
  test.each(exits)('%s: every line held is written, each on its stream', async (_how, exit, code) => {
    const run = await runLogging(`
      log.warn('a warning');
      log.error('an error');
      for (let i = 0; i < 20; i++) log.info('info ' + i);
      log.debug('a debug line');
      ${exit}
    `);
    expect(run.code).toBe(code);
    expect(infoLines(20).join('\n').length).toBeLessThan(STDOUT_BUFFER_CHARS);
    expect(lines(run.stdout)).toEqual([...infoLines(20), '[session-service:test] DEBUG a debug line']);
    const err = lines(run.stderr);
    expect(err.slice(0, 2)).toEqual(['[session-service:test] WARN a warning', '[session-service:test] ERROR an error']);
    if (exit.startsWith('logger.exitAfterLog')) expect(err.slice(2)).toEqual(['[session-service] fatal: boom']);
    if (exit.startsWith('throw')) expect(run.stderr).toContain('Error: crash');
  });

  test('at volume, with a reader slower than the writer: every line exact, complete, in order and on its stream', async () => {
    // lines of many lengths (some longer than a write: 16 KiB), with multi-byte characters, so
    // partial writes and writes split inside a character would show; logged in bursts like
    // requests; stdout touched first, which makes the pipe non-blocking: a full pipe is EAGAIN.
    // Ends with exitAfterLog, as main's fatal path does, right after the last line.
    const run = await runLogging(
      `
      process.stdout; process.stderr;
      const N = 30000;
      const text = (i) => 'line ' + i + ' ' + (i % 997 === 0 ? 'é€😀'.repeat(6000) : 'x'.repeat(i % 300)) + ' é€😀 end';
      let i = 0;
      const burst = () => {
        for (let k = 0; k < 50 && i < N; k++, i++) {
          if (i % 100 === 0) log.warn(text(i)); else log.info(text(i));
        }
        if (i < N) setImmediate(burst);
        else logger.exitAfterLog(0, 'done');
      };
      burst();
    `,
      { stallReadingMs: 1500, timeoutMs: 60_000 },
    );
    expect(run.code).toBe(0);
    const text = (i: number) => `line ${i} ${i % 997 === 0 ? 'é€😀'.repeat(6000) : 'x'.repeat(i % 300)} é€😀 end`;
    const expectedOut: string[] = [];
    const expectedErr: string[] = [];
    for (let i = 0; i < 30000; i++) {
      if (i % 100 === 0) expectedErr.push(`[session-service:test] WARN ${text(i)}`);
      else expectedOut.push(`[session-service:test] ${text(i)}`);
    }
    expectedErr.push('done');
    // compared whole, and line by line first for a readable failure
    const out = lines(run.stdout);
    const err = lines(run.stderr);
    expect(out.length).toBe(expectedOut.length);
    expect(err.length).toBe(expectedErr.length);
    expect(out.findIndex((l, i) => l !== expectedOut[i])).toBe(-1);
    expect(err.findIndex((l, i) => l !== expectedErr[i])).toBe(-1);
    expect(run.stdout).toBe(expectedOut.join('\n') + '\n');
    expect(run.stderr).toBe(expectedErr.join('\n') + '\n');
  }, 90_000);
});

describe('the API process', () => {
  afterAll(() => killAllProcesses());

  /** `[session-service] <request-id> <METHOD> <URL> <STATUS> <duration>ms`, as the seeds have it. */
  const REQUEST_LINE = /^\[session-service\] (\S+) (GET|POST|PATCH|PUT) (\S+) (\d{3}) \d+\.\dms$/;

  test('many requests at once: one exact request line each, none cut or run together', async () => {
    const api = await startProcess('api', { ...runStores(), LOG_LEVEL: 'info' });
    const sent = new Map<string, { url: string; status: number }>();
    const ids = Array.from({ length: 3000 }, (_v, i) => `many-${i}-${randomUUID()}`);
    // 50 at a time: reads of attempts that do not exist (404) and health checks, URLs of many lengths
    for (let at = 0; at < ids.length; at += 50) {
      await Promise.all(
        ids.slice(at, at + 50).map(async (id, k) => {
          const url = (at + k) % 3 === 0 ? `/health?pad=${'p'.repeat((at + k) % 500)}` : `/sessions/${randomUUID()}`;
          const res = await fetch(`${api.url}${url}`, { headers: { 'x-request-id': id } });
          await res.arrayBuffer();
          sent.set(id, { url, status: res.status });
        }),
      );
    }
    // the last lines may be held for the flush interval
    const byId = new Map<string, string[]>();
    await waitFor(
      'a line of every request',
      () => {
        byId.clear();
        for (const line of api.output().split('\n')) {
          const m = REQUEST_LINE.exec(line);
          if (m) byId.set(m[1], [...(byId.get(m[1]) ?? []), line]);
          else if (line.includes('many-')) throw new Error(`a request line out of format: ${JSON.stringify(line)}`);
        }
        return ids.every((id) => byId.has(id));
      },
      5000,
    );
    for (const [id, { url, status }] of sent) {
      expect(byId.get(id)).toHaveLength(1);
      const [, , method, loggedUrl, loggedStatus] = REQUEST_LINE.exec(byId.get(id)![0])!;
      expect([method, loggedUrl, Number(loggedStatus)]).toEqual(['GET', url, status]);
    }
    expect([...sent.values()].filter((s) => s.status === 404).length).toBe(2000);
    await api.kill('SIGKILL');
  }, 60_000);

  test('SIGTERM: the line of a request answered just before it is written, then the shutdown lines, and the exit is clean', async () => {
    const api = await startProcess('api', { ...runStores(), LOG_LEVEL: 'info' });
    const id = `last-${randomUUID()}`;
    const res = await fetch(`${api.url}/health`, { headers: { 'x-request-id': id } });
    expect(res.status).toBe(200);
    // at once, so the line is most likely still held (within the flush interval)
    const exit = await api.kill('SIGTERM');
    expect(exit).toMatchObject({ code: 0, escalated: false });
    const out = api.output().split('\n');
    const at = out.findIndex((l) => l.startsWith(`[session-service] ${id} GET /health 200 `));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(out[at]).toMatch(REQUEST_LINE);
    expect(out.indexOf('[session-service] shutting down (SIGTERM)')).toBeGreaterThan(at);
    expect(out.indexOf('[session-service] shutdown complete')).toBeGreaterThan(out.indexOf('[session-service] shutting down (SIGTERM)'));
  }, 30_000);

  describe('a fatal error at start (its port is taken)', () => {
    let taken: Server;
    beforeAll(async () => {
      taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    });
    afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

    test('exits 1 with every line it logged before the fatal one, and the fatal one', async () => {
      const port = (taken.address() as { port: number }).port;
      const api = await spawnProcess('api', { ...runStores(), LOG_LEVEL: 'info', PORT: port });
      const { code } = await api.exited;
      expect(code).toBe(1);
      const out = api.output().split('\n');
      const warned = out.findIndex((l) => l.startsWith('[session-service] WARN authentication is off'));
      const fatal = out.findIndex((l) => l.startsWith('[session-service] fatal: Error: listen EADDRINUSE'));
      expect(warned).toBeGreaterThanOrEqual(0);
      expect(fatal).toBeGreaterThan(warned);
    }, 30_000);
  });
});
