import { request, type TestApi, type TestResponse } from './harness';

/** The two route families the same handlers serve: seed 2's and seed 1's. */
export const ROUTE_FAMILIES = ['/api/sessions', '/sessions'] as const;
/** One of ROUTE_FAMILIES. */
export type RouteFamily = (typeof ROUTE_FAMILIES)[number];

type Headers = Record<string, string>;

/** The session endpoints of one route family, as plain HTTP calls against a test API. */
export interface SessionClient {
  prefix: RouteFamily;
  start(body: unknown, headers?: Headers): Promise<TestResponse>;
  get(id: string, headers?: Headers): Promise<TestResponse>;
  progress(id: string, body: unknown, options?: { method?: 'PATCH' | 'PUT'; headers?: Headers }): Promise<TestResponse>;
  complete(id: string, body?: unknown, headers?: Headers): Promise<TestResponse>;
  abandon(id: string, body?: unknown, headers?: Headers): Promise<TestResponse>;
}

/** A client for the session routes under `prefix`. */
export function sessionClient(api: Pick<TestApi, 'url'>, prefix: RouteFamily): SessionClient {
  return {
    prefix,
    start: (body, headers) => request(api.url, 'POST', `${prefix}/start`, body, headers),
    get: (id, headers) => request(api.url, 'GET', `${prefix}/${id}`, undefined, headers),
    progress: (id, body, options = {}) => request(api.url, options.method ?? 'PATCH', `${prefix}/${id}/progress`, body, options.headers),
    complete: (id, body, headers) => request(api.url, 'POST', `${prefix}/${id}/complete`, body, headers),
    abandon: (id, body, headers) => request(api.url, 'POST', `${prefix}/${id}/abandon`, body, headers),
  };
}
