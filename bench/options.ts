import { parseArgs } from 'node:util';
import { OVERDUE_HANDLINGS, type OverdueHandling } from '../src/shared/domain/policy';

/** The HTTP load profiles: reads, versioned progress writes, and 80 % reads / 20 % writes. */
export const PROFILES = ['get', 'write', 'mixed'] as const;
/** A load profile. */
export type Profile = (typeof PROFILES)[number];

/** The phases a run can include; `--phases` picks a subset (e.g. `http` for a profiling run). */
export const PHASES = ['http', 'write-behind', 'scale', 'streams'] as const;
/** A phase name. */
export type Phase = (typeof PHASES)[number];

/** Everything a bench run is parameterised by. */
export interface BenchOptions {
  /** The small preset for `npm run bench:smoke`. */
  smoke: boolean;
  attempts: number;
  /** Seconds per measured load run. */
  duration: number;
  /** Seconds of unmeasured load on each app before the first measured run. */
  warmup: number;
  /**
   * Slices each compared run is cut into, the two sides taking turns (measure.ts interleavedRuns):
   * the baseline and the service, plain and featured writes, 10k and the full scale count.
   */
  slices: number;
  connections: number[];
  wbAttempts: number;
  wbDuration: number;
  /** Seconds between one student's writes in the write-behind phase. */
  wbInterval: number;
  expiryAttempts: number;
  /** Time limits (s) of the expiry attempts: spread evenly over [min, max]. */
  expiryLimit: [number, number];
  scaleAttempts: number;
  /** The attempt count the scale figure is compared against (the 10,000). */
  scaleBaseAttempts: number;
  /** Open SSE streams in the streams phase, one per seeded attempt. */
  streams: number;
  /** Progress writes per second, and for how many seconds, with every stream open. */
  streamRate: number;
  streamSeconds: number;
  /** Seconds between the last stream's open and the second memory reading. */
  streamSettle: number;
  /** PERSIST_DELAY_SECONDS for the workers; the service default (30) unless given. */
  persistDelay: number;
  redisDb: number;
  pgDatabase: string;
  phases: Phase[];
  /** The HTTP profiles to measure (all by default; one alone for a CPU profile of it). */
  profiles: Profile[];
  /** Start the API (and the baseline) under `node --cpu-prof`; profiles go to the results dir. */
  cpuProf: boolean;
  /** Keep the bench database and Redis DB afterwards, for a look. */
  keep: boolean;
  /** --max-semi-space-size (MB) of every Node process the bench starts, baseline included; 0: Node's default. */
  semiSpace: number;
  resultsDir: string;
  /**
   * Run the HTTP phase's attempts under a quiz policy with this overdue handling (and an
   * accommodation for each user), so its figures are "with policies in use"; null: no policy.
   */
  policy: OverdueHandling | null;
  /**
   * `single` / `cluster`: instead of the phases, the capacity run (bench/capacity.ts) on one Redis
   * (queues on a private second one) or on a local Redis Cluster; `off`: the phases.
   */
  capacity: 'off' | 'single' | 'cluster';
  /** Measure the heavy baseline (HGETALL, the service's progress script) as a third column. */
  heavyBaseline: boolean;
  /** Measure what the features cost a write (policies, idempotency keys, an open stream) against plain writes. */
  features: boolean;
  /**
   * Writes per second of each features' arm; 0: as fast as it goes (the throughput ratio). At a
   * fixed rate every arm answers the same requests, so its API and Redis µs per write are what its
   * features cost, without the feedback of a saturated machine (a slower arm spreads the fixed
   * per-tick costs over fewer requests).
   */
  featuresRate: number;
  /** First port of the capacity run's local cluster (6 ports). */
  clusterPort: number;
}

const HELP = `usage: node dist/bench/bench/run.js [options]   (npm run bench -- [options])
  --attempts N          attempts for the HTTP phases (default 10000)
  --duration S          seconds per measured run (default 10)
  --warmup S            unmeasured seconds per app before measuring (default 3)
  --slices N            compared runs (baseline and service, plain and featured writes, the scale
                        figure's two sizes) take turns in N slices of duration/N each, so a drift
                        of the machine falls on both sides alike (default 4)
  --connections A,B     connection counts (default 50,200)
  --wb-attempts N       students in the write-behind phase (default 2000)
  --wb-duration S       length of the write-behind phase (default 60)
  --wb-interval S       seconds between one student's writes (default 3)
  --expiry-attempts N   timed attempts for expiry lateness (default 300)
  --scale-attempts N    open attempts for the scale figure (default 100000)
  --streams N           open SSE streams in the streams phase, one per attempt (default 10000)
  --stream-rate R       progress writes per second with every stream open (default 200)
  --stream-seconds S    for how long (default 10)
  --stream-settle S     seconds after the opens before memory is read again (default 5)
  --persist-delay S     PERSIST_DELAY_SECONDS for the service (default: the service's 30)
  --phases LIST         subset of ${PHASES.join(',')} (default: all)
  --profiles LIST       HTTP profiles, subset of ${PROFILES.join(',')} (default: all)
  --redis-db N          Redis DB the run owns and flushes (default 9); the scale phase claims a
                        second, empty one of 5..15 while it runs, to set attempts aside in
  --pg-database NAME    PostgreSQL database the run creates and drops (default quiz_bench)
  --semi-space MB       --max-semi-space-size of the API, the workers and the baseline alike
                        (default 64, as the Procfile, scripts/start.sh and the Dockerfile run
                        the service; 0 = Node's default)
  --policy HANDLING     the HTTP phase's attempts start under a quiz policy with this
                        overdue_handling (${OVERDUE_HANDLINGS.join(', ')}) and an accommodation
                        each, to compare the write ratio with policies in use (default: none)
  --capacity            instead of the phases: CPU per read, write and persisted row of each component,
                        and the capacity plan from them (state and queues on two Redis servers)
  --cluster             the same on a local 3-master Redis Cluster (ports --cluster-port..+5, default 7500)
  --heavy-baseline      also measure the heavy baseline of earlier runs (HGETALL of the hash, the
                        service's own progress script) as a third column
  --features-rate R     run the features' arms at R writes/s each (default 0: as fast as they go);
                        their figure is then the CPU per write, plain over featured
  --no-features         skip the features' cost run (policies, idempotency keys and a quiz stream
                        against plain writes, at the first connection count)
  --cpu-prof            run the API and the baseline under node --cpu-prof
  --keep                keep the database and the Redis DB afterwards
  --results DIR         where the JSON (and profiles, logs) go (default bench/results)
  --smoke               tiny preset: 50 attempts, 1 s runs, 10 connections, short write-behind and scale,
                        20 streams`;

const positiveInt = (name: string, raw: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a whole number, got ${JSON.stringify(raw)}`);
  return n;
};

const positiveNumber = (name: string, raw: string): number => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(raw)}`);
  return n;
};

/** Parses the command line; `--smoke` switches the defaults to the tiny preset, flags still override. */
export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      attempts: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      slices: { type: 'string' },
      connections: { type: 'string' },
      'wb-attempts': { type: 'string' },
      'wb-duration': { type: 'string' },
      'wb-interval': { type: 'string' },
      'expiry-attempts': { type: 'string' },
      'scale-attempts': { type: 'string' },
      streams: { type: 'string' },
      'stream-rate': { type: 'string' },
      'stream-seconds': { type: 'string' },
      'stream-settle': { type: 'string' },
      'persist-delay': { type: 'string' },
      phases: { type: 'string' },
      profiles: { type: 'string' },
      'redis-db': { type: 'string' },
      'pg-database': { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'heavy-baseline': { type: 'boolean', default: false },
      'no-features': { type: 'boolean', default: false },
      'features-rate': { type: 'string' },
      keep: { type: 'boolean', default: false },
      'semi-space': { type: 'string' },
      policy: { type: 'string' },
      results: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      capacity: { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      'cluster-port': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const smoke = values.smoke === true;
  const defaults: BenchOptions = smoke
    ? {
        smoke,
        attempts: 50,
        duration: 1,
        warmup: 0,
        slices: 1,
        connections: [10],
        wbAttempts: 20,
        wbDuration: 3,
        wbInterval: 0.5,
        expiryAttempts: 10,
        expiryLimit: [1, 2],
        scaleAttempts: 200,
        scaleBaseAttempts: 50,
        streams: 20,
        streamRate: 20,
        streamSeconds: 2,
        streamSettle: 1,
        persistDelay: 1,
        redisDb: 10,
        pgDatabase: `quiz_bench_smoke_${process.pid}`,
        phases: [...PHASES],
        profiles: [...PROFILES],
        cpuProf: false,
        keep: false,
        semiSpace: 64,
        resultsDir: 'bench/results',
        policy: null,
        capacity: 'off',
        clusterPort: 7500,
        heavyBaseline: false,
        features: true,
        featuresRate: 0,
      }
    : {
        smoke,
        attempts: 10_000,
        duration: 10,
        warmup: 3,
        slices: 4,
        connections: [50, 200],
        wbAttempts: 2000,
        wbDuration: 60,
        wbInterval: 3,
        expiryAttempts: 300,
        expiryLimit: [2, 5],
        scaleAttempts: 100_000,
        scaleBaseAttempts: 10_000,
        streams: 10_000,
        streamRate: 200,
        streamSeconds: 10,
        streamSettle: 5,
        persistDelay: 30,
        redisDb: 9,
        pgDatabase: 'quiz_bench',
        phases: [...PHASES],
        profiles: [...PROFILES],
        cpuProf: false,
        keep: false,
        semiSpace: 64,
        resultsDir: 'bench/results',
        policy: null,
        capacity: 'off',
        clusterPort: 7500,
        heavyBaseline: false,
        features: true,
        featuresRate: 0,
      };
  const o = {
    ...defaults,
    cpuProf: values['cpu-prof'] === true,
    keep: values.keep === true,
    heavyBaseline: values['heavy-baseline'] === true,
    features: values['no-features'] !== true,
  };
  if (values['semi-space'] !== undefined)
    o.semiSpace = Number(values['semi-space']) === 0 ? 0 : positiveInt('semi-space', values['semi-space']);
  if (values.attempts !== undefined) o.attempts = positiveInt('attempts', values.attempts);
  if (values.duration !== undefined) o.duration = positiveNumber('duration', values.duration);
  if (values.warmup !== undefined) o.warmup = Number(values.warmup) === 0 ? 0 : positiveNumber('warmup', values.warmup);
  if (values.slices !== undefined) o.slices = Math.max(1, positiveInt('slices', values.slices));
  if (values.connections !== undefined) o.connections = values.connections.split(',').map((c) => positiveInt('connections', c.trim()));
  if (values['wb-attempts'] !== undefined) o.wbAttempts = positiveInt('wb-attempts', values['wb-attempts']);
  if (values['wb-duration'] !== undefined) o.wbDuration = positiveNumber('wb-duration', values['wb-duration']);
  if (values['wb-interval'] !== undefined) o.wbInterval = positiveNumber('wb-interval', values['wb-interval']);
  if (values['expiry-attempts'] !== undefined) o.expiryAttempts = positiveInt('expiry-attempts', values['expiry-attempts']);
  if (values['scale-attempts'] !== undefined) o.scaleAttempts = positiveInt('scale-attempts', values['scale-attempts']);
  if (values.streams !== undefined) o.streams = positiveInt('streams', values.streams);
  if (values['stream-rate'] !== undefined) o.streamRate = positiveNumber('stream-rate', values['stream-rate']);
  if (values['stream-seconds'] !== undefined) o.streamSeconds = positiveNumber('stream-seconds', values['stream-seconds']);
  if (values['stream-settle'] !== undefined)
    o.streamSettle = Number(values['stream-settle']) === 0 ? 0 : positiveNumber('stream-settle', values['stream-settle']);
  if (values['persist-delay'] !== undefined) o.persistDelay = positiveInt('persist-delay', values['persist-delay']);
  if (values['redis-db'] !== undefined) o.redisDb = positiveInt('redis-db', values['redis-db']);
  if (values['pg-database'] !== undefined) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(values['pg-database'])) throw new Error('--pg-database: lower-case letters, digits and _ only');
    o.pgDatabase = values['pg-database'];
  }
  if (values['features-rate'] !== undefined)
    o.featuresRate = Number(values['features-rate']) === 0 ? 0 : positiveNumber('features-rate', values['features-rate']);
  if (values.results !== undefined) o.resultsDir = values.results;
  if (values.cluster === true) o.capacity = 'cluster';
  else if (values.capacity === true) o.capacity = 'single';
  if (values['cluster-port'] !== undefined) o.clusterPort = positiveInt('cluster-port', values['cluster-port']);
  if (values.policy !== undefined) {
    if (!(OVERDUE_HANDLINGS as readonly string[]).includes(values.policy))
      throw new Error(`--policy: one of ${OVERDUE_HANDLINGS.join(', ')}, got ${JSON.stringify(values.policy)}`);
    o.policy = values.policy as OverdueHandling;
  }
  if (values.phases !== undefined) {
    const phases = values.phases.split(',').map((p) => p.trim());
    const unknown = phases.filter((p) => !(PHASES as readonly string[]).includes(p));
    if (unknown.length > 0) throw new Error(`--phases: unknown ${unknown.join(', ')} (known: ${PHASES.join(', ')})`);
    o.phases = phases as Phase[];
  }
  if (values.profiles !== undefined) {
    const profiles = values.profiles.split(',').map((p) => p.trim());
    const unknown = profiles.filter((p) => !(PROFILES as readonly string[]).includes(p));
    if (unknown.length > 0) throw new Error(`--profiles: unknown ${unknown.join(', ')} (known: ${PROFILES.join(', ')})`);
    o.profiles = profiles as Profile[];
  }
  if (o.attempts < Math.max(...o.connections))
    throw new Error('--attempts must be at least the largest connection count (each connection owns attempts)');
  if (o.phases.includes('streams') && o.streams < 1) throw new Error('--streams must be at least 1 when the streams phase runs');
  o.scaleBaseAttempts = Math.min(o.scaleBaseAttempts, o.scaleAttempts);
  return o;
}
