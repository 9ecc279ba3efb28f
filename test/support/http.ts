import http, { Agent, type IncomingHttpHeaders } from 'node:http';
import { SESSION_PREFIXES } from '../../src/api/routes/sessions';
import { clientText, type ClientText } from './clientText';
import { assertMatchesOpenApi } from './openapiValidator';

/*
 * The one HTTP client of the tests, the bench and the soak, in two modes:
 *
 * - raw mode (request, sendRaw, sendChunked, sessionClient): one request at a time, sent as the
 *   test describes it, and every response checked against the OpenAPI document; what the contract
 *   and API tests use.
 * - load mode (LoadHttpClient, JsonClient, mapConcurrent): keep-alive connections, many requests
 *   at once, no per-response check; what the fault tests' load, the soak and the bench use.
 */

// ---------------------------------------------------------------------------------------------
// raw mode

/** A response as the tests see it: status, headers and the parsed body (text when not JSON). */
export interface TestResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** What the client sent (path, headers, body text and strings), for the leak check. */
  sent?: ClientText;
}

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

/** The JSON in `text`, undefined when empty, the text itself when not JSON. */
function parsed(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

/**
 * The response as the tests see it: it must be one the OpenAPI document describes, headers
 * included (a GET carrying a body too: the document lists what it answers).
 */
function seen(method: string, url: string, status: number, headers: Headers, text: string, sent: ClientText): RawResponse {
  const body = parsed(text);
  assertMatchesOpenApi(method, url, status, headers.get('content-type'), body, headers);
  return { status, headers, body, text, sent };
}

/** A JSON request; returns status, headers and parsed body. A string or byte body is sent as it is. */
export async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<TestResponse> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = (typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body)) as RequestInit['body'];
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const {
    status,
    headers: got,
    body: json,
    sent,
  } = seen(method, base + path, res.status, res.headers, await res.text(), clientText(path, headers, body));
  return { status, headers: got, body: json, sent };
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
        const text = Buffer.concat(chunks).toString('utf8');
        resolve(seen(req.method, url, res.statusCode ?? 0, headers, text, clientText(req.path, req.headers, req.body)));
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
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
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
  const res = await fetch(base + req.path, { method: req.method, headers: req.headers ?? {}, body: req.body as RequestInit['body'] });
  return seen(req.method, base + req.path, res.status, res.headers, await res.text(), clientText(req.path, req.headers, req.body));
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

/** One of the route families the same handlers serve (SESSION_PREFIXES: seed 2's and seed 1's). */
export type RouteFamily = (typeof SESSION_PREFIXES)[number];

type HeaderMap = Record<string, string>;

/** The session endpoints of one route family, as raw-mode calls against an API. */
export interface SessionClient {
  prefix: RouteFamily;
  start(body: unknown, headers?: HeaderMap): Promise<TestResponse>;
  get(id: string, headers?: HeaderMap): Promise<TestResponse>;
  progress(id: string, body: unknown, options?: { method?: 'PATCH' | 'PUT'; headers?: HeaderMap }): Promise<TestResponse>;
  complete(id: string, body?: unknown, headers?: HeaderMap): Promise<TestResponse>;
  abandon(id: string, body?: unknown, headers?: HeaderMap): Promise<TestResponse>;
}

/** A client for the session routes under `prefix` of the API at `api.url`. */
export function sessionClient(api: { url: string }, prefix: RouteFamily): SessionClient {
  return {
    prefix,
    start: (body, headers) => request(api.url, 'POST', `${prefix}/start`, body, headers),
    get: (id, headers) => request(api.url, 'GET', `${prefix}/${id}`, undefined, headers),
    progress: (id, body, options = {}) => request(api.url, options.method ?? 'PATCH', `${prefix}/${id}/progress`, body, options.headers),
    complete: (id, body, headers) => request(api.url, 'POST', `${prefix}/${id}/complete`, body, headers),
    abandon: (id, body, headers) => request(api.url, 'POST', `${prefix}/${id}/abandon`, body, headers),
  };
}

// ---------------------------------------------------------------------------------------------
// load mode

/** One exchange as the load mode reads it: no parsing yet, status 0 when no response came. */
interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Epoch ms when it was sent and when it ended. */
  startedAt: number;
  endedAt: number;
  /** Milliseconds from sending to the end (hrtime). */
  hrMs: number;
  /** 'timeout' when the request ran past its bound; else the network error's code or message. */
  error?: string;
}

/** One HTTP exchange of a load client: status 0 when no response came (network error or timeout). */
export interface LoadResponse {
  status: number;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** From sending to the end of the response (or the failure). */
  ms: number;
  /** Epoch ms when it ended. */
  at: number;
  /** 'timeout' when the request ran past its bound; else the network error's code or message. */
  error?: string;
}

/**
 * A JSON client for load: keep-alive connections (at most `maxSockets`), every request bounded by
 * `timeoutMs` when given (a hang becomes status 0, error 'timeout'). No OpenAPI check per response
 * (the raw mode does one), so it can drive hundreds of requests per second from one process.
 */
export class LoadHttpClient {
  private readonly agent: Agent;

  constructor(private readonly options: { maxSockets: number; timeoutMs?: number }) {
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets });
  }

  /** Sends `method url` with a JSON body (when given); never rejects. */
  protected exchange(url: string, method: string, body: unknown, headers: Record<string, string>): Promise<Exchange> {
    const startedAt = Date.now();
    const startedHr = process.hrtime.bigint();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const done = (r: Pick<Exchange, 'status' | 'headers' | 'text' | 'error'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...r, startedAt, endedAt: Date.now(), hrMs: Number(process.hrtime.bigint() - startedHr) / 1e6 });
      };
      const failed = (err: Error) => done({ status: 0, headers: {}, text: '', error: (err as NodeJS.ErrnoException).code ?? err.message });
      const req = http.request(
        url,
        {
          method,
          agent: this.agent,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length, ...headers } : headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', failed);
          res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      if (this.options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          done({ status: 0, headers: {}, text: '', error: 'timeout' });
          req.destroy(new Error('timeout'));
        }, this.options.timeoutMs);
      }
      req.on('error', failed);
      req.end(payload);
    });
  }

  /** Sends `method base+path` with a JSON body (when given) and parses the JSON answer; never rejects. */
  async call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<LoadResponse> {
    const r = await this.exchange(base + path, method, body, headers);
    const at = r.endedAt;
    const response: LoadResponse = {
      status: r.status,
      headers: r.headers,
      body: r.error ? undefined : parsed(r.text),
      ms: at - r.startedAt,
      at,
    };
    if (r.error) response.error = r.error;
    return response;
  }

  /** Closes every kept-alive connection. */
  close(): void {
    this.agent.destroy();
  }
}

/** A response as the bench needs it: status, the version from the ETag, the parsed body. */
export interface JsonResponse {
  status: number;
  /** The attempt version the ETag names, or null. */
  version: number | null;
  body: Record<string, unknown> | null;
  /** Milliseconds from sending to the last byte. */
  ms: number;
}

/** Reads the version out of an ETag such as `"7"` or `W/"7"`. */
export function versionFromEtag(etag: string | string[] | undefined): number | null {
  const value = Array.isArray(etag) ? etag[0] : etag;
  const match = value ? /^(?:W\/)?"?(\d+)"?$/.exec(value) : null;
  return match ? Number(match[1]) : null;
}

/** The load client bound to one base URL, as the bench drives it: network errors reject. */
export class JsonClient extends LoadHttpClient {
  constructor(
    private readonly baseUrl: string,
    maxSockets = 64,
  ) {
    super({ maxSockets });
  }

  /** Sends one request; network errors reject, HTTP errors resolve with their status. */
  async send(method: string, path: string, body?: unknown): Promise<JsonResponse> {
    const r = await this.exchange(new URL(this.baseUrl).origin + path, method, body, {});
    if (r.error) throw new Error(`${method} ${path}: ${r.error}`);
    let json: Record<string, unknown> | null = null;
    try {
      json = r.text ? (JSON.parse(r.text) as Record<string, unknown>) : null;
    } catch {
      json = null;
    }
    return { status: r.status, version: versionFromEtag(r.headers.etag), body: json, ms: r.hrMs };
  }
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at once; resolves with the results in order. */
export async function mapConcurrent<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  });
  await Promise.all(lanes);
  return results;
}
