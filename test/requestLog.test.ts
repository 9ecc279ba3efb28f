import { randomUUID } from 'node:crypto';
import { buildSession, request, startTestApi, waitFor, type TestApi } from './support/harness';

/** Lines the service wrote to stdout while a test ran. */
const logged: string[] = [];

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ LOG_LEVEL: 'info' });
  const write = process.stdout.write.bind(process.stdout);
  jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = String(chunk);
    if (!text.startsWith('[session-service]')) return write(chunk, ...rest);
    logged.push(text);
    return true;
  }) as typeof process.stdout.write);
});
afterAll(async () => {
  await api.close();
  jest.restoreAllMocks();
});
beforeEach(() => {
  logged.length = 0;
});

/** The log lines that carry this request id. */
const linesFor = (requestId: string) => logged.filter((line) => line.includes(` ${requestId} `));

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
