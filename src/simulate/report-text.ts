/**
 * The plain-text report of `switchboard simulate`: per scenario, a table per algorithm (each
 * endpoint's share, mean and p99 latency, errors), a summary across algorithms, and what the scenario
 * shows. Deterministic: the same results always print the same bytes.
 */
import { spanOf } from './model.ts';
import type { ScenarioResult } from './run-scenario.ts';
import type { KeysMoved, RunSummary } from './stats.ts';

const WIDTH = 100;

function ms(v: number): string {
  return Number.isNaN(v) ? '-' : v.toFixed(1);
}

function pct(v: number): string {
  return Number.isNaN(v) ? '-' : `${(v * 100).toFixed(1)}%`;
}

function row(cells: readonly string[], widths: readonly number[]): string {
  // First column left-aligned, the rest right-aligned.
  return `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`.trimEnd();
}

function table(header: readonly string[], rows: readonly string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [row(header, widths), ...rows.map((r) => row(r, widths))];
}

/** Wraps a paragraph at WIDTH columns. */
export function wrap(text: string, indent = ''): string[] {
  const lines: string[] = [];
  let line = indent;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length > indent.length && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = indent;
    }
    line += (line.length > indent.length ? ' ' : '') + word;
  }
  if (line.length > indent.length) lines.push(line);
  return lines;
}

function movedText(k: KeysMoved | undefined): string {
  return k ? pct(k.share) : '-';
}

function algorithmTable(run: RunSummary, failure: boolean): string[] {
  const rows = run.endpoints.map((e) => [e.name, String(e.weight), pct(e.share), ms(e.mean), ms(e.p99), String(e.errors)]);
  const o = run.overall;
  if (run.unrouted) rows.push(['(none)', '', pct(run.unrouted / o.requests), '-', '-', String(run.unrouted)]);
  rows.push(['overall', '', '', ms(o.mean), ms(o.p99), String(o.errors)]);
  const lines = [run.algorithm, ...table(['endpoint', 'weight', 'share', 'mean ms', 'p99 ms', 'errors'], rows)];
  const k = run.keysMoved;
  if (k) lines.push(`  ${k.unit} moved: ${pct(k.share)} (${k.moved} of ${k.of} ${k.unit} not on the failed endpoint)`);
  else if (failure) lines.push('  keys moved: - (the failed endpoint recovered before health checks took it out)');
  return lines;
}

/** The report of one scenario, ending with a newline. */
export function scenarioText(result: ScenarioResult): string {
  const { scenario: s, seed, runs } = result;
  const span = spanOf(s) / 1000;
  const lines = [
    `=== ${s.name} ===`,
    ...wrap(s.description),
    `${s.requests} requests per algorithm at ${s.rate} req/s (about ${span.toFixed(1)} s), ` + `${s.clients.count} clients, ${s.keys.count} keys, seed ${seed}`,
    '',
  ];
  const failure = s.events.some((e) => e.type === 'fail');
  for (const run of runs) lines.push(...algorithmTable(run, failure), '');

  const header = ['algorithm', 'mean ms', 'p99 ms', 'errors', ...(failure ? ['keys moved'] : [])];
  const rows = runs.map((r) => [r.algorithm, ms(r.overall.mean), ms(r.overall.p99), String(r.overall.errors), ...(failure ? [movedText(r.keysMoved)] : [])]);
  lines.push(`Summary: ${s.name}`, ...table(header, rows));
  if (failure && runs.some((r) => r.keysMoved?.unit === 'clients')) lines.push('  (ip-hash: clients moved, as it hashes client addresses)');
  lines.push('');
  if (s.explanation) lines.push('What this shows:', ...wrap(s.explanation, '  '), '');
  return `${lines.join('\n')}\n`;
}

/** The report of several scenarios. */
export function reportText(results: readonly ScenarioResult[]): string {
  return results.map(scenarioText).join('\n');
}
