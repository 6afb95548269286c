// Suite `slow`: p50/p99 of round robin vs the latency-aware balancers (least-response-time, ...)
// over a fleet where one origin adds a delay to every response.
import { balancerList, runBalancerSuite, type BalancerSuiteRun } from '../lib/balancer-suite.ts';
import { envNumber, suiteRounds } from '../lib/env.ts';
import { fmt, fmtShares, heading, printTable } from '../lib/report.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';

// ---------------------------------------------------------------- settings

const SLOW_DELAY_MS = envNumber('BENCH_SLOW_DELAY_MS', 20, false);
const SLOW_ORIGINS = envNumber('BENCH_SLOW_ORIGINS', 3, true);
const {
  durationS: SLOW_DURATION_S,
  rounds: SLOW_ROUNDS,
  warmupS: SLOW_WARMUP_S,
  firstWarmupS: SLOW_FIRST_WARMUP_S,
  connections: SLOW_CONNECTIONS,
} = suiteRounds('SLOW', { durationS: 3, rounds: 3, warmupS: 1, firstWarmupS: 2, connections: 32 });
const SLOW_BALANCERS = balancerList('BENCH_SLOW_ALGORITHMS', ['round-robin', 'least-response-time', 'least-connections', 'power-of-two']);
if (SLOW_ORIGINS < 2) throw new Error('BENCH_SLOW_ORIGINS must be at least 2 (one slow, the others fast)');

// ---------------------------------------------------------------- the suite

export interface SlowReport extends BalancerSuiteRun {
  config: Record<string, unknown>;
  ratios: Record<string, { rps: number; p50: number; p90: number; p99: number; slowShare: number | null }>;
  /** p99 of least-response-time / p99 of round-robin, when both ran. */
  p99LrtOverRr: number | null;
}

/** One Switchboard child per balancer over origins of which the first is slow: who steers around it. */
export async function runSlowSuite({ loadgen }: SuiteContext): Promise<SlowReport | null> {
  heading(`slow: p99 with one of ${SLOW_ORIGINS} origins adding ${SLOW_DELAY_MS} ms`);
  console.log(
    `  ${SLOW_ROUNDS} round(s) x ${SLOW_DURATION_S}s per balancer (+${SLOW_WARMUP_S}s warm-up each, ${SLOW_FIRST_WARMUP_S}s in round 1), ` +
      `${SLOW_CONNECTIONS} connections; origin 1 waits ${SLOW_DELAY_MS} ms before each response, the other ${SLOW_ORIGINS - 1} answer at once.`,
  );
  console.log(
    `  closed loop: ${loadgen.name} keeps ${SLOW_CONNECTIONS} connections each with one request in flight, so a slow response also delays the next request\n` +
      '  on its connection (throughput drops instead of a queue building up); p99 is of the requests actually sent.\n',
  );
  const config = {
    durationS: SLOW_DURATION_S,
    rounds: SLOW_ROUNDS,
    warmupS: SLOW_WARMUP_S,
    firstWarmupS: SLOW_FIRST_WARMUP_S,
    connections: SLOW_CONNECTIONS,
    origins: SLOW_ORIGINS,
    slowOrigin: 1,
    delayMs: SLOW_DELAY_MS,
    balancers: SLOW_BALANCERS,
    accessLog: false,
  };
  const run = await runBalancerSuite(
    loadgen,
    'slow',
    SLOW_BALANCERS,
    Array.from({ length: SLOW_ORIGINS }, (_, i) => (i === 0 ? SLOW_DELAY_MS : 0)),
    false,
    {
      rounds: SLOW_ROUNDS,
      durationS: SLOW_DURATION_S,
      warmupS: SLOW_WARMUP_S,
      firstWarmupS: SLOW_FIRST_WARMUP_S,
      connections: SLOW_CONNECTIONS,
    },
  );
  if (!run) return null;

  const base = run.summary.find((s) => s.subject === 'round-robin');
  const ratios: SlowReport['ratios'] = {};
  console.log(
    `\nSlow origin (median of ${SLOW_ROUNDS} round(s), ${SLOW_DURATION_S}s each, ${SLOW_CONNECTIONS} connections, ${loadgen.name}; ` +
      `origin 1 +${SLOW_DELAY_MS} ms):\n`,
  );
  printTable(
    ['algorithm', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99 vs RR', 'p90 vs RR', 'req/s vs RR', 'slow origin %', 'origins %', 'errors'],
    run.summary.map((s) => {
      const slowShare = s.originShares ? s.originShares[0] : null;
      const r = {
        rps: base ? s.rps / base.rps : Number.NaN,
        p50: base ? s.p50Ms / base.p50Ms : Number.NaN,
        p90: base ? s.p90Ms / base.p90Ms : Number.NaN,
        p99: base ? s.p99Ms / base.p99Ms : Number.NaN,
        slowShare,
      };
      ratios[s.subject] = r;
      return [
        s.subject,
        fmt(s.rps, 0),
        fmt(s.p50Ms, 2),
        fmt(s.p90Ms, 2),
        fmt(s.p99Ms, 2),
        fmt(r.p99, 2),
        fmt(r.p90, 2),
        fmt(r.rps, 2),
        slowShare === null ? '-' : fmt(slowShare * 100, 1),
        fmtShares(s.originShares),
        String(s.errors + s.non2xx),
      ];
    }),
  );
  const lrt = run.summary.find((s) => s.subject === 'least-response-time');
  const p99LrtOverRr = lrt && base ? lrt.p99Ms / base.p99Ms : null;
  console.log(`\np99 least-response-time / round-robin = ${p99LrtOverRr === null ? 'n/a (one of them did not run)' : fmt(p99LrtOverRr, 2)} (lower is better)`);
  console.log(
    `  note: p99 stays near the ${SLOW_DELAY_MS} ms delay for any balancer that sends the slow origin more than 1% of requests;\n` +
      '  the slow origin\u2019s share, p50/p90 and req/s show how far each one steers around it.',
  );
  for (const st of run.subjects) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, ...run, ratios, p99LrtOverRr };
}

export const slowSuite: Suite<SlowReport> = {
  name: 'slow',
  run: runSlowSuite,
  results: (r) => ({ slowOrigin: r }),
};
