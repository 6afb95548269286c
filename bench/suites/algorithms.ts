// Suite `algorithms`: what each balancer costs against round robin. One Switchboard child per
// balancer over the same origins; every algorithm run sits between two round-robin runs and is
// compared with their mean (paired ratio), against a budget (BENCH_ALGO_MAX_COST, 5%).
import { ALL_BALANCERS, balancerList, CONTROL_NAME, HASH_KEY, runBalancerSuite, WRR_WEIGHTS, type BalancerSuiteRun } from '../lib/balancer-suite.ts';
import { CONNECTIONS, envNumber, suiteRounds } from '../lib/env.ts';
import { fmt, fmtShares, heading, printTable } from '../lib/report.ts';
import type { RoundResult } from '../lib/rounds.ts';
import { median, pairWithBaseline } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';

// ---------------------------------------------------------------- settings
// Every algorithm run is bracketed by two round-robin runs (see runRounds), so a round is
// 2 x (algorithms - 1) runs; the defaults keep the suite near 3 minutes. (wrk rounds durations
// up to whole seconds.) BENCH_WRR_WEIGHTS and BENCH_HASH_KEY: lib/balancer-suite.ts.

const {
  durationS: ALGO_DURATION_S,
  rounds: ALGO_ROUNDS,
  warmupS: ALGO_WARMUP_S,
  firstWarmupS: ALGO_FIRST_WARMUP_S,
  connections: ALGO_CONNECTIONS,
} = suiteRounds('ALGO', { durationS: 2, rounds: 3, warmupS: 1, firstWarmupS: 3, connections: CONNECTIONS });
const ALGO_ORIGINS = envNumber('BENCH_ALGO_ORIGINS', 3, true);
const ALGO_BALANCERS = balancerList('BENCH_ALGORITHMS', ALL_BALANCERS);
const ALGO_MAX_COST_PCT = envNumber('BENCH_ALGO_MAX_COST', 5, false);
const ALGO_ACCESS_LOG = process.env.BENCH_ALGO_ACCESS_LOG === '1';
/** Measure the control child (CONTROL_NAME) too. */
const ALGO_CONTROL = (process.env.BENCH_ALGO_CONTROL ?? '1') !== '0';

// ---------------------------------------------------------------- report

interface AlgorithmRatio {
  /** Median over this algorithm's runs of req/s / the bracketing round-robin runs' mean. */
  rps: number;
  rpsMin: number;
  rpsMax: number;
  /** (1 - rps) x 100: the throughput the choice costs, in percent (negative: faster than round robin). */
  costPct: number;
  withinBudget: boolean;
  /** Same, for the Switchboard child's CPU time per request (ratio > 1 costs). */
  cpuPerReq: number;
  cpuCostPct: number;
  cpuWithinBudget: boolean;
  /** Ratio of the median p99s (not paired). */
  p99: number;
  pairs: number;
}

export interface AlgorithmsReport extends BalancerSuiteRun {
  config: Record<string, unknown>;
  baseline: 'round-robin';
  maxCostPct: number;
  /**
   * A/A check: each round-robin run against its neighbouring round-robin runs. The spread of these
   * ratios is what noise alone produces.
   */
  baselineAA: { pairs: number; rpsMin: number; rpsMax: number; rpsMedianAbsDevPct: number; cpuMedianAbsDevPct: number } | null;
  /** The A/A noise exceeds half the budget: the verdicts are unreliable. */
  noisy: boolean;
  ratios: Record<string, AlgorithmRatio>;
}

// ---------------------------------------------------------------- the suite

/** Each balancer's req/s and CPU per request against round robin, paired with the round-robin runs around it. */
export async function runAlgorithmsSuite({ loadgen }: SuiteContext): Promise<AlgorithmsReport | null> {
  heading('algorithms: each balancer\u2019s req/s against round robin');
  const varyKey = HASH_KEY === 'path' ? 'path' : 'header';
  const keyDesc = `${varyKey === 'path' ? 'path /u/<n>' : 'x-user header'}, ${loadgen.varyKeySupport}`;
  console.log(
    `  ${ALGO_ROUNDS} round(s) x ${ALGO_DURATION_S}s per run (+${ALGO_WARMUP_S}s warm-up each, ${ALGO_FIRST_WARMUP_S}s the first time), ` +
      `${ALGO_CONNECTIONS} connections, ${ALGO_ORIGINS} origin(s) answering at once, one Switchboard child per balancer, access log ${ALGO_ACCESS_LOG ? 'ON' : 'OFF'}.`,
  );
  console.log('  bracketed: every algorithm run sits between two round-robin runs and is compared with their mean (paired ratio);');
  console.log('  the table shows the median of those paired ratios, so drift from other load on the machine mostly cancels.');
  if (ALGO_CONTROL) {
    console.log(`  control: ${CONTROL_NAME} is a second, identical round-robin child measured like the algorithms; its ratio is the method\u2019s own error.`);
  }
  console.log(`  every balancer gets the same requests: a random key per request (${keyDesc}); consistent-hash hashes ${HASH_KEY}.`);
  console.log(
    `  weighted-round-robin: weights ${Array.from({ length: ALGO_ORIGINS }, (_, i) => WRR_WEIGHTS[i] ?? 1).join(',')}; all others weight 1. ip-hash: every request comes from 127.0.0.1, so one origin gets all of it.\n`,
  );

  const config = {
    durationS: ALGO_DURATION_S,
    rounds: ALGO_ROUNDS,
    warmupS: ALGO_WARMUP_S,
    firstWarmupS: ALGO_FIRST_WARMUP_S,
    connections: ALGO_CONNECTIONS,
    origins: ALGO_ORIGINS,
    balancers: ALGO_BALANCERS,
    control: ALGO_CONTROL ? CONTROL_NAME : null,
    wrrWeights: Array.from({ length: ALGO_ORIGINS }, (_, i) => WRR_WEIGHTS[i] ?? 1),
    hashKey: HASH_KEY,
    keyVariation: keyDesc,
    accessLog: ALGO_ACCESS_LOG,
    bracketedBy: 'round-robin',
  };
  const run = await runBalancerSuite(
    loadgen,
    'algorithms',
    ALGO_CONTROL ? [...ALGO_BALANCERS, CONTROL_NAME] : ALGO_BALANCERS,
    Array.from({ length: ALGO_ORIGINS }, () => 0),
    ALGO_ACCESS_LOG,
    {
      rounds: ALGO_ROUNDS,
      durationS: ALGO_DURATION_S,
      warmupS: ALGO_WARMUP_S,
      firstWarmupS: ALGO_FIRST_WARMUP_S,
      connections: ALGO_CONNECTIONS,
      load: { varyKey },
      baseline: 'round-robin',
    },
  );
  if (!run) return null;
  pairWithBaseline(run.rounds, 'round-robin');

  const base = run.summary.find((s) => s.subject === 'round-robin');
  const budget = ALGO_MAX_COST_PCT;
  const ratios: AlgorithmsReport['ratios'] = {};
  const pairedOf = (name: string): NonNullable<RoundResult['vsBaseline']>[] =>
    run.rounds.filter((r) => r.subject === name && r.vsBaseline !== undefined).map((r) => r.vsBaseline!);
  const medianAbsDevPct = (xs: number[]): number => median(xs.map((x) => Math.abs(x - 1) * 100));

  const aaPairs = pairedOf('round-robin');
  const aaCpu = aaPairs.map((p) => p.cpuUsPerReq).filter((x): x is number => x !== null);
  const baselineAA: AlgorithmsReport['baselineAA'] =
    aaPairs.length > 0
      ? {
          pairs: aaPairs.length,
          rpsMin: Math.min(...aaPairs.map((p) => p.rps)),
          rpsMax: Math.max(...aaPairs.map((p) => p.rps)),
          rpsMedianAbsDevPct: medianAbsDevPct(aaPairs.map((p) => p.rps)),
          cpuMedianAbsDevPct: aaCpu.length ? medianAbsDevPct(aaCpu) : Number.NaN,
        }
      : null;

  // When round robin against itself already moves by more than half the budget, a verdict is a guess.
  const noisy = baselineAA === null || !(baselineAA.rpsMedianAbsDevPct <= budget / 2);
  const verdict = (ok: boolean): string => (ok ? 'yes' : 'NO') + (noisy ? '?' : '');
  console.log(
    `\nAlgorithms (${ALGO_ROUNDS} round(s), ${ALGO_DURATION_S}s runs, ${ALGO_CONNECTIONS} connections, ${loadgen.name}); ` +
      `vs RR = median paired ratio against the bracketing round-robin runs; budget: cost < ${budget}%:\n`,
  );
  printTable(
    ['algorithm', 'req/s', 'p50 ms', 'p99 ms', 'vs RR', 'range', 'cost %', `<${budget}%`, 'CPU us/req', 'vs RR', 'CPU cost %', `<${budget}%`, 'origins %', 'errors'],
    run.summary.map((s) => {
      const isBase = s.subject === 'round-robin';
      const isControl = s.subject === CONTROL_NAME;
      const pairs = pairedOf(s.subject);
      const cpuPairs = pairs.map((p) => p.cpuUsPerReq).filter((x): x is number => x !== null);
      const rps = isBase ? 1 : median(pairs.map((p) => p.rps));
      const cpuPerReq = isBase ? 1 : cpuPairs.length ? median(cpuPairs) : Number.NaN;
      const r: AlgorithmRatio = {
        rps,
        rpsMin: pairs.length ? Math.min(...pairs.map((p) => p.rps)) : Number.NaN,
        rpsMax: pairs.length ? Math.max(...pairs.map((p) => p.rps)) : Number.NaN,
        costPct: (1 - rps) * 100,
        withinBudget: Number.isFinite(rps) && (1 - rps) * 100 < budget,
        cpuPerReq,
        cpuCostPct: (cpuPerReq - 1) * 100,
        cpuWithinBudget: Number.isFinite(cpuPerReq) && (cpuPerReq - 1) * 100 < budget,
        p99: base ? s.p99Ms / base.p99Ms : Number.NaN,
        pairs: pairs.length,
      };
      ratios[s.subject] = r;
      return [
        s.subject,
        fmt(s.rps, 0),
        fmt(s.p50Ms, 2),
        fmt(s.p99Ms, 2),
        isBase ? '1.000' : fmt(r.rps, 3),
        `${fmt(r.rpsMin, 2)}-${fmt(r.rpsMax, 2)}${isBase ? ' (A/A)' : ''}`,
        isBase ? '(base)' : fmt(r.costPct, 1),
        isBase ? '' : isControl ? 'ctrl' : verdict(r.withinBudget),
        fmt(s.cpuUsPerReq, 1),
        isBase ? '1.000' : fmt(r.cpuPerReq, 3),
        isBase ? '(base)' : fmt(r.cpuCostPct, 1),
        isBase ? '' : isControl ? 'ctrl' : verdict(r.cpuWithinBudget),
        fmtShares(s.originShares),
        String(s.errors + s.non2xx),
      ];
    }),
  );
  console.log('  req/s, p50, p99, CPU us/req: medians over each algorithm\u2019s runs (round-robin: over all its bracketing runs).');
  console.log('  vs RR / range: median and min-max of the paired req/s ratios; cost % = (1 - vs RR) x 100 (negative: faster than round robin).');
  console.log('  CPU us/req: CPU time (user+sys, all threads) of that Switchboard child / requests answered; CPU cost % = (vs RR - 1) x 100.');
  console.log('    It is less sensitive than req/s to other processes competing for the cores. origins %: share of requests per origin.');
  if (baselineAA) {
    console.log(
      `  noise (A/A): each round-robin run against its neighbouring round-robin runs: req/s ratios ${fmt(baselineAA.rpsMin, 2)}-${fmt(baselineAA.rpsMax, 2)}, ` +
        `median deviation ${fmt(baselineAA.rpsMedianAbsDevPct, 1)}% (req/s), ${fmt(baselineAA.cpuMedianAbsDevPct, 1)}% (CPU/req); a cost below that is noise.`,
    );
  }
  if (noisy) {
    console.log(
      `  (?) the A/A noise is more than half the ${budget}% budget, so these verdicts are not reliable: rerun with more rounds\n` +
        '      (e.g. BENCH_ALGO_ROUNDS=8 BENCH_ALGO_DURATION=3) or on a quieter machine, or profile (BENCH_CPU_PROF, see bench/README.md).',
    );
  }
  const control = ratios[CONTROL_NAME];
  if (control) {
    console.log(
      `  control: ${CONTROL_NAME} / round-robin = ${fmt(control.rps, 3)} (req/s), ${fmt(control.cpuPerReq, 3)} (CPU/req); ` +
        'ideally 1.000, the distance from 1 is the method\u2019s error on this run.',
    );
  }
  const others = Object.entries(ratios).filter(([n]) => n !== 'round-robin' && n !== CONTROL_NAME);
  const over = others.filter(([, r]) => !r.withinBudget);
  const overCpu = others.filter(([, r]) => !r.cpuWithinBudget);
  console.log(
    over.length === 0
      ? `\nreq/s: every balancer is within ${budget}% of round robin`
      : `\nreq/s: over the ${budget}% budget: ${over.map(([n, r]) => `${n} (${fmt(r.costPct, 1)}%)`).join(', ')}`,
  );
  console.log(
    overCpu.length === 0
      ? `CPU/req: every balancer is within ${budget}% of round robin`
      : `CPU/req: over the ${budget}% budget: ${overCpu.map(([n, r]) => `${n} (+${fmt(r.cpuCostPct, 1)}%)`).join(', ')}`,
  );
  for (const st of run.subjects) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, ...run, baseline: 'round-robin', maxCostPct: budget, baselineAA, noisy, ratios };
}

export const algorithmsSuite: Suite<AlgorithmsReport> = { name: 'algorithms', run: runAlgorithmsSuite };
