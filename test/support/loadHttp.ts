import { Agent, request, type IncomingHttpHeaders } from 'node:http';

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
 * A small JSON client for load generators: keep-alive connections (at most `maxSockets` per
 * API), every request bounded by `timeoutMs` (a hang becomes status 0, error 'timeout'). No
 * OpenAPI check per response (harness.request does one), so it can drive hundreds of requests
 * per second from the test process.
 */
export class LoadHttpClient {
  private readonly agent: Agent;

  constructor(private readonly options: { maxSockets: number; timeoutMs: number }) {
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets });
  }

  /** Sends `method base+path` with a JSON body (when given) and parses the JSON answer. */
  call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<LoadResponse> {
    const started = Date.now();
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: Omit<LoadResponse, 'ms' | 'at'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const at = Date.now();
        resolve({ ...r, ms: at - started, at });
      };
      const req = request(
        base + path,
        {
          method,
          agent: this.agent,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length, ...headers } : headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) =>
            done({ status: 0, headers: {}, body: undefined, error: (err as NodeJS.ErrnoException).code ?? err.message }),
          );
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON: keep the text
            }
            done({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
          });
        },
      );
      const timer = setTimeout(() => {
        done({ status: 0, headers: {}, body: undefined, error: 'timeout' });
        req.destroy(new Error('timeout'));
      }, this.options.timeoutMs);
      req.on('error', (err) =>
        done({ status: 0, headers: {}, body: undefined, error: (err as NodeJS.ErrnoException).code ?? err.message }),
      );
      req.end(payload);
    });
  }

  /** Closes every kept-alive connection. */
  close(): void {
    this.agent.destroy();
  }
}
