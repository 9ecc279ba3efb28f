import { Agent, request } from 'node:http';

/** A response as the harness needs it: status, the version from the ETag, the parsed body. */
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

/** A keep-alive JSON client for one base URL (setup traffic and the paced write-behind students). */
export class JsonClient {
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(baseUrl: string, maxSockets = 64) {
    this.url = new URL(baseUrl);
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** Sends one request; network errors reject, HTTP errors resolve with their status. */
  send(method: string, path: string, body?: unknown): Promise<JsonResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const started = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: Record<string, unknown> | null = null;
            try {
              parsed = text ? (JSON.parse(text) as Record<string, unknown>) : null;
            } catch {
              parsed = null;
            }
            resolve({
              status: res.statusCode ?? 0,
              version: versionFromEtag(res.headers.etag),
              body: parsed,
              ms: Number(process.hrtime.bigint() - started) / 1e6,
            });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Closes the idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
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
