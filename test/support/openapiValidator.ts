import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import { z } from 'zod';
import { openApiDocument } from '../../src/api/openapi';
import { ERROR_RESPONSES } from '../../src/api/schemas/responses';

type Header = { $ref?: string; required?: boolean };
type Response = { headers?: Record<string, Header>; content?: Record<string, { schema: Record<string, unknown> }> };
type Operation = { responses: Record<string, Response> };
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components: { headers: Record<string, Header> };
};

const doc = openApiDocument() as unknown as Doc;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ ...(doc as object), $id: 'openapi.json' });

const routes = Object.keys(doc.paths).map((template) => ({
  template,
  params: (template.match(/\{/g) ?? []).length,
  regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));
// a literal segment wins over a parameter: /api/sessions/start before /api/sessions/{id}
routes.sort((a, b) => a.params - b.params);

const compiled = new Map<string, ValidateFunction>();
function validator(ref: string): ValidateFunction {
  let v = compiled.get(ref);
  if (!v) {
    const pointer = ref.startsWith('#') ? `openapi.json${ref}` : ref;
    v = ajv.compile({ $ref: pointer });
    compiled.set(ref, v);
  }
  return v;
}

/**
 * The response headers the service sets on purpose (the rest are Node's and Koa's own: date,
 * content-type, content-length, connection, keep-alive, and the event stream's cache-control and
 * x-accel-buffering). Each that a response carries must be one its operation declares for the status.
 */
export const CONTRACT_HEADERS = ['x-request-id', 'etag', 'retry-after', 'location', 'idempotent-replayed', 'www-authenticate', 'allow'];

/** The headers a response of the document declares, lower-cased, with whether each is required. */
function declaredHeaders(response: Response): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const resolved = h.$ref ? doc.components.headers[h.$ref.replace('#/components/headers/', '')] : h;
    if (!resolved) throw new Error(`OpenAPI: header ${name} refers to ${h.$ref}, which the document does not have`);
    const lower = name.toLowerCase();
    out.set(lower, (out.get(lower) ?? false) || resolved.required === true);
  }
  return out;
}

/** A response of no operation: the route does not exist (404), or not for this method (405, with `allow`). */
const NO_OPERATION: Record<number, { schema: z.ZodType; headers: Map<string, boolean> }> = {
  404: { schema: ERROR_RESPONSES[404], headers: new Map([['x-request-id', true]]) },
  405: {
    schema: ERROR_RESPONSES[405],
    headers: new Map([
      ['x-request-id', true],
      ['allow', true],
    ]),
  },
};
const noOperationValidators = new Map(
  Object.entries(NO_OPERATION).map(([status, { schema }]) => {
    const json = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
    delete json.$schema;
    return [Number(status), ajv.compile(json)];
  }),
);

/** Every contract header the response sends is declared for it; every header declared required is sent. */
function checkHeaders(declared: Map<string, boolean>, headers: Headers, where: string): void {
  for (const name of CONTRACT_HEADERS) {
    if (headers.has(name) && !declared.has(name))
      throw new Error(`OpenAPI: the ${where} response sends ${name}, which the document does not declare`);
  }
  for (const [name, required] of declared) {
    if (required && !headers.has(name)) throw new Error(`OpenAPI: the ${where} response lacks the ${name} header the document requires`);
  }
}

/**
 * Checks one HTTP response against the OpenAPI document: the operation (by method and path) must
 * document the status, a JSON body must validate against the status's schema (each error status
 * has its own), and with `headers` the response's contract headers must be the ones the document
 * declares for it (x-request-id, ETag, Retry-After, Location, idempotent-replayed,
 * WWW-Authenticate, Allow). Responses of no operation (unknown route, wrong method) must be the
 * 404 or 405 error contract. Throws with the details.
 */
export function assertMatchesOpenApi(
  method: string,
  url: string,
  status: number,
  contentType: string | null,
  body: unknown,
  headers?: Headers,
): void {
  const path = new URL(url, 'http://x').pathname;
  const route = routes.find((r) => r.regex.test(path) && doc.paths[r.template][method.toLowerCase()]);
  const isJson = (contentType ?? '').includes('json');
  const where = `${method} ${route?.template ?? path} ${status}`;
  if (!route) {
    if (status < 400) throw new Error(`OpenAPI: ${method} ${path} answered ${status} but the document has no such operation`);
    const expected = NO_OPERATION[status];
    const v = noOperationValidators.get(status);
    // the edge answers before any route too: a body refused as such on a path of no operation
    const edge = ({ 400: 'ValidationError', 413: 'PayloadTooLarge', 415: 'UnsupportedMediaType' } as Record<number, string>)[status];
    if (!expected && !edge) throw new Error(`OpenAPI: ${method} ${path} answered ${status}, which no route answers`);
    if (isJson) check(v ?? validator(`#/components/schemas/${edge}`), body, where);
    if (headers && expected) checkHeaders(expected.headers, headers, where);
    return;
  }
  const operation = doc.paths[route.template][method.toLowerCase()];
  const response = operation.responses[String(status)];
  if (!response) throw new Error(`OpenAPI: ${method} ${route.template} answered ${status}, which the document does not list`);
  if (headers) checkHeaders(declaredHeaders(response), headers, where);
  const media = response.content?.['application/json'];
  if (!media || !isJson) return;
  const v = typeof media.schema.$ref === 'string' ? validator(media.schema.$ref) : ajv.compile(media.schema);
  check(v, body, where);
}

function check(v: ValidateFunction, body: unknown, where: string): void {
  if (v(body)) return;
  const problems = (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
  throw new Error(`OpenAPI: the ${where} response does not match the document: ${problems}\n${JSON.stringify(body).slice(0, 500)}`);
}

/** Checks a webhook body a receiver got against the document's `webhooks` entry for its type. */
export function assertWebhookMatchesOpenApi(type: string, body: unknown): void {
  check(validator(`#/webhooks/${type}/post/requestBody/content/application~1json/schema`), body, `webhook ${type}`);
}
