/**
 * The dashboard's arithmetic, apart from the DOM (so that node:test can check it): reading the
 * Prometheus text format of `GET /metrics`, and turning two scrapes into rates and percentiles.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text exposition format (0.0.4): `name{a="b",c="d"} value [timestamp]`,
 * comments and blank lines skipped, label values unescaped (`\\`, `\"`, `\n`). A line it cannot
 * read is skipped.
 */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name: string;
    const labels: Record<string, string> = {};
    let rest: string;
    if (brace !== -1 && (space === -1 || brace < space)) {
      name = line.slice(0, brace);
      let i = brace + 1;
      let ok = false;
      while (i < line.length) {
        if (line[i] === '}') {
          ok = true;
          i++;
          break;
        }
        if (line[i] === ',' || line[i] === ' ') {
          i++;
          continue;
        }
        const eq = line.indexOf('=', i);
        if (eq === -1 || line[eq + 1] !== '"') break;
        const key = line.slice(i, eq).trim();
        let value = '';
        let j = eq + 2;
        for (; j < line.length && line[j] !== '"'; j++) {
          if (line[j] === '\\' && j + 1 < line.length) {
            j++;
            value += line[j] === 'n' ? '\n' : line[j];
          } else value += line[j];
        }
        labels[key] = value;
        i = j + 1;
      }
      if (!ok) continue;
      rest = line.slice(i).trim();
    } else {
      if (space === -1) continue;
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    const v = rest.split(/\s+/)[0] ?? '';
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    if (v === '' || Number.isNaN(value)) continue;
    out.push({ name, labels, value });
  }
  return out;
}

/** Sums the samples named `name` by the value of `label` (those matching `where`). */
export function sumBy(samples: Sample[], name: string, label: string, where?: (labels: Record<string, string>) => boolean): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name || (where !== undefined && !where(s.labels))) continue;
    const key = s.labels[label] ?? '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** The sum of every sample named `name` (matching `where`). */
export function total(samples: Sample[], name: string, where?: (labels: Record<string, string>) => boolean): number {
  let n = 0;
  for (const s of samples) if (s.name === name && (where === undefined || where(s.labels))) n += s.value;
  return n;
}

/** Cumulative histogram buckets (`le` → count), summed over the series of `name` matching `where`. */
export function buckets(samples: Sample[], name: string, where?: (labels: Record<string, string>) => boolean): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || (where !== undefined && !where(s.labels))) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    out.set(le, (out.get(le) ?? 0) + s.value);
  }
  return out;
}

/** `now - before` bucket by bucket (a bucket missing before counts from 0; a counter reset gives now). */
export function bucketDelta(now: Map<number, number>, before: Map<number, number> | undefined): Map<number, number> {
  const out = new Map<number, number>();
  let reset = false;
  for (const [le, n] of now) if (n < (before?.get(le) ?? 0)) reset = true;
  for (const [le, n] of now) out.set(le, reset ? n : n - (before?.get(le) ?? 0));
  return out;
}

/**
 * The q-quantile (0..1) of cumulative buckets, interpolated linearly within the bucket it falls
 * in, as PromQL's histogram_quantile does; in the highest finite bucket's bound when it falls in
 * +Inf. Undefined when the buckets count nothing.
 */
export function quantile(q: number, cumulative: Map<number, number>): number | undefined {
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  if (bounds.length === 0) return undefined;
  const count = cumulative.get(bounds[bounds.length - 1]!) ?? 0;
  if (count <= 0) return undefined;
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const le of bounds) {
    const n = cumulative.get(le)!;
    if (n >= rank) {
      if (le === Infinity) return lower;
      if (n === below) return le;
      return lower + (le - lower) * ((rank - below) / (n - below));
    }
    lower = le;
    below = n;
  }
  return lower;
}

/** Per-second rate of a counter between two readings `seconds` apart (a reset counts from 0). */
export function rate(now: number, before: number | undefined, seconds: number): number {
  if (before === undefined || seconds <= 0) return 0;
  const d = now >= before ? now - before : now;
  return d / seconds;
}
