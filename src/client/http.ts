import type { ApiErrorBody, Attempt } from './types';

/** The fetch the client uses (the global one by default; a fake in unit tests). */
export type Fetch = typeof fetch;

/** The request could not be completed: no connection, or no answer in time. It may or may not have reached the server. */
export class NetworkError extends Error {
  constructor(readonly cause: unknown) {
    super(`network: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'NetworkError';
  }
}

/** The API answered with an error (the service's error contract). */
export class ApiError extends Error {
  readonly status: number;
  readonly body: ApiErrorBody | undefined;

  constructor(status: number, body: ApiErrorBody | undefined) {
    super(body?.message ?? `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }

  /** The stable error code (`SESSION_CONFLICT`, …), or `HTTP_<status>` for a body that is not the contract. */
  get code(): string {
    return this.body?.errorCode ?? `HTTP_${this.status}`;
  }

  /** True when the same request may succeed later. */
  get retryable(): boolean {
    return this.body?.retryable ?? this.status >= 500;
  }

  /** How long the server asks to wait before a retry, ms. */
  get retryAfterMs(): number | undefined {
    return this.body?.retryAfterSeconds === undefined ? undefined : this.body.retryAfterSeconds * 1000;
  }

  /** The attempt as it is now, which 409, 410 and 423 carry. */
  get session(): Attempt | undefined {
    return this.body?.session;
  }
}

/** Where the API is and who the client is. */
export interface ApiOptions {
  /** The API's origin, e.g. `http://localhost:8002`; '' (the default) for the page's own origin. */
  baseUrl?: string;
  /** A bearer token, or a function that returns the current one (with authentication on). */
  token?: string | (() => string | undefined);
  fetch?: Fetch;
  /** Bound on one request (not on a stream), ms. */
  timeoutMs?: number;
}

/** What one request carries. */
export interface RequestOptions {
  body?: unknown;
  /** Names the request: a retry of it carries the same key, so it applies at most once. */
  idempotencyKey?: string;
  headers?: Record<string, string>;
  /** Survives the page being closed (a last client event). */
  keepalive?: boolean;
}

/** A JSON API client: bearer token, timeouts, the error contract turned into ApiError, a failed fetch into NetworkError. */
export class ApiClient {
  readonly baseUrl: string;
  private readonly fetchFn: Fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: ApiOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    // bound to the global object: a browser's fetch refuses to be called as a method of another
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The current bearer token, if any. */
  token(): string | undefined {
    const t = this.options.token;
    return typeof t === 'function' ? t() : t;
  }

  /** Headers every request carries: the token. */
  authHeaders(): Record<string, string> {
    const token = this.token();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  /** The URL of an API path. */
  url(path: string): string {
    return this.baseUrl + path;
  }

  /** A raw fetch with the client's token (for streams): a failed fetch is a NetworkError. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await this.fetchFn(this.url(path), {
        ...init,
        headers: { ...this.authHeaders(), ...(init.headers as Record<string, string>) },
      });
    } catch (err) {
      throw new NetworkError(err);
    }
  }

  /** Sends a JSON request; resolves with the parsed 2xx body, throws ApiError or NetworkError. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(path, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        keepalive: options.keepalive,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw err instanceof NetworkError ? err : new NetworkError(err);
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status >= 400) throw new ApiError(res.status, isErrorBody(body) ? body : undefined);
    return { status: res.status, body: body as T, headers: res.headers };
  }
}

function isErrorBody(body: unknown): body is ApiErrorBody {
  return typeof body === 'object' && body !== null && typeof (body as ApiErrorBody).errorCode === 'string';
}

/** A fresh idempotency key: a UUID v4 (crypto.randomUUID where the page is a secure context, else getRandomValues). */
export function newKey(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Waits `ms` (a retry's delay). */
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sends a request that must apply at most once, under one fresh Idempotency-Key: a failed
 * connection, a 5xx or IDEMPOTENCY_KEY_IN_USE is sent again with the same key (up to `tries`
 * times, `retryMs` apart or as the server asks), so a retry whose first try did land gets that
 * first answer back instead of applying twice.
 */
export async function sendIdempotent<T>(
  api: ApiClient,
  method: string,
  path: string,
  body: unknown,
  { tries = 3, retryMs = 500, key = newKey() }: { tries?: number; retryMs?: number; key?: string } = {},
): Promise<{ status: number; body: T; headers: Headers }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.request<T>(method, path, { body, idempotencyKey: key });
    } catch (err) {
      const again =
        err instanceof NetworkError || (err instanceof ApiError && (err.status >= 500 || err.code === 'IDEMPOTENCY_KEY_IN_USE'));
      if (!again || attempt >= tries) throw err;
      await pause(err instanceof ApiError ? (err.retryAfterMs ?? retryMs) : retryMs * attempt);
    }
  }
}
