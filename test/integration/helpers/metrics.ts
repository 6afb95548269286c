/** Reading a Prometheus text exposition in tests: its samples, one value, the number of series. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Every sample of `text` (comment lines skipped). */
export function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `labels` (0 when none). */
export function total(all: Sample[], name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of all) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (s.labels[k] ?? '') === v)) sum += s.value;
  }
  return sum;
}

/** Whether a sample named `name` with exactly these label values (among others) exists. */
export function has(all: Sample[], name: string, labels: Record<string, string> = {}): boolean {
  return all.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => (s.labels[k] ?? '') === v));
}

/** Series of Switchboard's own families (process metrics left out: they vary by themselves). */
export function switchboardSeries(all: Sample[]): number {
  return all.filter((s) => s.name.startsWith('switchboard_')).length;
}
