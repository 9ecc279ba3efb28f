/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, or `npm run bench -- --cpu-prof`): the
 * functions with the most self time, and self time by where the code lives (a package in
 * node_modules, a file of the service, node internals).
 *   node dist/bench/bench/cpuprofile.js <file.cpuprofile> [--top 30]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One line of the summary: a name, its self time (ms) and its share of the busy (non-idle) time. */
export interface SelfTime {
  name: string;
  ms: number;
  percent: number;
}

/** Self time per function and per location, with idle time set apart. */
export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  functions: SelfTime[];
  locations: SelfTime[];
}

/** Where a script lives: `pkg:<name>` for node_modules, `node:<internal>`, or its path in the repo. */
function locationOf(url: string): string {
  if (!url) return '(native / VM)';
  if (url.startsWith('node:')) return url;
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + '/node_modules/'.length).split('/');
    return `pkg:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const dist = file.indexOf('/dist/');
  return dist >= 0 ? file.slice(dist + 1) : path.basename(file);
}

/** Reads a profile and adds up self time (each sample's delta goes to the node it landed in). */
export function summarize(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the gap after it to it, as DevTools does
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + Math.max(0, delta));
  }
  const fn = new Map<string, number>();
  const loc = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    if (frame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = locationOf(frame.url);
    const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    const group = frame.url ? where : frame.functionName; // (program), (garbage collector), natives
    loc.set(group, (loc.get(group) ?? 0) + us);
  }
  const busy = total - idle;
  const rank = (m: Map<string, number>): SelfTime[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, percent: Math.round((us / busy) * 1000) / 10 }));
  return {
    totalMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    busyMs: Math.round(busy / 1000),
    functions: rank(fn),
    locations: rank(loc),
  };
}

/** The summary as text: the top functions and the top locations by self time. */
export function renderSummary(s: ProfileSummary, top = 30): string {
  const line = (t: SelfTime) => `${t.percent.toFixed(1).padStart(5)} %  ${t.ms.toFixed(0).padStart(7)} ms  ${t.name}`;
  return [
    `profiled ${s.totalMs} ms: busy ${s.busyMs} ms, idle ${s.idleMs} ms (percentages are of busy time)`,
    '',
    `top ${top} functions by self time:`,
    ...s.functions.slice(0, top).map(line),
    '',
    'self time by location:',
    ...s.locations.slice(0, top).map(line),
  ].join('\n');
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 30;
  const file = args.find((a, i) => !a.startsWith('--') && (topIndex < 0 || i !== topIndex + 1));
  if (!file) {
    process.stderr.write('usage: node dist/bench/bench/cpuprofile.js <file.cpuprofile> [--top N]\n');
    process.exit(2);
  }
  process.stdout.write(`${renderSummary(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile), top)}\n`);
}
