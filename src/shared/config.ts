import { z } from 'zod';
import { KEY_LAYOUTS } from './store/keys';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** `host:port` pairs, comma-separated. */
const hostPorts = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
  )
  .pipe(
    z
      .array(z.string().regex(/^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$/, 'each must be host:port'))
      .min(1, 'must name at least one host:port')
      .transform((list) => list.map((p) => ({ host: p.slice(0, p.lastIndexOf(':')), port: Number(p.slice(p.lastIndexOf(':') + 1)) }))),
  );

/** The settings that say where the live state's Redis is: exactly one of them. */
export const REDIS_LOCATIONS = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const;
/** The settings that move the queues to a Redis of their own: at most one of them. */
export const QUEUE_LOCATIONS = ['QUEUE_REDIS_URL', 'QUEUE_REDIS_CLUSTER_NODES'] as const;

/** The queue prefix on a cluster when none is given: a hash tag, so each queue's keys share a slot. */
export const CLUSTER_QUEUE_PREFIX = '{bull}';

/** A Standard Webhooks secret: `whsec_` and the key in (padded) base64, at least one byte. */
export const WEBHOOK_SECRET_PATTERN = /^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$/;

/** Settings whose value a configuration error never repeats (it would land in a log). */
const SECRET_SETTINGS: ReadonlySet<string> = new Set(['WEBHOOK_SECRET']);

/** WEBHOOK_URLS: comma-separated http(s) URLs (blanks around commas ignored), as a list. */
const webhookUrls = z
  .string()
  .transform((text) =>
    text
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== ''),
  )
  .pipe(z.array(z.url({ protocol: /^https?$/, error: 'each URL must be an absolute http:// or https:// URL' })));

/** Every setting the service reads, with its default; parsed once at start-up. */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(8002),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z.url().default('postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions'),
  DATABASE_POOL_MAX: int(1, 200).default(10),
  /** Hash partitions of quiz_sessions and attempt_events by their shard key (domain/shard.ts), made by the shard-key migration: 0 is a plain table. */
  PG_PARTITIONS: int(0, 256).default(0),
  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
  /** Seed nodes (`host:port`, comma-separated) of a Redis Cluster: instead of REDIS_URL (the key layout is then `bucketed`). */
  REDIS_CLUSTER_NODES: hostPorts.optional(),
  /** Sentinels (`host:port`, comma-separated) that name the master (REDIS_SENTINEL_NAME): instead of REDIS_URL. */
  REDIS_SENTINELS: hostPorts.optional(),
  /** The master's name at the Sentinels. */
  REDIS_SENTINEL_NAME: z.string().min(1).max(200).optional(),
  /** The password of the Sentinels themselves, when they require one. */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  /** The password of the master and replicas the Sentinels name (with REDIS_URL it is the URL's). */
  REDIS_PASSWORD: z.string().min(1).optional(),
  /**
   * The Redis key names (src/shared/store/keys.ts): `single`, the seeds' (session:<id>, one dirty
   * set), or `bucketed`, every key of an attempt in its bucket's hash slot (for a Redis Cluster).
   */
  REDIS_KEY_LAYOUT: z.enum(KEY_LAYOUTS).default('single'),
  /** When set, the queues (BullMQ) use this Redis instead of the one of the live state. */
  QUEUE_REDIS_URL: z.url().optional(),
  /** Or a Redis Cluster of their own for the queues (seed nodes, `host:port`, comma-separated). */
  QUEUE_REDIS_CLUSTER_NODES: hostPorts.optional(),
  /**
   * When set, a write is acknowledged only once this many replicas have it (WAIT, in the same
   * round trip as the write); fewer within REDIS_WAIT_TIMEOUT_MS is a 503 (retryable).
   */
  REDIS_WAIT_REPLICAS: int(0, 16).default(0),
  REDIS_WAIT_TIMEOUT_MS: int(1, 60_000).default(500),
  /** Bound on every Redis command from the API: past it, reads fall back and writes answer 503. */
  REDIS_COMMAND_TIMEOUT_MS: int(50, 60_000).default(1000),
  /** Bound on every PostgreSQL query from the API. */
  DATABASE_STATEMENT_TIMEOUT_MS: int(50, 600_000).default(5000),
  SESSION_CACHE_TTL_SECONDS: int(60, 30 * 86_400).default(1800),
  DEFAULT_TIME_LIMIT_SECONDS: int(0, 7 * 86_400).default(1800),
  PERSIST_DELAY_SECONDS: int(1, 3600).default(30),
  ABANDON_AFTER_SECONDS: int(1, 30 * 86_400).default(3600),
  SWEEP_INTERVAL_SECONDS: int(1, 3600).default(15),
  SWEEP_BATCH_SIZE: int(1, 10_000).default(500),
  METRICS_PORT: int(0, 65535).default(9464),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /**
   * How many BullMQ queues each job type is spread over (each with its own prefix: on a cluster its
   * own hash tag, so the shards spread over the masters). An attempt's jobs always go to one shard.
   */
  QUEUE_SHARDS: int(1, 64).default(1),
  /** The shards this worker process consumes (`0,2`), when not all of them. */
  QUEUE_SHARDS_CONSUMED: z
    .string()
    .regex(/^[0-9]{1,2}(,[0-9]{1,2})*$/, 'shard numbers, comma-separated, such as 0,2')
    .transform((s) => [...new Set(s.split(',').map(Number))])
    .optional(),
  /** BullMQ key prefix; on a cluster a hash tag such as `{bull}` (the default there). */
  QUEUE_PREFIX: z
    .string()
    .regex(/^(\{[A-Za-z0-9_-]{1,62}\}|[A-Za-z0-9_-]{1,64})$/, 'letters, digits, _ and -, or such a name in braces ({bull}, a hash tag)')
    .default('bull'),
  SHUTDOWN_TIMEOUT_MS: int(100, 120_000).default(9000),
  /** When set, the API serves /metrics on this port instead of PORT (keep it off the public network). */
  API_METRICS_PORT: int(1, 65535).optional(),
  /** HS256 secret for bearer tokens; with AUTH_JWKS_URL unset and this unset, the API runs open. */
  AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** JWKS endpoint for RS256/ES256 bearer tokens (instead of AUTH_JWT_SECRET). */
  AUTH_JWKS_URL: z.url().optional(),
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  /** The claim that carries the role, and the role that may act on any attempt (grading back ends). */
  AUTH_ROLE_CLAIM: z.string().min(1).default('role'),
  AUTH_SERVICE_ROLE: z.string().min(1).default('service'),
  /** The role that may read any attempt (of its `quiz_ids`, when the token has them) and run the live controls. */
  AUTH_PROCTOR_ROLE: z.string().min(1).default('proctor'),
  /** When set, a token whose `iat` is older than this (or that has no `iat`) is refused. */
  AUTH_MAX_TOKEN_AGE_SECONDS: int(1, 366 * 86_400).optional(),
  /** Server-Sent Event streams one API process holds at most; past it a new stream answers 503 (retryable). */
  MAX_STREAMS: int(0, 1_000_000).default(20_000),
  /** Seconds between a stream's `time` events (and a quiz stream's keep-alives). */
  STREAM_TIME_EVENT_SECONDS: int(1, 15).default(15),
  /** Where attempt.completed / .expired / .abandoned are POSTed (comma-separated); unset: no webhooks. */
  WEBHOOK_URLS: webhookUrls.default([]),
  /** The Standard Webhooks signing secret, `whsec_<base64>`; required with WEBHOOK_URLS. */
  WEBHOOK_SECRET: z.string().regex(WEBHOOK_SECRET_PATTERN, 'must be whsec_ followed by the key in base64').optional(),
  /** How long a webhook is retried before it is dead-lettered. */
  WEBHOOK_RETRY_SECONDS: int(1, 30 * 86_400).default(86_400),
  /** The first retry's delay; each later one doubles, up to an hour. */
  WEBHOOK_BACKOFF_MS: int(1, 3_600_000).default(2000),
  /** Bound on one delivery request (connect, send, answer). */
  WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
});

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;

/** Thrown when the environment holds a value the service cannot run with. */
export class ConfigError extends Error {}

/** Parses `env` (process.env by default) and throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const present: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') present[key] = value;
  }
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0]);
      const got = SECRET_SETTINGS.has(key) ? `a value of ${present[key].length} characters` : JSON.stringify(present[key]);
      return `  ${key}: ${i.message} (got ${got})`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  for (const group of [REDIS_LOCATIONS, QUEUE_LOCATIONS]) {
    const located = group.filter((name) => present[name] !== undefined);
    if (located.length > 1) {
      throw new ConfigError(`invalid configuration:\n  ${located.join(' and ')}: set one of them, not both (where Redis is)`);
    }
  }
  const data = parsed.data;
  if (data.REDIS_CLUSTER_NODES) {
    if (present.REDIS_KEY_LAYOUT === 'single')
      throw new ConfigError(
        'invalid configuration:\n  REDIS_KEY_LAYOUT: a Redis Cluster needs the bucketed layout (one hash slot per script call)',
      );
    data.REDIS_KEY_LAYOUT = 'bucketed';
  }
  if (data.QUEUE_REDIS_CLUSTER_NODES || (data.REDIS_CLUSTER_NODES && !data.QUEUE_REDIS_URL)) {
    if (present.QUEUE_PREFIX === undefined) data.QUEUE_PREFIX = CLUSTER_QUEUE_PREFIX;
    else if (!data.QUEUE_PREFIX.startsWith('{'))
      throw new ConfigError(
        `invalid configuration:\n  QUEUE_PREFIX: on a Redis Cluster it must be a hash tag, such as {${data.QUEUE_PREFIX}}, so each queue's keys share a slot`,
      );
  }
  if (parsed.data.REDIS_SENTINELS && !parsed.data.REDIS_SENTINEL_NAME) {
    throw new ConfigError(
      'invalid configuration:\n  REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the master name the Sentinels monitor)',
    );
  }
  const beyond = (data.QUEUE_SHARDS_CONSUMED ?? []).filter((k) => k >= data.QUEUE_SHARDS);
  if (beyond.length) {
    throw new ConfigError(
      `invalid configuration:\n  QUEUE_SHARDS_CONSUMED: ${beyond.join(', ')} not below QUEUE_SHARDS (${data.QUEUE_SHARDS})`,
    );
  }
  if (parsed.data.REDIS_WAIT_REPLICAS > 0 && parsed.data.REDIS_WAIT_TIMEOUT_MS >= parsed.data.REDIS_COMMAND_TIMEOUT_MS) {
    throw new ConfigError(
      'invalid configuration:\n  REDIS_WAIT_TIMEOUT_MS: must be below REDIS_COMMAND_TIMEOUT_MS (the write and its WAIT share one command timeout)',
    );
  }
  if (parsed.data.AUTH_JWT_SECRET && parsed.data.AUTH_JWKS_URL) {
    throw new ConfigError('invalid configuration:\n  AUTH_JWT_SECRET and AUTH_JWKS_URL: set one of them, not both');
  }
  if (parsed.data.WEBHOOK_URLS.length > 0 && !parsed.data.WEBHOOK_SECRET) {
    throw new ConfigError(
      'invalid configuration:\n  WEBHOOK_SECRET: required when WEBHOOK_URLS is set (whsec_ followed by the key in base64)',
    );
  }
  return { ...parsed.data, ...overrides };
}
