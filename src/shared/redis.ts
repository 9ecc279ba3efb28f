import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config';

/**
 * A Redis connection for request paths: commands fail fast while Redis is away (no offline queue,
 * bounded command time), so a write answers 503 instead of hanging; it reconnects by itself.
 */
export function createRequestRedis(config: Pick<Config, 'REDIS_URL' | 'REDIS_COMMAND_TIMEOUT_MS'>, name: string): Redis {
  return new Redis(failFastRedisOptions(config, name));
}

/**
 * Connection options for BullMQ workers: BullMQ requires `maxRetriesPerRequest: null` for
 * blocking commands; it waits for Redis to come back instead of failing.
 */
export function workerRedisOptions(config: Pick<Config, 'REDIS_URL'>, name: string): RedisOptions {
  return { ...parseRedisUrl(config.REDIS_URL), connectionName: name, maxRetriesPerRequest: null, enableReadyCheck: true };
}

/**
 * The connection the API's streams subscribe on (subscriber mode: it carries nothing else). A
 * subscribe while Redis is away fails at once (the stream answers 503); it reconnects by itself and
 * subscribes again to every channel it had.
 */
export function createSubscriberRedis(config: Pick<Config, 'REDIS_URL'>, name: string): Redis {
  return new Redis({
    ...parseRedisUrl(config.REDIS_URL),
    connectionName: name,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
}

/** Fail-fast connection options, for request paths and for the API's BullMQ producers. */
export function failFastRedisOptions(config: Pick<Config, 'REDIS_URL' | 'REDIS_COMMAND_TIMEOUT_MS'>, name: string): RedisOptions {
  return {
    ...parseRedisUrl(config.REDIS_URL),
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  };
}

/** Host, port, credentials, db and TLS from a redis:// or rediss:// URL. */
export function parseRedisUrl(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

/** Resolves once the connection is ready, or after `ms` (the service starts even with Redis away). */
export async function waitForReady(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    redis.once('ready', onReady);
  });
}
