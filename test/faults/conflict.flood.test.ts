import { useIsolatedStores } from '../support/isolatedStores';
import { assertMatchesOpenApi } from '../support/openapiValidator';
import { printFigures, startAttempts, startFaultStack, waitUntilPersisted } from '../support/faultStack';
import { LoadHttpClient, type LoadResponse } from '../support/http';

/*
 * A flood on one attempt: 100 clients send a write with the same version at the same moment,
 * half through each of two API processes. Redis runs the version check and the write as one
 * script, so exactly one write wins each round and the 99 others get the 409 contract with the
 * attempt as it is after the winner's write. Repeated round after round on the new version.
 */

const CLIENTS = 100;
const ROUNDS = 20;

const stores = useIsolatedStores();

/** The session_version_conflicts_total of every API. */
async function conflictsCounted(urls: readonly string[]): Promise<number> {
  let sum = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const m of text.matchAll(/^session_version_conflicts_total(?:\{[^}]*\})? (\d+)/gm)) sum += Number(m[1]);
  }
  return sum;
}

test('100 concurrent writes with the same version: exactly one wins per round, every other one gets the 409 SESSION_CONFLICT contract with the current attempt', async () => {
  const { apis } = await startFaultStack({ ...stores().env, PERSIST_DELAY_SECONDS: 2 }, 2, 1);
  const urls = apis.map((a) => a.url!);
  const [attempt] = await startAttempts(urls[0], 1);
  const http = new LoadHttpClient({ maxSockets: CLIENTS, timeoutMs: 10_000 });
  const winners: Record<string, unknown> = {};
  let version = attempt.version;
  let conflicts = 0;
  let slowestMs = 0;
  const roundMs: number[] = [];
  const problems: string[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const started = Date.now();
      const responses: Array<LoadResponse & { client: number }> = await Promise.all(
        Array.from({ length: CLIENTS }, async (_, client) => ({
          client,
          ...(await http.call(urls[client % urls.length], 'PATCH', `/api/sessions/${attempt.id}/progress`, {
            answers: { [`q${round}`]: { client, round } },
            current_question: round,
            version,
          })),
        })),
      );
      roundMs.push(Date.now() - started);
      slowestMs = Math.max(slowestMs, ...responses.map((r) => r.ms));
      const won = responses.filter((r) => r.status === 200);
      const lost = responses.filter((r) => r.status === 409);
      const other = responses.filter((r) => r.status !== 200 && r.status !== 409);
      for (const r of other) problems.push(`round ${round}: client ${r.client} got ${r.status} ${r.error ?? ''} ${JSON.stringify(r.body)}`);
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(CLIENTS - 1);
      const winner = won[0];
      expect(winner.body).toMatchObject({
        id: attempt.id,
        version: version + 1,
        answers: { [`q${round}`]: { client: winner.client, round } },
      });
      expect(winner.headers.etag).toBe(`"${version + 1}"`);
      winners[`q${round}`] = { client: winner.client, round };

      for (const r of lost) {
        // the 409 contract: status, code, retry hints in header and body, the current attempt
        expect(r.headers['retry-after']).toBe('1');
        expect(r.headers.etag).toBe(`"${version + 1}"`);
        expect(r.body).toMatchObject({
          error: 'Conflict',
          errorCode: 'SESSION_CONFLICT',
          statusCode: 409,
          retryable: true,
          retryAfterSeconds: 1,
          sessionId: attempt.id,
          session: { id: attempt.id, version: version + 1, status: 'in_progress', answers: winners },
        });
        expect(r.body.message).toBe(`Version conflict: expected version ${version}, current version is ${version + 1}`);
        expect(typeof r.body.requestId).toBe('string');
        assertMatchesOpenApi('PATCH', `/api/sessions/${attempt.id}/progress`, r.status, String(r.headers['content-type']), r.body);
      }
      conflicts += lost.length;
      version += 1;
    }
  } finally {
    http.close();
  }
  const counted = await conflictsCounted(urls);
  const finals = await waitUntilPersisted(stores().knex, urls[0], [attempt.id], 15_000);
  printFigures('conflict-flood', {
    clients: CLIENTS,
    rounds: ROUNDS,
    winners: ROUNDS,
    conflicts,
    conflictsCounted: counted,
    other: problems.length,
    slowestMs,
    roundMs: roundMs.join('/'),
    finalVersion: finals.pg.get(attempt.id)!.version,
  });

  expect(problems).toEqual([]);
  expect(counted).toBe(ROUNDS * (CLIENTS - 1));
  // PostgreSQL ends with the winners' writes, one per round, and nothing else
  expect(finals.pg.get(attempt.id)).toEqual({ version: 1 + ROUNDS, status: 'in_progress', answers: winners });
  expect(finals.api.get(attempt.id)).toMatchObject({ version: 1 + ROUNDS, answers: winners });
}, 90_000);
