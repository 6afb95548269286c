/**
 * The HTML report of `switchboard simulate --html FILE`: one self-contained page (inline CSS and SVG,
 * no scripts, no external resources). On top, the best p99 for each fleet and a table of contents;
 * per scenario: a summary table, p99 latency and errors over time with a line per algorithm and the
 * scenario's slowdowns and failures marked, and per algorithm bar charts of endpoint shares and
 * endpoint p99. Every piece of text that comes from a scenario is escaped.
 */
import { fleetCapacity, momentMs, overloadWarning, spanOf, type Scenario } from './model.ts';
import type { ScenarioResult } from './run-scenario.ts';
import type { RunSummary } from './stats.ts';

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Text made safe for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function num(v: number): string {
  return v.toFixed(1);
}

function fmtMs(v: number): string {
  return Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** A vertical bar chart: one bar per label. */
function barChart(title: string, labels: readonly string[], values: readonly number[], format: (v: number) => string): string {
  const w = 320;
  const h = 180;
  const top = 34;
  const bottom = 22;
  const plot = h - top - bottom;
  const finite = values.filter((v) => Number.isFinite(v));
  const max = Math.max(...finite, 0) || 1;
  const slot = (w - 20) / Math.max(1, labels.length);
  const bars = labels.map((label, i) => {
    const v = Number.isFinite(values[i]) ? values[i] : 0;
    const bh = (v / max) * plot;
    const x = 10 + i * slot + slot * 0.15;
    const y = top + plot - bh;
    return (
      `<rect x="${num(x)}" y="${num(y)}" width="${num(slot * 0.7)}" height="${num(bh)}" fill="${COLORS[0]}"/>` +
      `<text x="${num(x + slot * 0.35)}" y="${num(y - 3)}" text-anchor="middle">${escapeHtml(format(values[i]))}</text>` +
      `<text x="${num(x + slot * 0.35)}" y="${h - 6}" text-anchor="middle">${escapeHtml(label)}</text>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">` +
    `<title>${escapeHtml(title)}</title><text x="10" y="14" class="t">${escapeHtml(title)}</text>` +
    `<line x1="10" y1="${top + plot}" x2="${w - 10}" y2="${top + plot}" stroke="#999"/>${bars.join('')}</svg>`
  );
}

/** Where the scenario's events happen, in ms from the start, with a label: markers on the timelines. */
interface Mark {
  ms: number;
  label: string;
  kind: 'slow' | 'fail' | 'back';
}

function eventMarks(scenario: Scenario): Mark[] {
  const span = spanOf(scenario);
  return scenario.events.flatMap((e): Mark[] => {
    if (e.type === 'slowdown') {
      const marks: Mark[] = [{ ms: momentMs(e.at, span), label: `${e.endpoint} ×${e.factor} slower`, kind: 'slow' }];
      if (e.until) marks.push({ ms: momentMs(e.until, span), label: `${e.endpoint} normal`, kind: 'back' });
      return marks;
    }
    const marks: Mark[] = [{ ms: momentMs(e.at, span), label: `${e.endpoint} fails`, kind: 'fail' }];
    if (e.recover) marks.push({ ms: momentMs(e.recover, span), label: `${e.endpoint} recovers`, kind: 'back' });
    return marks;
  });
}

const MARK_COLORS = { slow: '#e69f00', fail: '#d62728', back: '#2ca02c' };

/** Vertical lines where the events happen, each with its label. */
function markers(scenario: Scenario, x: (ms: number) => number, top: number, bottom: number, right: number): string {
  return eventMarks(scenario)
    .filter((m) => x(m.ms) <= right)
    .map(
      (m, i) =>
        `<g class="marker ${m.kind}"><line x1="${num(x(m.ms))}" y1="${top}" x2="${num(x(m.ms))}" y2="${bottom}" stroke="${MARK_COLORS[m.kind]}" stroke-dasharray="4 3"/>` +
        `<text x="${num(x(m.ms) + 3)}" y="${top + 12 + (i % 3) * 12}" fill="${MARK_COLORS[m.kind]}">${escapeHtml(m.label)}</text></g>`,
    )
    .join('');
}

/** Errors per time bucket, one line per algorithm (linear scale). */
function errorsChart(scenario: Scenario, runs: readonly RunSummary[]): string {
  const w = 760;
  const h = 200;
  const left = 56;
  const right = 170;
  const top = 24;
  const bottom = 30;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const max = Math.max(1, ...runs.flatMap((r) => r.timeline.errors));
  const buckets = runs[0]?.timeline.errors.length ?? 0;
  const bucketMs = runs[0]?.timeline.bucketMs ?? 1;
  const x = (i: number): number => left + ((i + 0.5) / Math.max(1, buckets)) * pw;
  const xMs = (ms: number): number => left + (ms / Math.max(1, buckets * bucketMs)) * pw;
  const y = (v: number): number => top + ph - (v / max) * ph;
  const parts: string[] = [
    `<text x="${left - 6}" y="${num(y(max) + 4)}" text-anchor="end">${max}</text>`,
    `<text x="${left - 6}" y="${num(y(0) + 4)}" text-anchor="end">0</text>`,
    markers(scenario, xMs, top, top + ph, left + pw),
  ];
  runs.forEach((run, i) => {
    const color = COLORS[i % COLORS.length];
    const dash = i % 2 ? ' stroke-dasharray="6 3"' : '';
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="1.5"${dash} points="${run.timeline.errors.map((v, b) => `${num(x(b))},${num(y(v))}`).join(' ')}"/>`,
    );
    const ly = top + 10 + i * 16;
    parts.push(`<line x1="${left + pw + 12}" y1="${ly - 4}" x2="${left + pw + 30}" y2="${ly - 4}" stroke="${color}" stroke-width="3"${dash}/>`);
    parts.push(`<text x="${left + pw + 36}" y="${ly}">${escapeHtml(run.algorithm)}</text>`);
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" class="errors">` +
    `<title>errors over time</title>` +
    `<text x="${left}" y="14" class="t">errors over time (per ${num(bucketMs)} ms of arrivals)</text>` +
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>${parts.join('')}</svg>`
  );
}

/** p99 over time, one line per algorithm, on a log scale (ms), with the events marked. */
function timelineChart(scenario: Scenario, runs: readonly RunSummary[]): string {
  const w = 760;
  const h = 300;
  const left = 56;
  const right = 170;
  const top = 24;
  const bottom = 30;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const values = runs.flatMap((r) => r.timeline.p99.filter((v): v is number => v !== null && v > 0));
  const lo = Math.floor(Math.log10(Math.max(0.1, Math.min(...values, 1))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values, 10))));
  const y = (v: number): number => top + ph - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * ph;
  const buckets = runs[0]?.timeline.p99.length ?? 0;
  const bucketMs = runs[0]?.timeline.bucketMs ?? 1;
  const x = (i: number): number => left + ((i + 0.5) / Math.max(1, buckets)) * pw;
  const xMs = (ms: number): number => left + (ms / Math.max(1, buckets * bucketMs)) * pw;

  const parts: string[] = [markers(scenario, xMs, top, top + ph, left + pw)];
  for (let e = lo; e <= hi; e++) {
    parts.push(`<line x1="${left}" y1="${num(y(10 ** e))}" x2="${left + pw}" y2="${num(y(10 ** e))}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${num(y(10 ** e) + 4)}" text-anchor="end">${e < 0 ? (10 ** e).toFixed(-e) : 10 ** e}</text>`);
  }
  const seconds = (buckets * bucketMs) / 1000;
  for (let k = 0; k <= 4; k++) {
    const xs = left + (k / 4) * pw;
    parts.push(`<text x="${num(xs)}" y="${h - 10}" text-anchor="middle">${num((k / 4) * seconds)} s</text>`);
  }
  runs.forEach((run, i) => {
    const color = COLORS[i % COLORS.length];
    // Every other line dashed, so identical results (round robin and weighted with equal weights) both show.
    const dash = i % 2 ? ' stroke-dasharray="6 3"' : '';
    // A bucket without successful requests breaks the line.
    const segments: string[][] = [[]];
    run.timeline.p99.forEach((v, b) => {
      if (v === null) segments.push([]);
      else segments[segments.length - 1].push(`${num(x(b))},${num(y(v))}`);
    });
    for (const s of segments.filter((s) => s.length)) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5"${dash} points="${s.join(' ')}"/>`);
    }
    const ly = top + 10 + i * 16;
    parts.push(`<line x1="${left + pw + 12}" y1="${ly - 4}" x2="${left + pw + 30}" y2="${ly - 4}" stroke="${color}" stroke-width="3"${dash}/>`);
    parts.push(`<text x="${left + pw + 36}" y="${ly}">${escapeHtml(run.algorithm)}</text>`);
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">` +
    `<title>p99 latency over time (ms, log scale)</title>` +
    `<text x="${left}" y="14" class="t">p99 latency over time (ms, log scale; by arrival time)</text>` +
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>${parts.join('')}</svg>`
  );
}

function summaryTable(runs: readonly RunSummary[], moved: boolean): string {
  const head = ['algorithm', 'mean ms', 'p99 ms', 'errors', ...(moved ? ['keys moved'] : [])];
  const rows = runs.map((r) => {
    const cells = [r.algorithm, fmtMs(r.overall.mean), fmtMs(r.overall.p99), String(r.overall.errors)];
    if (moved) cells.push(r.keysMoved && !Number.isNaN(r.keysMoved.share) ? `${(r.keysMoved.share * 100).toFixed(1)}%` : '-');
    return `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
  });
  return `<table><thead><tr>${head.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function algorithmCard(run: RunSummary): string {
  const names = run.endpoints.map((e) => e.name);
  return (
    `<div class="card"><h3>${escapeHtml(run.algorithm)}</h3>` +
    barChart(
      'share of requests',
      names,
      run.endpoints.map((e) => e.share * 100),
      (v) => `${v.toFixed(1)}%`,
    ) +
    barChart(
      'p99 latency (ms)',
      names,
      run.endpoints.map((e) => e.p99),
      fmtMs,
    ) +
    `</div>`
  );
}

/** The section id of a scenario (its index: names may hold anything). */
const anchor = (i: number): string => `scenario-${i + 1}`;

/** The algorithm with the lowest overall p99 (ties: fewer errors, then the first). */
function bestRun(runs: readonly RunSummary[]): RunSummary | undefined {
  const ok = runs.filter((r) => Number.isFinite(r.overall.p99));
  return ok.reduce<RunSummary | undefined>(
    (best, r) => (!best || r.overall.p99 < best.overall.p99 || (r.overall.p99 === best.overall.p99 && r.overall.errors < best.overall.errors) ? r : best),
    undefined,
  );
}

/** On top of the page: per scenario, the best p99 for its fleet and by which algorithm, linked to its section. */
function overview(results: readonly ScenarioResult[]): string {
  const rows = results.map((r, i) => {
    const best = bestRun(r.runs);
    const worst = r.runs.reduce((m, run) => (Number.isFinite(run.overall.p99) ? Math.max(m, run.overall.p99) : m), 0);
    const cells = [
      `<td><a href="#${anchor(i)}">${escapeHtml(r.scenario.name)}</a></td>`,
      `<td>${escapeHtml(best?.algorithm ?? '-')}</td>`,
      `<td>${escapeHtml(best ? fmtMs(best.overall.p99) : '-')}</td>`,
      `<td>${escapeHtml(best ? String(best.overall.errors) : '-')}</td>`,
      `<td>${escapeHtml(worst ? fmtMs(worst) : '-')}</td>`,
      `<td>${escapeHtml(`${r.scenario.rate} / ${fleetCapacity(r.scenario).toFixed(0)}`)}${overloadWarning(r.scenario) ? ' <strong class="warn">overloaded</strong>' : ''}</td>`,
    ];
    return `<tr>${cells.join('')}</tr>`;
  });
  return (
    `<table class="overview"><caption>Best p99 for each fleet</caption><thead><tr><th>scenario</th><th>best algorithm</th><th>best p99 ms</th>` +
    `<th>its errors</th><th>worst p99 ms</th><th>offered / capacity req/s</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

/** Links to every scenario's section and its parts. */
function contents(results: readonly ScenarioResult[]): string {
  const items = results.map(
    (r, i) =>
      `<li><a href="#${anchor(i)}">${escapeHtml(r.scenario.name)}</a>: <a href="#${anchor(i)}-latency">latency over time</a>, ` +
      `<a href="#${anchor(i)}-errors">errors over time</a>, <a href="#${anchor(i)}-endpoints">per endpoint</a></li>`,
  );
  return `<nav class="toc"><h2>Contents</h2><ol>${items.join('')}</ol></nav>`;
}

function scenarioSection(result: ScenarioResult, index: number): string {
  const { scenario: s, seed, runs } = result;
  const id = anchor(index);
  const warning = overloadWarning(s);
  return (
    `<section id="${id}"><h2>${escapeHtml(s.name)}</h2><p>${escapeHtml(s.description)}</p>` +
    `<p class="meta">${s.requests} requests per algorithm at ${s.rate} req/s, seed ${seed}</p>` +
    (warning ? `<p class="warn">${escapeHtml(warning.replace(/^warning: /, 'Warning: '))}</p>` : '') +
    summaryTable(
      runs,
      s.events.some((e) => e.type === 'fail'),
    ) +
    `<div id="${id}-latency">${timelineChart(s, runs)}</div>` +
    `<div id="${id}-errors">${errorsChart(s, runs)}</div>` +
    `<div class="cards" id="${id}-endpoints">${runs.map(algorithmCard).join('')}</div>` +
    (s.explanation ? `<h3>What this shows</h3><p>${escapeHtml(s.explanation)}</p>` : '') +
    `</section>`
  );
}

const CSS = `body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;padding:6px}.card h3{margin:0 0 4px}svg text{font-size:11px;fill:#333}
svg text.t{font-size:12px;font-weight:bold}.meta{color:#666}section{margin-bottom:3em}
caption{text-align:left;font-weight:bold;margin-bottom:4px}.warn{color:#b00}`;

/** The whole HTML page for `results`. */
export function reportHtml(results: readonly ScenarioResult[]): string {
  const title = `Switchboard simulation: ${results.map((r) => r.scenario.name).join(', ')}`;
  return (
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<style>${CSS}</style></head><body><h1>${escapeHtml(title)}</h1>` +
    overview(results) +
    contents(results) +
    results.map(scenarioSection).join('\n') +
    `</body></html>\n`
  );
}
