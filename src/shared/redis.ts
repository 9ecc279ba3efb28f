import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config';

/** Longest wait between two reconnection tries: Redis back, requests are served again within it. */
export const RECONNECT_MAX_MS = 250;

/** ioredis' retryStrategy: 50 ms, growing by 50 ms a try, at most RECONNECT_MAX_MS. */
export const reconnectDelay = (times: number): number => Math.min(50 * times, RECONNECT_MAX_MS);

/** Where the live state's Redis is: one node (REDIS_URL) or the master the Sentinels name. */
export type RedisLocation = Pick<
  Config,
  'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' | 'REDIS_PASSWORD'
>;

/** The queues' Redis: QUEUE_REDIS_URL when set, else the live state's. */
export type QueueLocation = RedisLocation & Pick<Config, 'QUEUE_REDIS_URL'>;

/**
 * Connection options for a location. Through Sentinels, ioredis asks them for the master and
 * follows a failover; a connection left on a demoted master (READONLY) reconnects.
 */
export function locate(config: RedisLocation): RedisOptions {
  if (!config.REDIS_SENTINELS) return parseRedisUrl(config.REDIS_URL);
  return {
    sentinels: config.REDIS_SENTINELS,
    name: config.REDIS_SENTINEL_NAME,
    sentinelPassword: config.REDIS_SENTINEL_PASSWORD,
    password: config.REDIS_PASSWORD,
    role: 'master',
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
}

/** Connection options of the queues' Redis. */
export function locateQueues(config: QueueLocation): RedisOptions {
  return config.QUEUE_REDIS_URL ? parseRedisUrl(config.QUEUE_REDIS_URL) : locate(config);
}

/**
 * A Redis connection for request paths: commands fail fast while Redis is away (no offline queue,
 * bounded command time), so a write answers 503 instead of hanging; it reconnects by itself.
 */
export function createRequestRedis(config: RedisLocation & Pick<Config, 'REDIS_COMMAND_TIMEOUT_MS'>, name: string): Redis {
  return new Redis({ ...locate(config), ...failFast(config, name) });
}

/**
 * Connection options for BullMQ workers: BullMQ requires `maxRetriesPerRequest: null` for
 * blocking commands; it waits for Redis to come back instead of failing.
 */
export function workerRedisOptions(config: QueueLocation, name: string): RedisOptions {
  return { ...locateQueues(config), connectionName: name, maxRetriesPerRequest: null, enableReadyCheck: true };
}

/**
 * The connection the API's streams subscribe on (subscriber mode: it carries nothing else). A
 * subscribe while Redis is away fails at once (the stream answers 503); it reconnects by itself and
 * subscribes again to every channel it had.
 */
export function createSubscriberRedis(config: RedisLocation, name: string): Redis {
  return new Redis({
    ...locate(config),
    connectionName: name,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    retryStrategy: reconnectDelay,
  });
}

/** Fail-fast connection options for the queues' producers (the API's and the workers' enqueues). */
export function failFastRedisOptions(config: QueueLocation & Pick<Config, 'REDIS_COMMAND_TIMEOUT_MS'>, name: string): RedisOptions {
  return { ...locateQueues(config), ...failFast(config, name) };
}

/** Commands fail at once while Redis is away, and within REDIS_COMMAND_TIMEOUT_MS when it does not answer. */
function failFast(config: Pick<Config, 'REDIS_COMMAND_TIMEOUT_MS'>, name: string): RedisOptions {
  return {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2000,
    retryStrategy: reconnectDelay,
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
