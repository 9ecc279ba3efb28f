/**
 * `npm run bench`: the service (API, persist worker and lifecycle worker as separate processes)
 * and a bare Koa + Redis baseline on the local Redis (its own DB) and PostgreSQL (its own
 * database), loaded through HTTP; a table on stdout and a JSON file under bench/results/.
 * Expects `npm run build` (the npm script runs it first). See docs/BENCHMARKS.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import knexFactory from 'knex';
import { redisPid, type BenchContext } from './context';
import { machineInfo } from './machine';
import { parseOptions, type BenchOptions } from './options';
import { httpPhase } from './phases/http';
import { scalePhase } from './phases/scale';
import { runCapacity } from './capacity';
import { streamsPhase } from './phases/streams';
import { writeBehindPhase } from './phases/writeBehind';
import { checkTargets, renderReport, type BenchReport } from './report';
import { createBenchStores } from './stores';
import { BASELINE_JS, MAIN_JS, runScriptToCompletion, startLoggedProcess, waitForHttp, type BenchProcess } from '../test/support/processes';
import { freePort } from '../test/support/ports';

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

async function main(options: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.resolve(options.resultsDir);
  const runDir = path.join(resultsDir, `run-${stamp}${options.smoke ? '-smoke' : ''}`);
  mkdirSync(runDir, { recursive: true });

  const stores = await createBenchStores(options.redisDb, options.pgDatabase, log);
  const knex = knexFactory({ client: 'pg', connection: stores.databaseUrl, pool: { min: 0, max: 4 } });
  const processes: BenchProcess[] = [];
  // Ctrl-C: stop the children and drop the stores rather than leave them running
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping`);
    void Promise.all(processes.map((p) => p.stop(5000)))
      .then(() => stores.destroy(options.keep))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`Redis ${stores.redisUrl}, PostgreSQL ${stores.databaseUrl.replace(/\/\/[^@]*@/, '//')}; logs in ${runDir}`);
    const serviceEnv = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATABASE_URL: stores.databaseUrl,
      REDIS_URL: stores.redisUrl,
      // the service at its defaults: LOG_LEVEL info, one request line per request (the seeds' format)
      PERSIST_DELAY_SECONDS: options.persistDelay,
    };
    await runScriptToCompletion(MAIN_JS, ['migrate'], serviceEnv);
    const version = await knex.raw<{ rows: Array<{ v: string }> }>(`select current_setting('server_version') as v`);
    const machine = machineInfo(`PostgreSQL ${version.rows[0].v}`);

    // the same V8 flags for the service's processes and the baseline: the comparison is of the code
    const gcArgs = options.semiSpace > 0 ? [`--max-semi-space-size=${options.semiSpace}`] : [];
    const profArgs = (name: string) => [
      ...gcArgs,
      ...(options.cpuProf
        ? ['--cpu-prof', `--cpu-prof-dir=${path.join(runDir, 'profiles')}`, `--cpu-prof-name=${name}-${stamp}.cpuprofile`]
        : []),
    ];
    const [apiPort, persistPort, lifecyclePort, baselinePort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const start = (name: string, role: string, port: number, env: Record<string, string | number>, nodeArgs: string[] = gcArgs) => {
      const proc = startLoggedProcess(name, MAIN_JS, [role], { ...serviceEnv, ...env }, port, path.join(runDir, `${name}.log`), nodeArgs);
      processes.push(proc);
      return proc;
    };
    const persist = start('persist-worker', 'persist-worker', persistPort, { METRICS_PORT: persistPort });
    const lifecycle = start('lifecycle-worker', 'lifecycle-worker', lifecyclePort, { METRICS_PORT: lifecyclePort });
    const api = start('api', 'api', apiPort, { PORT: apiPort, METRICS_PORT: await freePort() }, profArgs('api'));
    const baseline = startLoggedProcess(
      'baseline',
      BASELINE_JS,
      [],
      { PORT: baselinePort, REDIS_URL: stores.redisUrl },
      baselinePort,
      path.join(runDir, 'baseline.log'),
      profArgs('baseline'),
    );
    processes.push(baseline);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const baselineUrl = `http://127.0.0.1:${baselinePort}`;
    await Promise.all([
      waitForHttp(api, `${apiUrl}/ready`),
      waitForHttp(persist, `http://127.0.0.1:${persistPort}/health`),
      waitForHttp(lifecycle, `http://127.0.0.1:${lifecyclePort}/health`),
      waitForHttp(baseline, `${baselineUrl}/health`),
    ]);

    const ctx: BenchContext = {
      options,
      stores,
      knex,
      apiUrl,
      baselineUrl,
      workerMetricsUrls: [`http://127.0.0.1:${persistPort}/metrics`, `http://127.0.0.1:${lifecyclePort}/metrics`],
      processes,
      cpuTargets: {
        api: api.pid,
        baseline: baseline.pid,
        'persist-worker': persist.pid,
        'lifecycle-worker': lifecycle.pid,
        redis: await redisPid({ stores }),
      },
      log,
    };
    const has = (phase: BenchOptions['phases'][number]) => options.phases.includes(phase);
    const done: Partial<Pick<BenchReport, 'http' | 'writeBehind' | 'scale' | 'streams'>> = {};
    try {
      done.http = has('http') ? await httpPhase(ctx) : null;
      done.writeBehind = has('write-behind') ? await writeBehindPhase(ctx) : null;
      done.scale = has('scale') ? await scalePhase(ctx) : null;
      done.streams = has('streams') ? await streamsPhase(ctx) : null;
    } catch (err) {
      // keep what the phases before the failure measured
      writeFileSync(
        path.join(runDir, 'partial.json'),
        `${JSON.stringify({ options, machine, ...done, error: String(err).slice(0, 2000) }, null, 2)}\n`,
      );
      throw err;
    }
    const { http = null, writeBehind = null, scale = null, streams = null } = done;

    const report: BenchReport = {
      startedAt: startedAt.toISOString(),
      finishedAt: '',
      command: `node ${path.relative(process.cwd(), process.argv[1])} ${process.argv.slice(2).join(' ')}`.trim(),
      options,
      machine,
      http,
      writeBehind,
      scale,
      streams,
      targets: [],
    };
    report.targets = checkTargets(report);
    report.finishedAt = new Date().toISOString();
    const file = path.join(resultsDir, `bench-${stamp}${options.smoke ? '-smoke' : ''}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, options.smoke ? 'latest-smoke.json' : 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${renderReport(report)}\n\nJSON: ${path.relative(process.cwd(), file)}\n`);
    return report;
  } finally {
    // the API first (profiles are written as it exits), then the workers, which flush what is dirty
    for (const name of ['api', 'baseline', 'persist-worker', 'lifecycle-worker']) {
      await processes.find((p) => p.name === name)?.stop();
    }
    await knex.destroy();
    await stores.destroy(options.keep);
  }
}

let options: BenchOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
(options.capacity === 'off' ? main(options) : runCapacity(options, log)).then(
  () => process.exit(0),
  (err) => {
    // a failed multi-row insert quotes its whole statement: the head of it is enough
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`[bench] failed: ${text.length > 3000 ? `${text.slice(0, 1500)} ... ${text.slice(-1500)}` : text}\n`);
    process.exit(1);
  },
);
