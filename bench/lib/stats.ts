// Statistics over the measured runs: medians, the per-subject summary, paired ratios.
import type { RoundResult } from './rounds.ts';

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export interface SubjectSummary {
  subject: string;
  rounds: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  rssMB: number | null;
  cpuPct: number | null;
  cpuUsPerReq: number | null;
  errors: number;
  non2xx: number;
  /** Median share (0-1) of requests per origin, in origin order; absent when not measured. */
  originShares?: number[];
}

/** Per subject of `names` that has runs, in that order: the medians over its runs, and its error totals. */
export function summarize(names: string[], rounds: RoundResult[]): SubjectSummary[] {
  const summary: SubjectSummary[] = [];
  for (const name of names) {
    const rs = rounds.filter((r) => r.subject === name);
    if (rs.length === 0) continue;
    const nums = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
    const rss = nums(rs.map((r) => r.rssMB));
    const cpu = nums(rs.map((r) => r.cpuPct));
    const cpuPerReq = nums(rs.map((r) => r.cpuUsPerReq));
    const s: SubjectSummary = {
      subject: name,
      rounds: rs.length,
      rps: median(rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p90Ms: median(rs.map((r) => r.p90Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      rssMB: rss.length ? median(rss) : null,
      cpuPct: cpu.length ? median(cpu) : null,
      cpuUsPerReq: cpuPerReq.length ? median(cpuPerReq) : null,
      errors: rs.reduce((a, r) => a + r.errors, 0),
      non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    };
    const withShares = rs.filter((r) => r.originShares !== undefined);
    if (withShares.length > 0) {
      const n = withShares[0].originShares!.length;
      s.originShares = Array.from({ length: n }, (_, i) => median(withShares.map((r) => r.originShares![i])));
    }
    summary.push(s);
  }
  return summary;
}

/**
 * For bracketed runs (`plan.baseline`): sets each run's `vsBaseline`, its req/s and CPU/request
 * over the mean of the nearest baseline run before and after it (either alone at the ends).
 * Comparing runs made seconds apart cancels most of the drift a shared, busy machine causes.
 */
export function pairWithBaseline(rounds: RoundResult[], baseline: string): void {
  const runs = [...rounds].sort((a, b) => a.seq - b.seq);
  const base = runs.filter((r) => r.subject === baseline);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const r of runs) {
    const before = base.filter((b) => b.seq < r.seq).at(-1);
    const after = base.find((b) => b.seq > r.seq);
    const refs = [before, after].filter((b): b is RoundResult => b !== undefined);
    if (refs.length === 0) continue;
    const cpuRefs = refs.map((b) => b.cpuUsPerReq).filter((x): x is number => x !== null);
    r.vsBaseline = {
      rps: r.rps / mean(refs.map((b) => b.rps)),
      cpuUsPerReq: r.cpuUsPerReq !== null && cpuRefs.length === refs.length ? r.cpuUsPerReq / mean(cpuRefs) : null,
    };
  }
}

/**
 * Paired req/s ratios of `subject` against `base`: each `subject` run over the mean of the nearest
 * `base` runs before and after it (pairWithBaseline on a copy of their runs).
 */
export function pairedRps(rounds: RoundResult[], subject: string, base: string): number[] {
  const copy = rounds.filter((r) => r.subject === subject || r.subject === base).map((r) => ({ ...r }));
  pairWithBaseline(copy, base);
  return copy.filter((r) => r.subject === subject && r.vsBaseline !== undefined).map((r) => r.vsBaseline!.rps);
}
