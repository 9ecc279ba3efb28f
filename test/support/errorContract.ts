import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { ERROR_RESPONSES, startConflictResponse } from '../../src/api/schemas/responses';
import { maskClientText } from './clientText';
import { type TestResponse } from './http';

/** The error codes a zod error schema allows (its errorCode: a literal or an enum, per branch of a union). */
function codesOf(schema: z.ZodType): string[] {
  type Branch = { properties: { errorCode: { const?: string; enum?: string[] } } };
  const json = z.toJSONSchema(schema, { io: 'input' }) as unknown as Branch & { oneOf?: Branch[] };
  return (json.oneOf ?? [json]).flatMap((b) =>
    b.properties.errorCode.const !== undefined ? [b.properties.errorCode.const] : b.properties.errorCode.enum!,
  );
}

/** The error codes the contract allows for each status: the schemas of src/api/schemas/responses.ts (a start's 409 too). */
export const ERROR_CODES_BY_STATUS: Readonly<Record<number, readonly string[]>> = Object.fromEntries(
  Object.entries(ERROR_RESPONSES).map(([status, schema]) => [
    Number(status),
    [...new Set([...codesOf(schema), ...(status === '409' ? codesOf(startConflictResponse) : [])])],
  ]),
);

/** A stack frame, a module path or an SQL statement: what an error body must never show. */
const INTERNALS = /\n\s+at |node_modules|\.ts:\d+|\.js:\d+|\binsert into\b|\bselect .* from\b|ReplyError/i;

/**
 * The message with the client's own input masked, when it looks internal at all: a message may
 * echo what the client sent (the question id it got wrong, the path it asked for), and a client's
 * SQL-looking key is not SQL the service wrote. Masking only what the client sent keeps the check
 * strict for every word the service writes itself.
 */
function messageWithoutEcho(res: TestResponse, message: string): string {
  return INTERNALS.test(message) && res.sent ? maskClientText(message, res.sent) : message;
}

/**
 * Asserts the error contract for `status` (and `errorCode` when given): the body
 * `{error, errorCode, message, statusCode, requestId, retryable}` with statusCode equal to the HTTP
 * status, requestId equal to the x-request-id header, a code the status allows, nothing internal.
 * Throws (via expect) with the response in the message, so a counterexample shows what came back.
 */
export function expectErrorContract(res: TestResponse, status: number, errorCode?: string): Record<string, unknown> {
  const seen = `${res.status} ${JSON.stringify(res.body)?.slice(0, 500)}`;
  if (res.status !== status) throw new Error(`expected HTTP ${status}${errorCode ? ` ${errorCode}` : ''}, got ${seen}`);
  const body = res.body as Record<string, unknown>;
  if (body === null || typeof body !== 'object') throw new Error(`error body is not JSON: ${seen}`);
  const requestId = res.headers.get('x-request-id');
  expect(requestId).toEqual(expect.any(String));
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(body).toEqual(
    expect.objectContaining({
      error: STATUS_CODES[status],
      errorCode: errorCode ?? expect.any(String),
      message: expect.any(String),
      statusCode: status,
      requestId,
      retryable: expect.any(Boolean),
    }),
  );
  expect(ERROR_CODES_BY_STATUS[status]).toContain(body.errorCode);
  expect((body.message as string).length).toBeGreaterThan(0);
  expect(messageWithoutEcho(res, body.message as string)).not.toMatch(INTERNALS);
  return body;
}

/**
 * Asserts a 400 VALIDATION_ERROR whose message names one of `fields` (the fields the input got
 * wrong; several may be wrong at once and the service names the first it finds).
 */
export function expectValidationErrorNaming(res: TestResponse, fields: readonly string[]): Record<string, unknown> {
  const body = expectErrorContract(res, 400, 'VALIDATION_ERROR');
  const message = body.message as string;
  if (!fields.some((field) => message.includes(field))) {
    throw new Error(`400 message ${JSON.stringify(message)} names none of ${JSON.stringify(fields)}`);
  }
  return body;
}
