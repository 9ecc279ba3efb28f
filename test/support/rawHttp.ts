import http from 'node:http';
import { clientText } from './clientText';
import type { TestResponse } from './harness';
import { assertMatchesOpenApi } from './openapiValidator';

/** A request sent as given: the body's bytes unchanged and only the headers listed. */
export interface RawRequest {
  method: string;
  path: string;
  /** Sent byte for byte; a string is sent as its UTF-8 bytes. */
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** A response with its raw text besides the parsed body. */
export interface RawResponse extends TestResponse {
  text: string;
}

function parsed(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

/**
 * The response as the tests see it; like harness.request, it must be one the OpenAPI document
 * describes, headers included (a GET carrying a body too: the document lists what it answers).
 */
function seen(req: RawRequest, url: string, status: number, headers: Headers, text: string): RawResponse {
  const body = parsed(text);
  assertMatchesOpenApi(req.method, url, status, headers.get('content-type'), body, headers);
  return { status, headers, body, text, sent: clientText(req.path, req.headers, req.body) };
}

/** Reads a node:http response to the end. */
function collect(req: RawRequest, url: string, res: http.IncomingMessage): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('error', reject);
    res.on('end', () => {
      const headers = new Headers();
      for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
      try {
        resolve(seen(req, url, res.statusCode ?? 0, headers, Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/**
 * Sends over node:http on a connection of its own, dropped afterwards: for what fetch will not send
 * (a GET with a body, a chunked upload with a known end), and so that a connection a refused upload
 * leaves unusable cannot leak into the test's next request.
 */
function sendOnOwnConnection(base: string, req: RawRequest, chunked: boolean): Promise<RawResponse> {
  const body = typeof req.body === 'string' ? Buffer.from(req.body) : Buffer.from(req.body ?? []);
  const framing: Record<string, string> = chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = base + req.path;
  return new Promise<RawResponse>((resolve, reject) => {
    const outgoing = http.request(url, { method: req.method, agent, headers: { ...framing, ...req.headers } }, (res) => {
      collect(req, url, res).then(resolve, reject);
    });
    outgoing.on('error', reject);
    const chunkSize = 16 * 1024;
    for (let i = 0; i < body.length; i += chunkSize) outgoing.write(body.subarray(i, i + chunkSize));
    outgoing.end();
  }).finally(() => agent.destroy());
}

/**
 * Sends a request exactly as described (no JSON encoding, no default content-type) and returns the
 * status, headers and parsed body. fetch adds only content-length; a GET with a body goes over node:http.
 */
export async function sendRaw(base: string, req: RawRequest): Promise<RawResponse> {
  if (req.body !== undefined && (req.method === 'GET' || req.method === 'HEAD')) return sendOnOwnConnection(base, req, false);
  const res = await fetch(base + req.path, { method: req.method, headers: req.headers ?? {}, body: req.body });
  return seen(req, base + req.path, res.status, res.headers, await res.text());
}

/** A request body streamed in chunks with no content-length (transfer-encoding: chunked). */
export function sendChunked(
  base: string,
  method: string,
  path: string,
  body: Uint8Array,
  headers: Record<string, string>,
): Promise<RawResponse> {
  return sendOnOwnConnection(base, { method, path, body, headers }, true);
}

/** A JSON request body sent as it is: `text` with content-type application/json. */
export function jsonRequest(method: string, path: string, text: string | undefined, headers: Record<string, string> = {}): RawRequest {
  return { method, path, body: text, headers: text === undefined ? headers : { 'content-type': 'application/json', ...headers } };
}
