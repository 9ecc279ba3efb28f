/*
 * A client of the service as its users would write one: types generated from /openapi.json with
 * openapi-typescript (./schema, made by test/openapi.client.test.ts), requests through
 * openapi-fetch. The test typechecks this file with tsc (strict) against the generated types, then
 * runs it against a real API process: start, save, a stale save answered 409 whose `session` is
 * merged (no read), the save again, complete. It prints what it saw as JSON.
 *
 * Kept out of the project's own typecheck (tsconfig.json excludes this folder): ./schema exists
 * only in the test's temporary copy.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

type Attempt = components['schemas']['Attempt'];

async function main(): Promise<void> {
  const [baseUrl, userId, quizId] = process.argv.slice(2);
  const client = createClient<paths>({ baseUrl });
  const seen: Array<{ step: string; status: number; version?: number }> = [];

  const started = await client.POST('/api/sessions/start', { body: { user_id: userId, quiz_id: quizId, time_limit_seconds: 600 } });
  if (started.error !== undefined) throw new Error(`start: ${started.response.status} ${started.error.errorCode}`);
  let attempt: Attempt = started.data;
  seen.push({ step: 'start', status: started.response.status, version: attempt.version });
  const location = started.response.headers.get('location');

  const save = (answers: Record<string, unknown>, version: number) =>
    client.PATCH('/api/sessions/{id}/progress', { params: { path: { id: attempt.id } }, body: { answers, version } });

  const first = await save({ q1: 'A' }, attempt.version);
  if (first.error !== undefined) throw new Error(`save: ${first.response.status} ${first.error.errorCode}`);
  attempt = first.data;
  seen.push({ step: 'save', status: first.response.status, version: attempt.version });

  // another device of the same student saves meanwhile (the camelCase alias, as an older client sends it)
  const other = await client.PUT('/api/sessions/{id}/progress', {
    params: { path: { id: attempt.id } },
    body: { questionId: 'q2', answer: 'B', expectedVersion: attempt.version },
  });
  if (other.error !== undefined) throw new Error(`other device: ${other.response.status} ${other.error.errorCode}`);
  seen.push({ step: 'other device', status: other.response.status, version: other.data.version });

  // this device's save is now stale
  const stale = await save({ q3: 'C' }, attempt.version);
  if (stale.error === undefined) throw new Error(`a stale save answered ${stale.response.status}`);
  const error = stale.error;
  // @ts-expect-error -- not every error of this route carries the attempt: the error code tells which
  void error.session;
  if (error.errorCode !== 'SESSION_CONFLICT') throw new Error(`a stale save answered ${error.errorCode}`);
  // a 409 of an attempt's routes always carries the attempt as it is now: no check, no read
  const current: Attempt = error.session;
  seen.push({ step: 'conflict', status: stale.response.status, version: error.session.version });
  const etag = stale.response.headers.get('etag');
  if (etag !== `"${error.session.version}"`) throw new Error(`the 409's ETag ${etag} is not its session's version`);

  // merge: the server's attempt, with this device's change on top; save again at its version
  attempt = { ...current, answers: { ...current.answers, q3: 'C' } };
  const retried = await save({ q3: attempt.answers.q3 }, current.version);
  if (retried.error !== undefined) throw new Error(`retry: ${retried.response.status} ${retried.error.errorCode}`);
  attempt = retried.data;
  seen.push({ step: 'retry', status: retried.response.status, version: attempt.version });

  const done = await client.POST('/api/sessions/{id}/complete', {
    params: { path: { id: attempt.id } },
    body: { version: attempt.version },
  });
  if (done.error !== undefined) throw new Error(`complete: ${done.response.status} ${done.error.errorCode}`);
  seen.push({ step: 'complete', status: done.response.status, version: done.data.version });

  process.stdout.write(JSON.stringify({ seen, location, attempt: done.data }));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
