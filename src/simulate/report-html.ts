/**
 * The HTML report of `switchboard simulate --html FILE`: one self-contained page (inline CSS and SVG,
 * no scripts, no external resources). Per scenario: a summary table, p99 latency over time with a
 * line per algorithm, and per algorithm bar charts of endpoint shares and endpoint p99. Every piece
 * of text that comes from a scenario is escaped.
 */
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

/** p99 over time, one line per algorithm, on a log scale (ms). */
function timelineChart(runs: readonly RunSummary[]): string {
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

  const parts: string[] = [];
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

function scenarioSection(result: ScenarioResult): string {
  const { scenario: s, seed, runs } = result;
  return (
    `<section><h2>${escapeHtml(s.name)}</h2><p>${escapeHtml(s.description)}</p>` +
    `<p class="meta">${s.requests} requests per algorithm at ${s.rate} req/s, seed ${seed}</p>` +
    summaryTable(
      runs,
      s.events.some((e) => e.type === 'fail'),
    ) +
    timelineChart(runs) +
    `<div class="cards">${runs.map(algorithmCard).join('')}</div>` +
    (s.explanation ? `<h3>What this shows</h3><p>${escapeHtml(s.explanation)}</p>` : '') +
    `</section>`
  );
}

const CSS = `body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;padding:6px}.card h3{margin:0 0 4px}svg text{font-size:11px;fill:#333}
svg text.t{font-size:12px;font-weight:bold}.meta{color:#666}section{margin-bottom:3em}`;

/** The whole HTML page for `results`. */
export function reportHtml(results: readonly ScenarioResult[]): string {
  const title = `Switchboard simulation: ${results.map((r) => r.scenario.name).join(', ')}`;
  return (
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<style>${CSS}</style></head><body><h1>${escapeHtml(title)}</h1>` +
    results.map(scenarioSection).join('\n') +
    `</body></html>\n`
  );
}
