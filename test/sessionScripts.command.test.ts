import { Redis } from 'ioredis';
import type { Attempt } from '../src/shared/domain/attempt';
import { SessionStore } from '../src/shared/store/sessionStore';
import { startRedisServer, type RedisServer } from './support/redisServer';
import { seededAttempt } from '../bench/workload';

/*
 * The session scripts' command (sessionStore.ts withFlatArguments: ioredis' script command without
 * its copy of the arguments), on a Redis of the test's own, since it flushes the server's scripts:
 * the arguments arrive as given, and a server that lost its scripts (a restart, SCRIPT FLUSH) gets
 * the script sent again, with the same arguments.
 */

let server: RedisServer;
let redis: Redis;
let store: SessionStore;

beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.url);
  store = new SessionStore(redis, 600);
});

afterAll(async () => {
  redis.disconnect();
  await server.close();
});

/** A fresh attempt with no answers yet, at version 1. */
const attempt = (now: number): Attempt => ({ ...seededAttempt('u1', now, 600), answers: new Map(), version: 1 });

test('a write script gets its arguments as given, before and after the server loses its scripts', async () => {
  const now = Date.now();
  const a = attempt(now);
  expect(await store.fill(a)).toBe(true);
  const first = await store.progress(a.id, now, {
    expectedVersion: 1,
    currentQuestion: 2,
    answers: new Map([['q1', '"one"']]),
    maxAnswers: 10,
  });
  expect(first.code).toBe('OK');
  // what is sent from here: EVALSHA, refused once the scripts are gone, then EVAL with the same keys and arguments
  const sent: string[][] = [];
  const monitor = await redis.monitor();
  monitor.on('monitor', (_time: string, args: string[]) => sent.push(args));
  await redis.script('FLUSH');
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
  await new Promise((resolve) => setTimeout(resolve, 100));
  monitor.disconnect();
  const scripts = sent.filter((args) => args[0].toLowerCase().startsWith('eval'));
  expect(scripts.map((args) => args[0].toLowerCase())).toEqual(['evalsha', 'eval', 'evalsha']);
  const keys = ['4', `session:${a.id}`, 'sessions:dirty', `session:${a.id}:events`, `session:${a.id}`];
  for (const args of scripts) expect(args.slice(2, 7)).toEqual(keys);
  expect(scripts[0].slice(7)).toEqual(scripts[1].slice(7));
  expect(scripts[1].slice(-4)).toEqual(['"q2"', '{"x":[1,2]}', '"q1"', '"uno"']);
  expect(scripts[2].slice(-2)).toEqual(['"q3"', '3']);
  const stored = await store.read(a.id);
  expect(stored?.attempt.version).toBe(4);
  expect(Object.fromEntries(stored!.attempt.answers)).toEqual({ q1: '"uno"', q2: '{"x":[1,2]}', q3: '3' });
});
