// Measuring subjects in interleaved rounds: each run preceded by a warm-up, with the measured
// process's CPU and RSS and the origins' request counts read around it.
import fs from 'node:fs';
import os from 'node:os';
import type { LoadGen, LoadResult, RunOptions } from './loadgen.ts';
import { cpuSeconds, isRunning, machineTicks, rssMB, shuttingDown, tail } from './processes.ts';
import { errorMessage, fmt, fmtShares, log } from './report.ts';
import { originCounts, type Origin, type Started, type SubjectStatus } from './subjects.ts';

export interface RoundResult extends LoadResult {
  round: number;
  /** Position in the order the runs were made (0-based, across rounds). */
  seq: number;
  subject: string;
  rssMB: number | null;
  cpuPct: number | null;
  /**
   * CPU time of the measured process per request answered, in microseconds (robust to a busy
   * machine); summed over every process of the subject when it lists them (`Started.processes`).
   */
  cpuUsPerReq: number | null;
  /** When the subject lists its processes: each one's CPU seconds during the run and RSS right after it, the first being `pid`. */
  processes?: { pid: number; cpuS: number | null; rssMB: number | null }[];
  /** Who used the cores during the run (100 = one core): the whole machine (busy), the origins (`plan.origins`), the load generator (when it reports it). */
  machineCpuPct?: number | null;
  originsCpuPct?: number | null;
  loadgenCpuPct?: number | null;
  accessLogBytes: number | null;
  /** Share (0-1) of the measured run's requests each origin answered, in origin order, when known. */
  originShares?: number[];
  /**
   * Bracketed runs only: this run against the mean of the baseline runs just before and just after
   * it (for a baseline run: its previous and next baseline runs, an A/A check of the noise).
   */
  vsBaseline?: { rps: number; cpuUsPerReq: number | null };
  /** The subject's `Started.counters` after the measured run minus before it, when it has them. */
  counters?: Record<string, number>;
  startedAt: string;
}

export interface RoundsPlan {
  /** Label of the log lines. */
  label: string;
  rounds: number;
  durationS: number;
  warmupS: number;
  firstWarmupS: number;
  connections: number;
  load?: RunOptions;
  /** Origins whose request counters give each run's per-origin shares. */
  origins?: Origin[];
  /**
   * Bracketing: this subject runs before the first other subject and after every other subject,
   * so each other run sits between two baseline runs, seconds apart; see `pairWithBaseline`.
   */
  baseline?: string;
}

/** The subjects of one round: `order` rotated by the round, bracketed by the baseline when set. */
function roundOrder(order: string[], round: number, baseline: string | undefined): string[] {
  const others = baseline === undefined ? order : order.filter((n) => n !== baseline);
  const shift = others.length > 0 ? (round - 1) % others.length : 0;
  const rotated = [...others.slice(shift), ...others.slice(0, shift)];
  if (baseline === undefined || !order.includes(baseline)) return rotated;
  const seq = round === 1 ? [baseline] : [];
  for (const n of rotated) seq.push(n, baseline);
  return seq;
}

/** Seconds `runRounds` will take for `n` subjects (load only; start-up not counted). */
export function plannedSeconds(order: string[], p: RoundsPlan): number {
  let total = 0;
  const warmed = new Set<string>();
  for (let round = 1; round <= p.rounds; round++) {
    for (const n of roundOrder(order, round, p.baseline)) {
      total += p.durationS + (warmed.has(n) ? p.warmupS : p.firstWarmupS);
      warmed.add(n);
    }
  }
  return total;
}

/**
 * Measures the subjects of `order` interleaved: round 1 runs each in turn, round 2 again in a
 * rotated order, and so on; each run is preceded by a warm-up (longer in round 1, to heat the JIT).
 * A subject whose process died is dropped (and its status set to failed).
 */
export async function runRounds(loadgen: LoadGen, order: string[], running: Map<string, Started>, statuses: SubjectStatus[], plan: RoundsPlan): Promise<RoundResult[]> {
  const rounds: RoundResult[] = [];
  const width = Math.max(12, ...order.map((n) => n.length));
  const warmed = new Set<string>();
  let seq = 0;
  for (let round = 1; round <= plan.rounds; round++) {
    // Rotate the order each round so no subject always goes first.
    const thisRound = roundOrder(order, round, plan.baseline);
    for (const name of thisRound) {
      if (shuttingDown) return rounds;
      const st = running.get(name);
      if (!st) continue;
      const status = statuses.find((x) => x.name === name);
      if (!isRunning(st.proc)) {
        const reason = `process exited during the run (code ${st.proc.exitCode}, signal ${st.proc.signalCode}) ${tail(st.logFile)}`;
        console.log(`  ${name}: ${reason}; dropped`);
        if (status) Object.assign(status, { status: 'failed', reason });
        running.delete(name);
        continue;
      }
      try {
        const gen = st.loadgen ?? loadgen;
        const connections = st.connections ?? plan.connections;
        const load: RunOptions | undefined = st.load ? { ...plan.load, ...st.load } : plan.load;
        const warmup = warmed.has(name) ? plan.warmupS : plan.firstWarmupS;
        warmed.add(name);
        if (warmup > 0) await gen.run(st.url, warmup, connections, { ...load, warmup: true });
        const counts0 = plan.origins ? await originCounts(plan.origins) : null;
        const counters0 = st.counters ? await st.counters() : null;
        const pids = st.processes ? st.processes() : [st.pid];
        const originPids = (plan.origins ?? []).map((o) => o.proc.pid ?? 0);
        const cpus0 = pids.map(cpuSeconds);
        const origins0 = originPids.map(cpuSeconds);
        const ticks0 = machineTicks();
        const t0 = process.hrtime.bigint();
        const at = new Date().toISOString();
        const r = await gen.run(st.url, plan.durationS, connections, load);
        const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
        const ticks1 = machineTicks();
        const cpus1 = pids.map(cpuSeconds);
        const origins1 = originPids.map(cpuSeconds);
        const rss = rssMB(st.pid);
        // A process gone by the end of the run (a worker replaced) counts as nothing: the subject's CPU is then a floor.
        const deltas = pids.map((_, i) => (cpus0[i] !== null && cpus1[i] !== null ? (cpus1[i] as number) - (cpus0[i] as number) : null));
        const cpu0 = deltas.every((d) => d === null) ? null : 0;
        const cpu1 = cpu0 === null ? null : deltas.reduce<number>((a, d) => a + (d ?? 0), 0);
        const counts1 = plan.origins ? await originCounts(plan.origins) : null;
        const counters1 = st.counters ? await st.counters() : null;
        let accessLogBytes: number | null = null;
        if (st.accessLog) {
          try {
            accessLogBytes = fs.statSync(st.accessLog).size;
          } catch {
            accessLogBytes = 0;
          }
        }
        const cpuPct = cpu0 !== null && cpu1 !== null && wallS > 0 ? ((cpu1 - cpu0) / wallS) * 100 : null;
        const cpuUsPerReq = cpu0 !== null && cpu1 !== null && r.requests > 0 ? ((cpu1 - cpu0) * 1e6) / r.requests : null;
        const rr: RoundResult = { round, seq: seq++, subject: name, ...r, rssMB: rss, cpuPct, cpuUsPerReq, accessLogBytes, startedAt: at };
        if (counters0 && counters1) {
          rr.counters = {};
          for (const [k, v] of Object.entries(counters1)) rr.counters[k] = v - (counters0[k] ?? 0);
        }
        if (st.processes) rr.processes = pids.map((pid, i) => ({ pid, cpuS: deltas[i], rssMB: rssMB(pid) }));
        rr.machineCpuPct =
          ticks0 && ticks1 && ticks1.total > ticks0.total ? ((ticks1.busy - ticks0.busy) / (ticks1.total - ticks0.total)) * os.cpus().length * 100 : null;
        const originDeltas = originPids.map((_, i) => (origins0[i] !== null && origins1[i] !== null ? (origins1[i] as number) - (origins0[i] as number) : 0));
        rr.originsCpuPct = originPids.length > 0 && wallS > 0 ? (originDeltas.reduce((a, b) => a + b, 0) / wallS) * 100 : null;
        rr.loadgenCpuPct = r.loadgenCpuS !== undefined && r.loadgenCpuS !== null && wallS > 0 ? (r.loadgenCpuS / wallS) * 100 : null;
        let shares = '';
        if (counts0 && counts1) {
          const deltas = counts1.map((c, i) => c - counts0[i]);
          const sum = deltas.reduce((a, b) => a + b, 0);
          if (sum > 0) {
            rr.originShares = deltas.map((d) => d / sum);
            shares = `  origins ${fmtShares(rr.originShares)} %`;
          }
        }
        rounds.push(rr);
        const warn = r.errors + r.non2xx > 0 ? `  (!) ${r.errors} socket errors, ${r.non2xx} non-2xx${r.problems?.length ? `: ${r.problems.join('; ')}` : ''}` : '';
        const proto = r.protocol ? `  ${r.protocol}` : '';
        log(
          `  ${plan.label} round ${round}/${plan.rounds}  ${name.padEnd(width)} ${fmt(r.rps, 0).padStart(8)} ${gen.rateUnit ?? 'req/s'}  p50 ${fmt(r.p50Ms, 2)} ms  ` +
            `p99 ${fmt(r.p99Ms, 2)} ms  rss ${fmt(rss, 1)} MB  cpu ${fmt(cpuPct, 0)}% ${fmt(cpuUsPerReq, 1)} us/${gen.unit ?? 'req'}${shares}${proto}${warn}`,
        );
      } catch (err) {
        if (shuttingDown) return rounds;
        log(`  ${plan.label} round ${round}/${plan.rounds}  ${name}: load run failed: ${errorMessage(err)}`);
      }
    }
  }
  return rounds;
}
