import { randomUUID } from 'node:crypto';
import type { LogSink, LogStream } from '../src/shared/logger';
import { buildSession, startTestApi, waitFor, type TestApi } from './support/harness';
import { request } from './support/http';

/*
 * The request line's format, in-process: the API's log goes to a sink that keeps its lines. The
 * writer the processes use (sonic-boom on stdout and stderr) is tested in test/logWriter.test.ts.
 */

/** Lines the service logged while a test ran, with the stream each went to. */
const logged: Array<{ stream: LogStream; line: string }> = [];
const sink: LogSink = {
  write: (stream, line) => void logged.push({ stream, line }),
  flush: async () => undefined,
  flushSync: () => undefined,
};

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ LOG_LEVEL: 'info' }, undefined, sink);
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  logged.length = 0;
});

/** The log lines that carry this request id. */
const linesFor = (requestId: string) =>
  logged.filter(({ stream, line }) => stream === 'stdout' && line.includes(` ${requestId} `)).map((l) => l.line);

test('every request writes one line: [session-service] <request-id> <METHOD> <URL> <STATUS> <duration>ms', async () => {
  const s = await buildSession(api);
  const requestId = `log-${randomUUID()}`;
  await request(api.url, 'GET', `/api/sessions/${s.id}?from=test`, undefined, { 'x-request-id': requestId });
  await waitFor('the log line', () => linesFor(requestId).length > 0);
  expect(linesFor(requestId)).toHaveLength(1);
  const [line] = linesFor(requestId);
  expect(line.startsWith(`[session-service] ${requestId} GET /api/sessions/${s.id}?from=test 200 `)).toBe(true);
  expect(line).toMatch(/ 200 \d+\.\dms\n$/);
});

test('a failed request logs the status it answered with', async () => {
  const requestId = `log-${randomUUID()}`;
  const res = await request(api.url, 'PATCH', `/sessions/${randomUUID()}/progress`, { current_question: 1 }, { 'x-request-id': requestId });
  expect(res.status).toBe(404);
  await waitFor('the log line', () => linesFor(requestId).length > 0);
  expect(linesFor(requestId)).toHaveLength(1);
  expect(linesFor(requestId)[0]).toMatch(
    new RegExp(`^\\[session-service\\] ${requestId} PATCH /sessions/[0-9a-f-]{36}/progress 404 \\d+\\.\\dms\\n$`),
  );
});
