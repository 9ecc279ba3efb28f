import { Redis } from 'ioredis';
import { coalesceWrites } from '../src/shared/redis';
import { startRedisServer, type RedisServer } from './support/redisServer';

/*
 * The request connections' coalesced writes (src/shared/redis.ts coalesceWrites), on a Redis of
 * the test's own (its INFO counters are this test's alone): the commands of one turn of the event
 * loop go out in one write of the socket (and Redis reads them in one read, or a few on a loaded
 * machine), every reply comes back to its own command in order, pipelines and
 * commands between turns are unaffected, and a connection that was killed and came back goes on.
 */

let server: RedisServer;
let client: Redis;
let observer: Redis;

/**
 * Counts the writes the connection's socket makes (each `_write` or `_writev` is one write(2)
 * handed to the kernel) while `work` runs; the counting is removed after.
 */
async function socketWrites<T>(redis: Redis, work: () => Promise<T>): Promise<{ writes: number; result: T }> {
  const socket = redis.stream as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const own = { _write: socket._write, _writev: socket._writev };
  let writes = 0;
  for (const name of ['_write', '_writev'] as const) {
    socket[name] = (...args: unknown[]) => {
      writes++;
      return own[name].apply(socket, args);
    };
  }
  try {
    const result = await work();
    return { writes, result };
  } finally {
    socket._write = own._write;
    socket._writev = own._writev;
  }
}

/** Reads Redis has processed so far (every client's), less the one of this INFO itself. */
async function readsProcessed(): Promise<number> {
  const info = await observer.info('stats');
  return Number(/total_reads_processed:(\d+)/.exec(info)![1]);
}

beforeAll(async () => {
  server = await startRedisServer();
  client = coalesceWrites(new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 20 }));
  observer = new Redis(server.url);
  await new Promise<void>((resolve) => client.once('ready', () => resolve()));
});

afterAll(async () => {
  client.disconnect();
  observer.disconnect();
  await server.close();
});

test('100 commands of one turn go out in one write, and each gets its own reply, in order', async () => {
  const before = await readsProcessed();
  const { writes, result: replies } = await socketWrites(client, () =>
    Promise.all(Array.from({ length: 100 }, () => client.incr('coalesce:counter'))),
  );
  const reads = (await readsProcessed()) - before - 1; // the second INFO's own read
  expect(replies).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  // one write of the socket; Redis reads it at once or, on a loaded machine, in a few reads
  // (without the coalescing: one write and one read per command, 37 to 99 reads measured)
  expect(writes).toBe(1);
  expect(reads).toBeLessThan(10);
  // the socket was corked for the turn only
  expect(client.stream.writableCorked).toBe(0);
});

test('commands of successive turns each go out in their turn, and mixed with a pipeline keep their order', async () => {
  await client.del('coalesce:list');
  const first = client.rpush('coalesce:list', 'a');
  const piped = client.pipeline().rpush('coalesce:list', 'b').rpush('coalesce:list', 'c').exec();
  const after = client.rpush('coalesce:list', 'd');
  await Promise.all([first, piped, after]);
  await new Promise((resolve) => setImmediate(resolve));
  const later = await client.rpush('coalesce:list', 'e');
  expect(later).toBe(5);
  expect(await client.lrange('coalesce:list', 0, -1)).toEqual(['a', 'b', 'c', 'd', 'e']);
});

test('an error reply fails only its own command', async () => {
  await client.set('coalesce:text', 'x');
  const results = await Promise.allSettled([client.incr('coalesce:n1'), client.incr('coalesce:text'), client.incr('coalesce:n1')]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect((results[2] as PromiseFulfilledResult<number>).value).toBe((results[0] as PromiseFulfilledResult<number>).value + 1);
});

test('a connection killed by Redis comes back and coalesces on its new socket', async () => {
  const id = await client.client('ID');
  const old = client.stream;
  await observer.client('KILL', 'ID', String(id));
  await new Promise<void>((resolve) => client.once('ready', () => resolve()));
  expect(client.stream).not.toBe(old);
  const { writes, result: replies } = await socketWrites(client, () =>
    Promise.all(Array.from({ length: 50 }, (_, i) => client.echo(`m${i}`))),
  );
  expect(replies).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  expect(writes).toBe(1);
});
