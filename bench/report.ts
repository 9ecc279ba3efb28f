import type { MachineInfo } from './machine';
import { commandSummary, formatSpread } from './measure';
import type { BenchOptions } from './options';
import type { HttpPhaseResult } from './phases/http';
import type { ScaleResult } from './phases/scale';
import type { StreamsResult } from './phases/streams';
import type { WriteBehindResult } from './phases/writeBehind';

/** Everything one run measured: what goes to bench/results/*.json. */
export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  command: string;
  options: BenchOptions;
  machine: MachineInfo;
  http: HttpPhaseResult | null;
  writeBehind: WriteBehindResult | null;
  scale: ScaleResult | null;
  streams: StreamsResult | null;
  targets: TargetCheck[];
}

/** One of the issue's targets, the figure measured for it, and whether it was met. */
export interface TargetCheck {
  name: string;
  target: string;
  value: number;
  met: boolean;
}

/**
 * A p99 "unchanged" within this factor (issue 17's scale target: 100,000 open attempts against
 * 10,000, p99 × 1.1 at most).
 */
export const P99_UNCHANGED_FACTOR = 1.1;

/** The issue's targets, checked against the figures this run produced. */
export function checkTargets(r: Pick<BenchReport, 'options' | 'http' | 'writeBehind' | 'scale' | 'streams'>): TargetCheck[] {
  const out: TargetCheck[] = [];
  const firstC = r.options.connections[0];
  // issue 17's targets, against the bare baseline, at the first connection count (50 by default)
  for (const run of (r.http?.runs ?? []).filter((x) => x.connections === firstC)) {
    const floor = run.profile === 'get' ? 0.8 : run.profile === 'write' ? 0.75 : null;
    if (floor !== null)
      out.push({
        name: `${run.profile === 'get' ? 'GET' : 'progress write'} throughput vs bare baseline, ${firstC} conn`,
        target: `>= ${floor}`,
        value: run.ratio,
        met: run.ratio >= floor,
      });
    out.push({
      name: `${run.profile} p99 vs bare baseline p99, ${firstC} conn`,
      target: '<= 1.5',
      value: run.p99Ratio,
      met: run.p99Ratio <= 1.5,
    });
    const p99 = run.service.latency.p99;
    out.push({ name: `${run.profile} p99 (ms), ${firstC} conn`, target: '< 25', value: p99, met: p99 < 25 });
    const failed = Object.values(run.service.statuses).reduce((a, b) => a + b, 0) + run.service.errors;
    out.push({ name: `${run.profile} non-2xx responses and errors, ${firstC} conn`, target: '= 0', value: failed, met: failed === 0 });
  }
  const ft = r.http?.features;
  if (ft)
    out.push({
      name: ft.rate
        ? `CPU per write without policies, idempotency keys and a quiz stream over with them, ${ft.rate}/s each`
        : `writes with policies, idempotency keys and a quiz stream vs without, ${ft.connections} conn`,
      target: '>= 0.95',
      value: ft.ratio,
      met: ft.ratio >= 0.95 && ft.streamBytes > 0,
    });
  const wb = r.writeBehind;
  if (wb) {
    out.push({ name: 'PostgreSQL rows per accepted write', target: '<= 0.1', value: wb.rowsPerWrite, met: wb.rowsPerWrite <= 0.1 });
    const limit = wb.persistDelaySeconds + 5;
    out.push({
      name: 'persist lag p99 (s)',
      target: `<= ${limit}`,
      value: wb.persistLagP99Seconds.value,
      met: wb.persistLagP99Seconds.value <= limit,
    });
    out.push({
      name: 'expiry lateness p99 (ms)',
      target: '<= 1000',
      value: wb.expiry.latenessP99Ms,
      met: wb.expiry.expired === wb.expiry.attempts && wb.expiry.latenessP99Ms <= 1000,
    });
  }
  const sc = r.scale;
  if (sc)
    out.push({
      name: 'Redis bytes per open attempt, 20 answers (hash)',
      target: '<= 2048',
      value: sc.bytesPerAttempt,
      met: sc.bytesPerAttempt <= 2048,
    });
  if (r.http) {
    const m = r.http.memory;
    out.push({
      name: 'Redis bytes per open attempt via API, 20 answers, dirty (hash, events, deadline entry)',
      target: '<= 2048',
      value: m.dirtyBytesPerAttempt,
      met: m.dirtyBytesPerAttempt <= 2048,
    });
    out.push({
      name: 'Redis bytes per open attempt via API, 20 answers, persisted',
      target: '<= 2048',
      value: m.cleanBytesPerAttempt,
      met: m.cleanBytesPerAttempt <= 2048,
    });
  }
  if (sc) {
    out.push({
      // over the baseline's own ratio on as many keys, taking turns with the service at each size:
      // the machine's drift between the two sizes' measurements is the baseline's as much
      name: `GET throughput ${sc.large.openAttempts} vs ${sc.small.openAttempts} attempts (ratio, over the baseline's)`,
      target: '>= 0.95',
      value: sc.rpsRatioOverBaseline,
      met: sc.rpsRatioOverBaseline >= 0.95,
    });
    out.push({
      name: `GET p99 ${sc.large.openAttempts} vs ${sc.small.openAttempts} attempts (ratio, over the baseline's)`,
      target: `<= ${P99_UNCHANGED_FACTOR}`,
      value: sc.p99RatioOverBaseline,
      met: sc.p99RatioOverBaseline <= P99_UNCHANGED_FACTOR,
    });
  }
  const st = r.streams;
  if (st) {
    out.push({
      name: `stream events not delivered within ${st.delivery.timeoutMs / 1000} s, ${st.opened} streams`,
      target: '= 0',
      value: st.delivery.missing,
      met: st.delivery.missing === 0 && st.opened === st.streams,
    });
    out.push({
      name: 'sse_streams_open after closing every stream',
      target: '= 0',
      value: st.close.gaugeAfter,
      met: st.close.gaugeAfter === 0,
    });
  }
  return out;
}

const fmt = (n: number | undefined | null, digits = 2): string =>
  n === undefined || n === null || Number.isNaN(n) ? 'n/a' : Number(n.toFixed(digits)).toString();
const pad = (cells: string[], widths: number[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [pad(header, widths), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => pad(r, widths))].join('\n');
}

/** The report as text tables for stdout. */
export function renderReport(r: BenchReport): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `quiz-session-service bench — ${r.startedAt} — ${m.nproc} cores (${m.cpuModel}), ${m.memTotalGiB} GiB, node ${m.node}, load ${m.loadAverage.join(' ')}`,
  );
  out.push(
    `every process (service and baseline): ${r.options.semiSpace > 0 ? `--max-semi-space-size=${r.options.semiSpace}` : "Node's default young generation"}`,
  );
  if (r.http) {
    const policies = r.options.policy ? `, under a quiz policy (overdue_handling ${r.options.policy}) with an accommodation each` : '';
    out.push('', `HTTP (${r.http.attempts} attempts with 20 answers${policies}, ${r.options.duration} s per run; rps = 2xx/s; latency ms)`);
    out.push(
      table(
        [
          'profile',
          'conn',
          'base rps',
          'base p99',
          'svc rps',
          'svc p50',
          'svc p99',
          'ratio',
          'by slice',
          'p99 ratio',
          'svc non-2xx',
          'app µs/req base / svc',
          'redis µs/req base / svc',
          ...(r.http.runs.some((x) => x.heavy) ? ['heavy rps', 'heavy p99'] : []),
        ],
        r.http.runs.map((run) => [
          run.profile,
          String(run.connections),
          fmt(run.baseline.rps, 0),
          fmt(run.baseline.latency.p99),
          fmt(run.service.rps, 0),
          fmt(run.service.latency.p50),
          fmt(run.service.latency.p99),
          fmt(run.ratio, 3),
          formatSpread(run.ratioBySlice),
          fmt(run.p99Ratio, 3),
          String(Object.values(run.service.statuses).reduce((a, b) => a + b, 0) + run.service.errors),
          `${fmt(run.baseline.cost.appMicros, 1)} / ${fmt(run.service.cost.appMicros, 1)}`,
          `${fmt(run.baseline.cost.redisMicros, 1)} / ${fmt(run.service.cost.redisMicros, 1)}`,
          ...(run.heavy ? [fmt(run.heavy.rps, 0), fmt(run.heavy.latency.p99)] : []),
        ]),
      ),
    );
    out.push(
      'Redis commands per run (INFO commandstats, the six costliest: µs inside Redis per call × calls per 2xx response; commands run by scripts included, and in fcall/evalsha; then the reads Redis processed per 2xx response, below 1 when an app sends the commands of several requests in one write):',
    );
    for (const run of r.http.runs)
      out.push(
        `  ${run.profile} c=${run.connections}: baseline ${commandSummary(run.baseline.cost)}; service ${commandSummary(run.service.cost)}`,
      );
    const ft = r.http.features;
    if (ft) {
      out.push(
        `Features' cost (writes, ${ft.connections} conn${ft.rate ? `, ${ft.rate}/s each` : ''}; ratio = 2xx/s over the plain writes', ` +
          "cpu ratio = the plain writes' API + Redis µs per write over the arm's, the four taking turns in slices):",
      );
      for (const x of ft.steps)
        out.push(
          `  ${x.name}: ${fmt(x.run.rps, 0)}/s, ratio ${fmt(x.ratio, 3)} (by slice ${formatSpread(x.ratioBySlice)}), cpu ratio ${fmt(x.cpuRatio, 3)}, p99 ${fmt(x.run.latency.p99)} ms, ` +
            `api ${fmt(x.run.cost.appMicros, 1)} µs, redis ${fmt(x.run.cost.redisMicros, 1)} µs/req (${commandSummary(x.run.cost)})`,
        );
      out.push(`  the quiz stream received ${ft.streamBytes} B`);
    }
    const mem = r.http.memory;
    out.push(
      `created ${r.http.attempts} attempts at ${fmt(r.http.createPerSecond, 0)}/s; Redis per attempt via API: started ${mem.startedBytesPerAttempt} B, ` +
        `after 20 answers (dirty) ${mem.dirtyBytesPerAttempt} B, persisted ${mem.cleanBytesPerAttempt} B ` +
        `(MEMORY USAGE: attempt hash ${mem.hashBytes} B, deadline index ${mem.deadlineIndexBytesPerEntry} B per entry (${mem.deadlineIndexEntries} listed); ${mem.queueEventEntries} queue event entries)`,
      'app / redis µs/req: CPU time of the app process (bare baseline app or API) and of Redis per 2xx response',
      "by slice: the ratio round by round (each round's slice of one arm over the other's), lowest–highest: how far one slice of this machine moves it",
    );
  }
  const wb = r.writeBehind;
  if (wb) {
    out.push(
      '',
      `Write-behind (${wb.attempts} students, one write per ${wb.intervalSeconds} s for ${wb.seconds} s, PERSIST_DELAY_SECONDS=${wb.persistDelaySeconds})`,
    );
    out.push(
      table(
        ['figure', 'value'],
        [
          ['accepted writes', String(wb.acceptedWrites)],
          ['rejected writes', JSON.stringify(wb.rejected)],
          ['write p50 / p99 (ms)', `${fmt(wb.writeLatencyP50Ms)} / ${fmt(wb.writeLatencyP99Ms)}`],
          ['PostgreSQL rows written', String(wb.rowsWritten)],
          ['rows per accepted write', fmt(wb.rowsPerWrite, 4)],
          ['persist lag p50 (s, bucket bound)', `${fmt(wb.persistLagP50Seconds.value)} (<= ${wb.persistLagP50Seconds.bucketBound})`],
          ['persist lag p99 (s, bucket bound)', `${fmt(wb.persistLagP99Seconds.value)} (<= ${wb.persistLagP99Seconds.bucketBound})`],
          ['persist lag observations', String(wb.persistLagObservations)],
          ['queue lag p99 persist (s)', `${fmt(wb.queueLagP99Seconds.persist.value, 3)} (<= ${wb.queueLagP99Seconds.persist.bucketBound})`],
          [
            'queue lag p99 lifecycle (s)',
            `${fmt(wb.queueLagP99Seconds.lifecycle.value, 3)} (<= ${wb.queueLagP99Seconds.lifecycle.bucketBound})`,
          ],
          ['drained after the phase (s)', `${fmt(wb.drainSeconds, 1)} (${wb.dirtyLeft} left)`],
          ['expired / timed attempts', `${wb.expiry.expired} / ${wb.expiry.attempts}`],
          [
            'expiry lateness p50 / p99 / max (ms)',
            `${fmt(wb.expiry.latenessP50Ms, 0)} / ${fmt(wb.expiry.latenessP99Ms, 0)} / ${fmt(wb.expiry.latenessMaxMs, 0)}`,
          ],
        ],
      ),
    );
  }
  const sc = r.scale;
  if (sc) {
    out.push('', `Scale (attempts seeded with 20 answers; GET at ${r.options.connections[0]} connections, ${r.options.duration} s)`);
    out.push(
      table(
        [
          'open attempts',
          'session keys',
          'base rps',
          'base p99',
          'svc rps',
          'svc p50',
          'svc p99',
          'api µs/req',
          'redis µs/req',
          'commands',
        ],
        [sc.small, sc.large].map((s) => [
          String(s.openAttempts),
          String(s.sessionKeys),
          fmt(s.baseline.rps, 0),
          fmt(s.baseline.latency.p99),
          fmt(s.run.rps, 0),
          fmt(s.run.latency.p50),
          fmt(s.run.latency.p99),
          fmt(s.run.cost.appMicros, 1),
          fmt(s.run.cost.redisMicros, 1),
          commandSummary(s.run.cost),
        ]),
      ),
    );
    out.push(
      `Redis per seeded attempt: ${sc.bytesPerAttempt} B (used_memory delta), ${sc.hashMemoryUsageBytes} B (MEMORY USAGE of the hash); ` +
        `service rps ratio ${fmt(sc.rpsRatio, 3)} (over the baseline's ${fmt(sc.rpsRatioOverBaseline, 3)}, by slice ${formatSpread(sc.rpsRatioOverBaselineBySlice)}), ` +
        `p99 ratio ${fmt(sc.p99Ratio, 3)} (over the baseline's ${fmt(sc.p99RatioOverBaseline, 3)})`,
    );
    if (sc.sameRun) {
      const h = sc.sameRun;
      out.push(
        `in turns, every attempt seeded: GET over ${sc.small.openAttempts} of them ${fmt(h.hot.rps, 0)}/s p99 ${fmt(h.hot.latency.p99)} ms, ` +
          `over all ${sc.large.openAttempts} ${fmt(h.all.rps, 0)}/s p99 ${fmt(h.all.latency.p99)} ms: rps ratio ${fmt(h.rpsRatio, 3)} (by slice ${formatSpread(h.rpsRatioBySlice)}), ` +
          `p99 ratio ${fmt(h.p99Ratio, 3)}; ${commandSummary(h.hot.cost)} | ${commandSummary(h.all.cost)}`,
      );
    }
  }
  const st = r.streams;
  if (st) {
    const mib = (b: number) => fmt(b / 2 ** 20, 1);
    const lat = (s: { p50: number; p99: number; max: number }) => `${fmt(s.p50)} / ${fmt(s.p99)} / ${fmt(s.max)}`;
    out.push(
      '',
      `Streams (${st.streams} SSE streams, one per seeded attempt; ${st.writes.rate} progress writes/s for ${st.writes.seconds} s with all open)`,
    );
    out.push(
      table(
        ['figure', 'value'],
        [
          ['streams opened / failed', `${st.opened} / ${st.openFailed}${st.openFailed ? ` ${JSON.stringify(st.openFailures)}` : ''}`],
          [
            `opening (${st.connectConcurrency} at a time)`,
            `${fmt(st.openSeconds, 1)} s, ${fmt(st.openPerSecond, 0)}/s; first event p50 / p99 / max ${lat(st.firstEvent)} ms`,
          ],
          [
            `API RSS before / after (+${st.settleSeconds} s)`,
            `${mib(st.memory.apiRssBefore)} / ${mib(st.memory.apiRssAfter)} MiB: ${fmt(st.memory.apiRssBytesPerStream, 0)} B per stream`,
          ],
          [
            'API heap used before / after (no GC forced)',
            `${mib(st.memory.apiHeapUsedBefore)} / ${mib(st.memory.apiHeapUsedAfter)} MiB: ${fmt(st.memory.apiHeapBytesPerStream, 0)} B per stream`,
          ],
          [
            'Redis used_memory before / after',
            `${mib(st.memory.redisUsedBefore)} / ${mib(st.memory.redisUsedAfter)} MiB: ${fmt(st.memory.redisBytesPerStream, 0)} B per stream`,
          ],
          ['Redis subscribed attempt channels before / after', `${st.memory.redisChannelsBefore} / ${st.memory.redisChannelsAfter}`],
          ['sse_streams_open, all open', fmt(st.gaugeOpen, 0)],
          [
            'writes sent / 200 / failed',
            `${st.writes.sent} / ${st.writes.ok} / ${Object.values(st.writes.failures).reduce((a, b) => a + b, 0)}${
              Object.keys(st.writes.failures).length ? ` ${JSON.stringify(st.writes.failures)}` : ''
            } (${fmt(st.writes.sentPerSecond, 1)}/s sent)`,
          ],
          ['write (PATCH) p50 / p99 / max (ms)', lat(st.writes.latency)],
          ['write sent -> event delivered p50 / p99 / max (ms)', lat(st.delivery)],
          ['events delivered / missing', `${st.delivery.count} / ${st.delivery.missing} (within ${st.delivery.timeoutMs / 1000} s)`],
          ['cpu during the writes (share of a core)', ['api', 'redis', 'harness'].map((k) => `${k} ${fmt(st.writes.cpu[k])}`).join(', ')],
          ['time events; events with data ≠ id; ended by server', `${st.timeEvents}; ${st.mismatchedEvents}; ${st.endedByServer}`],
          ['sse_streams_open after closing', `${fmt(st.close.gaugeAfter, 0)} (after ${fmt(st.close.seconds, 1)} s)`],
        ],
      ),
    );
  }
  out.push('', 'Targets');
  out.push(
    table(
      ['target', 'wanted', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, fmt(t.value, 3), t.met ? 'yes' : 'NO']),
    ),
  );
  return out.join('\n');
}
