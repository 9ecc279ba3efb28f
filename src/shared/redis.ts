import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from './config';

/** Longest wait between two reconnection tries: Redis back, requests are served again within it. */
export const RECONNECT_MAX_MS = 250;

/** ioredis' retryStrategy: 50 ms, growing by 50 ms a try, at most RECONNECT_MAX_MS. */
export const reconnectDelay = (times: number): number => Math.min(50 * times, RECONNECT_MAX_MS);

/** Where the live state's Redis is: one node (REDIS_URL) or the master the Sentinels name. */
export type RedisLocation = Pick<
  Config,
  'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' | 'REDIS_PASSWORD'
>;

/** The queues' Redis: QUEUE_REDIS_URL or QUEUE_REDIS_CLUSTER_NODES when set, else the live state's. */
export type QueueLocation = RedisLocation & Pick<Config, 'QUEUE_REDIS_URL' | 'QUEUE_REDIS_CLUSTER_NODES'>;

/** A connection to one Redis (perhaps through Sentinels) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** True for a Redis Cluster connection (pipelines there may only touch one slot). */
export const isCluster = (redis: RedisClient): redis is Cluster => (redis as Cluster).isCluster === true;

/**
 * A Redis Cluster connection: it learns the slots from the seed nodes, follows MOVED and ASK,
 * retries CLUSTERDOWN and TRYAGAIN for a moment, and refreshes the slots after a failover. Reads
 * go to masters (a replica may be behind).
 */
function cluster(nodes: ClusterNode[], node: RedisOptions, options: ClusterOptions = {}): Cluster {
  return new Cluster(nodes, {
    redisOptions: node,
    scaleReads: 'master',
    clusterRetryStrategy: reconnectDelay,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
    ...options,
  });
}

/** The cluster the queues use, if they are on one. */
function queueClusterNodes(config: QueueLocation): ClusterNode[] | undefined {
  if (config.QUEUE_REDIS_URL) return undefined;
  return config.QUEUE_REDIS_CLUSTER_NODES ?? config.REDIS_CLUSTER_NODES;
}

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
export function createRequestRedis(config: RedisLocation & Pick<Config, 'REDIS_COMMAND_TIMEOUT_MS'>, name: string): RedisClient {
  if (config.REDIS_CLUSTER_NODES) {
    const nodes = cluster(
      config.REDIS_CLUSTER_NODES,
      { ...failFast(config, name), password: config.REDIS_PASSWORD },
      { enableOfflineQueue: false },
    );
    // each node's connection as one node's: the cluster hands every command to one of them
    nodes.on('+node', (node: Redis) => coalesceWrites(node));
    return nodes;
  }
  return coalesceWrites(new Redis({ ...locate(config), ...failFast(config, name) }));
}

/**
 * Makes `redis` send the commands of one turn of the event loop in one write(2): its socket is
 * corked at the turn's first command and uncorked in a setImmediate, which runs after the poll
 * phase, so the commands of every request that arrived in that phase share one write, Redis reads
 * them in one read and answers them in one write. Without it each command is a write of its own,
 * and on a busy API each write wakes Redis for one command: the profile of the service at load had
 * about a quarter of the API's time at the write of single commands, and Redis spent more per GET
 * than the bare baseline. Order is kept (the socket's buffer is in order); a command waits at most
 * until the end of the turn; a command given its own stream (ioredis' pipelines) is left alone.
 * Returns `redis`.
 */
export function coalesceWrites(redis: Redis): Redis {
  const send = redis.sendCommand.bind(redis);
  let corked: Redis['stream'] | null = null;
  const uncork = () => {
    const stream = corked;
    corked = null;
    stream?.uncork();
  };
  redis.sendCommand = (command, stream) => {
    if (corked === null && stream === undefined && redis.stream) {
      corked = redis.stream;
      corked.cork();
      setImmediate(uncork);
    }
    return send(command, stream);
  };
  return redis;
}

/**
 * Connection options for BullMQ workers: BullMQ requires `maxRetriesPerRequest: null` for
 * blocking commands; it waits for Redis to come back instead of failing.
 */
export function workerRedisOptions(config: QueueLocation, name: string): RedisOptions {
  return { ...locateQueues(config), connectionName: name, maxRetriesPerRequest: null, enableReadyCheck: true };
}

/** A BullMQ worker's connection: options for one Redis, a Cluster connection for a cluster. */
export function workerConnection(config: QueueLocation, name: string): RedisOptions | Cluster {
  const nodes = queueClusterNodes(config);
  if (!nodes) return workerRedisOptions(config, name);
  return cluster(nodes, { connectionName: name, maxRetriesPerRequest: null, password: config.REDIS_PASSWORD });
}

/** A BullMQ producer's connection (the enqueues of the API and the workers), failing fast. */
export function producerConnection(config: QueueLocation & Pick<Config, 'REDIS_COMMAND_TIMEOUT_MS'>, name: string): RedisOptions | Cluster {
  const nodes = queueClusterNodes(config);
  if (!nodes) return failFastRedisOptions(config, name);
  return cluster(nodes, { ...failFast(config, name), password: config.REDIS_PASSWORD }, { enableOfflineQueue: false });
}

/**
 * Where the API's stream subscriptions go (src/shared/store/changeSubscriber.ts opens one connection
 * per node it needs, in subscriber mode, carrying nothing else): on one node (or the master the
 * Sentinels name) every channel goes to it; on a cluster a channel goes to the master that serves
 * its slot, as a Cluster connection of its own learns them (it sends no command of its own: it
 * only keeps the slot map, refreshed every SLOTS_REFRESH_MS and when asked).
 */
export interface SubscriberTopology {
  /** The master that serves `slot` now (host:port), or undefined while the map is not known. */
  nodeOf(slot: number): string | undefined;
  /** True when `node` serves `slot` now, as its master or as a replica of that master. */
  serves(node: string, slot: number): boolean;
  /** Connection options of a subscriber connection to `node`. */
  optionsOf(node: string): RedisOptions;
  /** True when a new subscriber connection (before its first subscription) may take subscriptions: on a cluster, when its node is a master. */
  accepts(connection: Redis): Promise<boolean>;
  /** Resolves once the map is known, or after `ms`. */
  ready(ms: number): Promise<boolean>;
  /** Asks the cluster for its slots again (a node failed, or a slot moved). */
  refresh(): void;
  /** Calls `listener` after every refresh of the map. */
  onRefresh(listener: () => void): void;
  close(): Promise<void>;
}

/** How often a cluster's subscriber topology asks for the slots even when nothing failed. */
export const SLOTS_REFRESH_MS = 5000;

/** The one node of a single-node location. */
const ONE_NODE = 'redis';

/** The subscriber topology of a location (connection name `name`). */
export function subscriberTopology(config: RedisLocation, name: string): SubscriberTopology {
  const connection: RedisOptions = { connectionName: name, connectTimeout: 2000 };
  if (!config.REDIS_CLUSTER_NODES) {
    const options = { ...locate(config), ...connection };
    return {
      nodeOf: () => ONE_NODE,
      serves: () => true,
      optionsOf: () => options,
      accepts: async () => true,
      ready: async () => true,
      refresh: () => undefined,
      onRefresh: () => undefined,
      close: async () => undefined,
    };
  }
  const map = cluster(
    config.REDIS_CLUSTER_NODES,
    { ...connection, password: config.REDIS_PASSWORD, retryStrategy: reconnectDelay },
    { enableOfflineQueue: false, slotsRefreshInterval: SLOTS_REFRESH_MS },
  );
  map.on('error', () => undefined); // a node away: the subscriptions of its slots fail on their own connections
  return {
    nodeOf: (slot) => map.slots[slot]?.[0],
    serves: (node, slot) => map.slots[slot]?.includes(node) ?? false,
    optionsOf: (node) => {
      const at = node.lastIndexOf(':');
      return { ...connection, host: node.slice(0, at), port: Number(node.slice(at + 1)), password: config.REDIS_PASSWORD };
    },
    accepts: async (connection) => ((await connection.role()) as unknown[])[0] === 'master',
    ready: (ms) => waitForReady(map, ms),
    refresh: () => map.refreshSlotsCache(),
    onRefresh: (listener) => map.on('refresh', listener),
    close: async () => {
      await map.quit().catch(() => map.disconnect());
    },
  };
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
export async function waitForReady(redis: RedisClient, ms: number): Promise<boolean> {
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

/** PINGs every master (all of a cluster's, or the one node): readiness. */
export async function pingMasters(redis: RedisClient): Promise<void> {
  if (!isCluster(redis)) {
    await redis.ping();
    return;
  }
  const masters = redis.nodes('master');
  if (masters.length === 0) throw new Error('no cluster master is known');
  await Promise.all(masters.map((node) => node.ping()));
}
