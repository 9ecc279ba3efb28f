import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Every setting the service reads, with its default; parsed once at start-up. */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(8002),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z.url().default('postgres://quiz:quiz@127.0.0.1:5432/quiz_sessions'),
  DATABASE_POOL_MAX: int(1, 200).default(10),
  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
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
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
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
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message} (got ${JSON.stringify(present[String(i.path[0])])})`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  if (parsed.data.AUTH_JWT_SECRET && parsed.data.AUTH_JWKS_URL) {
    throw new ConfigError('invalid configuration:\n  AUTH_JWT_SECRET and AUTH_JWKS_URL: set one of them, not both');
  }
  return { ...parsed.data, ...overrides };
}
