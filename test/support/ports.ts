import { createServer } from 'node:net';

/*
 * Ports for the servers tests and benches start (Redis, the API, metrics). They are drawn from
 * below Linux's ephemeral range (32768-60999 by default), where the kernel never hands out the
 * local port of an outgoing connection or of a listen(0): a port probed free stays free unless
 * another test run draws the same one, and a server restarted on its port (a fault test restarting
 * Redis) does not find it taken by some client's connection meanwhile.
 */
const LOW = 20_000;
const HIGH = 32_000;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port free on 127.0.0.1 right now, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${LOW}..${HIGH} after 200 tries`);
}
