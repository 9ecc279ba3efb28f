/** Cumulative bucket counts of one histogram (upper bound -> count), summed over the series scraped. */
export type Buckets = Map<number, number>;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

function labelsOf(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2];
  return out;
}

/**
 * The `<name>_bucket` series of a Prometheus text exposition, summed over every series whose
 * labels include `match` (so several processes' scrapes can be added up).
 */
export function histogramBuckets(exposition: string, name: string, match: Record<string, string> = {}): Buckets {
  const buckets: Buckets = new Map();
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}_bucket`)) continue;
    const m = SAMPLE.exec(line);
    if (!m || m[1] !== `${name}_bucket`) continue;
    const labels = labelsOf(m[2]);
    if (Object.entries(match).some(([k, v]) => labels[k] !== v)) continue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[3]));
  }
  return buckets;
}

/** Adds histograms bucket by bucket. */
export function addBuckets(...all: Buckets[]): Buckets {
  const out: Buckets = new Map();
  for (const b of all) for (const [le, n] of b) out.set(le, (out.get(le) ?? 0) + n);
  return out;
}

/** `after - before`, bucket by bucket: the observations made between two scrapes. */
export function diffBuckets(after: Buckets, before: Buckets): Buckets {
  const out: Buckets = new Map();
  for (const [le, n] of after) out.set(le, n - (before.get(le) ?? 0));
  return out;
}

/** How many observations the histogram holds. */
export function observations(b: Buckets): number {
  return b.get(Infinity) ?? Math.max(0, ...b.values());
}

/**
 * The q-quantile as Prometheus' histogram_quantile computes it: linear inside the bucket that
 * holds the rank; the highest finite bound when the rank falls in +Inf. NaN with no observations.
 */
export function histogramQuantile(b: Buckets, q: number): number {
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const total = observations(b);
  if (total <= 0 || bounds.length === 0) return NaN;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const le of bounds) {
    const count = b.get(le)!;
    if (count >= rank) {
      if (le === Infinity) return prevBound;
      if (count === prevCount) return le;
      return prevBound + ((le - prevBound) * (rank - prevCount)) / (count - prevCount);
    }
    prevBound = le;
    prevCount = count;
  }
  return prevBound;
}

/** The value of metric `name` (summed over its series, or over those whose labels include `labels`) in a /metrics page; NaN when absent. */
export function metricSum(page: string, name: string, labels = ''): number {
  let sum = NaN;
  for (const m of page.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})?\\s+(\\S+)$`, 'gm'))) {
    if (labels !== '' && !(m[1] ?? '').includes(labels)) continue;
    sum = (Number.isNaN(sum) ? 0 : sum) + Number(m[2]);
  }
  return sum;
}

/** A metric's value (metricSum) from a /metrics URL; NaN when the page cannot be read. */
export async function scrapeSum(url: string, name: string, labels = ''): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return metricSum(await res.text(), name, labels);
  } catch {
    return NaN;
  }
}

/** Fetches a /metrics page. */
export async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return res.text();
}

/** The upper bound of the bucket that holds the q-quantile: what the histogram can vouch for. */
export function quantileBound(b: Buckets, q: number): number {
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const total = observations(b);
  if (total <= 0) return NaN;
  for (const le of bounds) if (b.get(le)! >= q * total) return le;
  return Infinity;
}
