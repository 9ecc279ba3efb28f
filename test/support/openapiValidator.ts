import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import { openApiDocument } from '../../src/api/openapi';

type Operation = { responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }> };
type Doc = { paths: Record<string, Record<string, Operation>> };

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
 * Checks one HTTP response against the OpenAPI document: the operation (by method and path) must
 * document the status, and a JSON body must validate against its schema. Responses of no
 * operation (unknown route, wrong method) must be the error contract. Throws with the details.
 */
export function assertMatchesOpenApi(method: string, url: string, status: number, contentType: string | null, body: unknown): void {
  const path = new URL(url, 'http://x').pathname;
  const route = routes.find((r) => r.regex.test(path) && doc.paths[r.template][method.toLowerCase()]);
  const isJson = (contentType ?? '').includes('json');
  if (!route) {
    if (status < 400) throw new Error(`OpenAPI: ${method} ${path} answered ${status} but the document has no such operation`);
    if (isJson) check(validator('#/components/schemas/Error'), body, `${method} ${path} ${status}`);
    return;
  }
  const operation = doc.paths[route.template][method.toLowerCase()];
  const response = operation.responses[String(status)];
  if (!response) throw new Error(`OpenAPI: ${method} ${route.template} answered ${status}, which the document does not list`);
  const media = response.content?.['application/json'];
  if (!media || !isJson) return;
  const v = typeof media.schema.$ref === 'string' ? validator(media.schema.$ref) : ajv.compile(media.schema);
  check(v, body, `${method} ${route.template} ${status}`);
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
