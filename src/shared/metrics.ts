import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Attempt } from './domain/attempt';
import { DELIVERY_OUTCOMES, type DeliveryOutcome } from './domain/webhook';
import type { Logger } from './logger';
import type { QueueName } from './queues/jobs';
import type { ShardedQueue } from './queues/queue';
import { ShutdownOrder, type Shutdown } from './shutdown';

/** The job states `queue_jobs` reports. */
const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
/** The outcomes `job_duration_seconds` records. */
const JOB_OUTCOMES = ['completed', 'failed'] as const;
/** How often each process checks its dependencies for `dependency_up`, and how long a check may take. */
export const DEPENDENCY_CHECK_MS = 5000;
export const DEPENDENCY_TIMEOUT_MS = 2000;

/**
 * Every metric the service exports (one registry per process). No label takes a per-attempt or
 * per-user value: routes are patterns, queues and job names are fixed sets.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route pattern, method and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    // p99 should be a few milliseconds: fine buckets below 25 ms
    buckets: [0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly queueLag = new Histogram({
    name: 'queue_lag_seconds',
    help: 'From when a job was due (added, or its delay ran out) to when a worker started it',
    labelNames: ['queue', 'shard'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly jobDuration = new Histogram({
    name: 'job_duration_seconds',
    help: 'Job run time by queue, job name and outcome',
    // job_name, not job: Prometheus' scrape target label is `job`, and a clash renames ours to exported_job
    labelNames: ['queue', 'shard', 'job_name', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly persistLag = new Histogram({
    name: 'persist_lag_seconds',
    help: "From an attempt's first unpersisted change to its PostgreSQL write (the write-behind delay)",
    buckets: [0.5, 1, 2, 5, 10, 15, 20, 25, 30, 31, 32, 33, 35, 40, 50, 60, 120, 300],
    registers: [this.registry],
  });

  readonly conflicts = new Counter({
    name: 'session_version_conflicts_total',
    help: 'Writes rejected with 409 because their version was stale',
    registers: [this.registry],
  });

  readonly cacheReads = new Counter({
    name: 'session_cache_reads_total',
    help: 'Attempt reads by where they were served from',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly transitions = new Counter({
    name: 'session_transitions_total',
    help: 'Attempts moved to a closed status, by target status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'quiz_webhook_deliveries_total',
    help: 'Webhook delivery tries by outcome: delivered (2xx), failed (retried), refused (URL not configured, dropped), dead_lettered',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly webhookDuration = new Histogram({
    name: 'quiz_webhook_delivery_duration_seconds',
    help: 'Webhook delivery request time by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly webhookDeadLetters = new Counter({
    name: 'quiz_webhook_dead_letters_total',
    help: 'Webhook deliveries given up after WEBHOOK_RETRY_SECONDS (kept in the deliver-webhook queue failed set)',
    registers: [this.registry],
  });

  constructor(role: string) {
    this.registry.setDefaultLabels({ role });
    collectDefaultMetrics({ register: this.registry });
    // series exist from the start (at 0), so dashboards and rate() see them before traffic
    for (const source of ['redis', 'postgres']) this.cacheReads.inc({ source }, 0);
    for (const status of ['completed', 'expired', 'abandoned']) this.transitions.inc({ status }, 0);
    for (const outcome of DELIVERY_OUTCOMES) this.webhookDeliveries.inc({ outcome }, 0);
    this.webhookDeadLetters.inc(0);
  }

  /** Reports `queue_jobs` for these queues, read at scrape time. */
  watchQueues(queues: ReadonlyArray<ShardedQueue>): void {
    new Gauge({
      name: 'queue_jobs',
      help: 'Jobs per queue and state, read at scrape time',
      labelNames: ['queue', 'shard', 'state'] as const,
      registers: [this.registry],
      async collect() {
        await Promise.all(
          queues.flatMap((shards) =>
            shards.map(async (q, shard) => {
              const counts = await q.getJobCounts(...JOB_STATES).catch(() => null);
              if (!counts) return;
              for (const state of JOB_STATES) this.set({ queue: q.name, shard: String(shard), state }, counts[state] ?? 0);
            }),
          ),
        );
      },
    });
  }

  /**
   * Series at 0 for the jobs a worker runs, both outcomes, so a failure shows as a rise from 0 (and
   * `increase()` in an alert sees the first one) and a panel shows 0, not "No data".
   */
  zeroJobs(queue: QueueName, shard: number, jobNames: readonly string[]): void {
    for (const job_name of jobNames) {
      for (const outcome of JOB_OUTCOMES) this.jobDuration.zero({ queue, shard: String(shard), job_name, outcome });
    }
    this.queueLag.zero({ queue, shard: String(shard) });
  }

  /**
   * Reports `dependency_up{dependency}`: 1 when the last check of the dependency succeeded within
   * DEPENDENCY_TIMEOUT_MS, else 0; checked every DEPENDENCY_CHECK_MS (and once at once). Stops on shutdown.
   */
  watchDependencies(checks: Record<string, () => Promise<unknown>>, shutdown: Shutdown): void {
    const gauge = new Gauge({
      name: 'dependency_up',
      help: `1 when this process reached the dependency at its last check (every ${DEPENDENCY_CHECK_MS / 1000} s), else 0`,
      labelNames: ['dependency'] as const,
      registers: [this.registry],
    });
    const probe = () =>
      Promise.all(
        Object.entries(checks).map(async ([dependency, check]) => {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), DEPENDENCY_TIMEOUT_MS)));
          const up = await Promise.race([check(), timeout]).then(
            () => 1,
            () => 0,
          );
          clearTimeout(timer);
          gauge.set({ dependency }, up);
        }),
      );
    void probe();
    const every = setInterval(() => void probe(), DEPENDENCY_CHECK_MS);
    every.unref();
    shutdown.add('dependency checks', async () => clearInterval(every), ShutdownOrder.StopIntake);
  }

  /**
   * Reports the write-behind's backlog at scrape time: `session_dirty_attempts` (attempts with
   * changes not yet in PostgreSQL) and `session_dirty_oldest_seconds` (how long the oldest has waited).
   */
  watchDirtyBacklog(backlog: () => Promise<{ count: number; oldestSince: number | null }>, clock: () => number = Date.now): void {
    let last: Promise<{ count: number; oldestSince: number | null } | null> | null = null;
    // one read per scrape serves both gauges
    const read = () => (last ??= backlog().catch(() => null));
    new Gauge({
      name: 'session_dirty_attempts',
      help: 'Attempts whose changes are not yet in PostgreSQL (the write-behind backlog), read at scrape time',
      registers: [this.registry],
      async collect() {
        const b = await read();
        if (b) this.set(b.count);
      },
    });
    new Gauge({
      name: 'session_dirty_oldest_seconds',
      help: 'How long the oldest unpersisted change has waited for the write-behind (0 when none waits), read at scrape time',
      registers: [this.registry],
      async collect() {
        const b = await read();
        last = null;
        if (b) this.set(b.oldestSince === null ? 0 : Math.max(0, (clock() - b.oldestSince) / 1000));
      },
    });
  }

  /** Reports `sse_streams_open`, the streams this process serves, read at scrape time. */
  watchStreams(size: () => number): void {
    new Gauge({
      name: 'sse_streams_open',
      help: 'Server-Sent Event streams this API process holds open (bounded by MAX_STREAMS)',
      registers: [this.registry],
      collect() {
        this.set(size());
      },
    });
  }

  /** The session service's observers. */
  sessionObservers() {
    return {
      transitioned: (attempt: Attempt) => this.transitions.inc({ status: attempt.status }),
      readFrom: (source: 'redis' | 'postgres') => this.cacheReads.inc({ source }),
      conflicted: () => this.conflicts.inc(),
    };
  }

  /** The job observer for workers. */
  jobObserver() {
    return {
      consuming: (queue: QueueName, shard: number, jobNames: readonly string[]) => this.zeroJobs(queue, shard, jobNames),
      started: (queue: QueueName, _job: unknown, lagMs: number, shard = 0) =>
        this.queueLag.observe({ queue, shard: String(shard) }, lagMs / 1000),
      finished: (queue: QueueName, job: { name: string }, outcome: string, seconds: number, shard = 0) =>
        this.jobDuration.observe({ queue, shard: String(shard), job_name: job.name, outcome }, seconds),
    };
  }

  /** The webhook worker's observer. */
  webhookObserver() {
    return {
      tried: (outcome: DeliveryOutcome, seconds: number) => {
        this.webhookDeliveries.inc({ outcome });
        if (outcome === 'dead_lettered') this.webhookDeadLetters.inc();
        if (outcome !== 'refused') this.webhookDuration.observe({ outcome }, seconds);
      },
    };
  }

  /** The text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Serves GET /metrics (and /health) on its own port, for worker processes; closed on shutdown. */
  async serve(port: number, host: string, log: Logger, shutdown: Shutdown): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
        this.render().then(
          ({ contentType, body }) => {
            res.writeHead(200, { 'content-type': contentType });
            res.end(body);
          },
          () => {
            res.writeHead(500).end();
          },
        );
      } else if (req.method === 'GET' && req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    shutdown.add('metrics server', () => new Promise((resolve) => server.close(resolve)), ShutdownOrder.CloseMetrics);
    const address = server.address();
    log.info(`metrics on ${typeof address === 'object' && address ? `${address.address}:${address.port}` : port}/metrics`);
    return server;
  }
}
