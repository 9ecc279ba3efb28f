import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './ports';

/**
 * A TCP proxy in the test process, so a test can take a server "down" for the processes that
 * connect through it without stopping the server others use. `stop` closes the listener and
 * cuts every piped connection (clients see resets and refused connections); `start` listens
 * again on the same port.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private listenPort = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** The port the proxy listens on (fixed after the first start). */
  get port(): number {
    return this.listenPort;
  }

  /**
   * Listens on 127.0.0.1: a free port the first time, the same port afterwards. The port comes
   * from freePort(), below the ephemeral range: a port the kernel handed out (listen on port 0)
   * may be taken, while the proxy is stopped, as the local port of some outgoing connection of
   * this or another test run on the machine, and then the proxy could not come back on it.
   */
  async start(): Promise<void> {
    if (this.server) return;
    for (let tries = 1; ; tries++) {
      const port = this.listenPort || (await freePort());
      const server = createServer((client) => this.pipe(client));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => resolve());
        });
      } catch (err) {
        // another run may take a port freePort() found free before this listens: draw another
        if (this.listenPort === 0 && tries < 5 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw err;
      }
      this.listenPort = port;
      this.server = server;
      return;
    }
  }

  /** Stops listening and destroys every open connection in both directions. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  private pipe(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/** A started proxy in front of the PostgreSQL of `databaseUrl`, and that URL pointed through it. */
export async function proxyTo(databaseUrl: string): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(databaseUrl);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.start();
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return { proxy, url: url.toString() };
}

/** A proxy in front of a test file's PostgreSQL for the file's whole run (started before, stopped after). */
export function useProxyTo(databaseUrl: () => string): () => { proxy: TcpProxy; url: string } {
  let proxied: { proxy: TcpProxy; url: string } | undefined;
  beforeAll(async () => {
    proxied = await proxyTo(databaseUrl());
  }, 60_000);
  afterAll(async () => {
    await proxied?.proxy.stop();
  }, 30_000);
  return () => {
    if (!proxied) throw new Error('the proxy starts in beforeAll: use it inside tests and hooks');
    return proxied;
  };
}
