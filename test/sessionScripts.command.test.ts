import { Redis } from 'ioredis';
import type { Attempt } from '../src/shared/domain/attempt';
import { SessionStore } from '../src/shared/store/sessionStore';
import { sessionCallMode } from '../src/shared/store/sessionCommands';
import { sessionLibrary } from '../src/shared/store/luaScripts';
import { startRedisServer, type RedisServer } from './support/redisServer';
import { seededAttempt } from '../bench/workload';

/*
 * How the session scripts are sent (sessionCommands.ts), on Redis servers of the test's own, since
 * it flushes their functions and scripts: as FCALLs of the session library, loaded again by the
 * first call that finds it missing; as EVALSHA (EVAL when the server lost the script) where
 * Functions are refused; the arguments as given either way (no copy of ioredis' own).
 */

let server: RedisServer;
let replica: RedisServer;
const clients: Redis[] = [];

const connect = (url: string, options: { username?: string; password?: string } = {}): Redis => {
  const client = new Redis(url, options);
  clients.push(client);
  return client;
};

beforeAll(async () => {
  server = await startRedisServer({ args: ['--repl-diskless-sync-delay', '0'] });
  replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(server.port)] });
  // the replica in sync before the tests (WAIT counts on it)
  const probe = connect(replica.url);
  for (let i = 0; i < 100 && !/master_link_status:up/.test(await probe.info('replication')); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await replica.close();
  await server.close();
});

/** A fresh attempt with no answers yet, at version 1. */
const attempt = (now: number): Attempt => ({ ...seededAttempt('u1', now, 600), answers: new Map(), version: 1 });

/** Everything the server is sent while `run` runs, each command as its arguments. */
async function monitored(redis: Redis, run: () => Promise<void>): Promise<string[][]> {
  const sent: string[][] = [];
  const monitor = await redis.monitor();
  monitor.on('monitor', (_time: string, args: string[]) => sent.push(args));
  await run();
  await new Promise((resolve) => setTimeout(resolve, 100));
  monitor.disconnect();
  return sent;
}

/** Three progress writes on `a`: versions 1 -> 2 -> 3 -> 4; `between` runs after the first. */
async function threeWrites(store: SessionStore, a: Attempt, now: number, between: () => Promise<unknown>): Promise<void> {
  const first = await store.progress(a.id, now, {
    expectedVersion: 1,
    currentQuestion: 2,
    answers: new Map([['q1', '"one"']]),
    maxAnswers: 10,
  });
  expect(first.code).toBe('OK');
  await between();
  const second = await store.progress(a.id, now + 1, {
    expectedVersion: 2,
    currentQuestion: 3,
    answers: new Map([
      ['q2', '{"x":[1,2]}'],
      ['q1', '"uno"'],
    ]),
    maxAnswers: 10,
  });
  expect(second.code).toBe('OK');
  const third = await store.progress(a.id, now + 2, { expectedVersion: 3, answers: new Map([['q3', '3']]), maxAnswers: 10 });
  expect(third.code).toBe('OK');
  const stored = await store.read(a.id);
  expect(stored?.attempt.version).toBe(4);
  expect(Object.fromEntries(stored!.attempt.answers)).toEqual({ q1: '"uno"', q2: '{"x":[1,2]}', q3: '3' });
}

const keysOf = (id: string) => ['4', `session:${id}`, 'sessions:dirty', `session:${id}:events`, `session:${id}`];

test('with Functions: each write one FCALL with its arguments as given; a server that lost the library gets it again, once', async () => {
  const redis = connect(server.url);
  const store = new SessionStore(redis, 600);
  const now = Date.now();
  const a = attempt(now);
  expect(await store.fill(a)).toBe(true);
  const fn = sessionLibrary().functions.progress;
  const sent = await monitored(redis, () => threeWrites(store, a, now, () => redis.call('FUNCTION', 'FLUSH')));
  const calls = sent.filter((args) => /^(fcall|function|eval)/i.test(args[0]));
  // (the fill before loaded the library on this new server) after the flush: the FCALL that finds
  // no function, the load, the same FCALL again; then the third write
  const fcall = 'fcall ' + fn;
  expect(calls.map((args) => `${args[0]} ${args[1]}`.toLowerCase())).toEqual([
    fcall,
    'function flush',
    fcall,
    'function load',
    fcall,
    fcall,
  ]);
  const writes = calls.filter((args) => args[0].toLowerCase() === 'fcall');
  for (const args of writes) expect(args.slice(2, 7)).toEqual(keysOf(a.id));
  expect(writes[1].slice(7)).toEqual(writes[2].slice(7));
  expect(writes[2].slice(-4)).toEqual(['"q2"', '{"x":[1,2]}', '"q1"', '"uno"']);
  expect(writes[3].slice(-2)).toEqual(['"q3"', '3']);
  expect(sessionCallMode(redis)).toBe('function');
  // the replica has the library by replication (a failover's new master can run the writes)
  const onReplica = connect(replica.url);
  let libraries: unknown[] = [];
  for (let i = 0; i < 50 && libraries.length === 0; i++) {
    libraries = (await onReplica.call('FUNCTION', 'LIST', 'LIBRARYNAME', sessionLibrary().name)) as unknown[];
    if (libraries.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(libraries).toHaveLength(1);
});

test('an acknowledged write (WAIT in its pipeline) that finds the library missing is sent again, pipeline and all', async () => {
  const redis = connect(server.url);
  const store = new SessionStore(redis, 600, { waitReplicas: 1, waitTimeoutMs: 2000 });
  const now = Date.now();
  const a = attempt(now);
  expect(await store.fill(a)).toBe(true);
  // a first call outside a pipeline tells the connection that Functions are there
  expect((await store.progress(a.id, now, { expectedVersion: 1, answers: new Map([['q1', '1']]), maxAnswers: 10 })).code).toBe('OK');
  expect(sessionCallMode(redis)).toBe('function');
  await redis.call('FUNCTION', 'FLUSH');
  const sent = await monitored(redis, async () => {
    const closed = await store.close(a.id, now + 1, { guard: { kind: 'none' }, target: 'completed' }, 2, undefined);
    expect(closed.code).toBe('OK');
  });
  const calls = sent.filter((args) => /^(fcall|function|wait)/i.test(args[0])).map((args) => args[0].toLowerCase());
  // the pipeline's FCALL finds no function (its WAIT runs), the load, then the pipeline again
  expect(calls).toEqual(['fcall', 'wait', 'function', 'fcall', 'wait']);
  expect((await store.read(a.id))?.attempt.status).toBe('completed');
});

test('without Functions (an ACL that refuses them): EVALSHA, and EVAL with the same arguments when the server lost the script', async () => {
  const admin = connect(server.url);
  await admin.call('ACL', 'SETUSER', 'nofunctions', 'on', '>secret', '~*', '&*', '+@all', '-function', '-fcall', '-fcall_ro');
  const redis = connect(server.url, { username: 'nofunctions', password: 'secret' });
  const store = new SessionStore(redis, 600);
  const now = Date.now();
  const a = attempt(now);
  expect(await store.fill(a)).toBe(true);
  const sent = await monitored(admin, () => threeWrites(store, a, now, () => admin.script('FLUSH')));
  const scripts = sent.filter((args) => args[0].toLowerCase().startsWith('eval'));
  // the FCALL refused by the ACL is not shown; the script's first use on the socket is an EVAL,
  // then the EVALSHA the flush refuses, the EVAL sent again, the EVALSHA of the third write
  expect(scripts.map((args) => args[0].toLowerCase())).toEqual(['eval', 'evalsha', 'eval', 'evalsha']);
  for (const args of scripts) expect(args.slice(2, 7)).toEqual(keysOf(a.id));
  expect(scripts[1].slice(7)).toEqual(scripts[2].slice(7));
  expect(scripts[2].slice(-4)).toEqual(['"q2"', '{"x":[1,2]}', '"q1"', '"uno"']);
  expect(scripts[3].slice(-2)).toEqual(['"q3"', '3']);
  expect(sessionCallMode(redis)).toBe('script');
  await admin.call('ACL', 'DELUSER', 'nofunctions');
});
