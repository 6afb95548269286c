// What the balancer suites (algorithms, slow) share: the balancer names and their settings, and
// runBalancerSuite, one Switchboard child per balancer over the same origins, in interleaved rounds.
import fs from 'node:fs';
import path from 'node:path';
import { BALANCER_NAMES } from '../../src/config/balancer-names.ts';
import { envList, REPO_DIR } from './env.ts';
import type { LoadGen } from './loadgen.ts';
import { shuttingDown } from './processes.ts';
import { log } from './report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from './rounds.ts';
import { summarize, type SubjectSummary } from './stats.ts';
import { originBody, startChecked, startOrigins, startSwitchboard, stopAll, type Origin, type Started, type SubjectStatus, type SwitchboardOptions } from './subjects.ts';

/** The balancers Switchboard accepts, in the order they are reported (round-robin, the baseline, first). */
export const ALL_BALANCERS = BALANCER_NAMES;

/** The balancers listed in env `name` (default `fallback`), checked; round-robin first, always. */
export function balancerList(name: string, fallback: readonly string[]): string[] {
  const list = envList(name, fallback);
  for (const b of list) {
    if (!(ALL_BALANCERS as readonly string[]).includes(b)) {
      throw new Error(`${name}: unknown balancer ${JSON.stringify(b)} (known: ${ALL_BALANCERS.join(', ')})`);
    }
  }
  // round-robin is the baseline of both suites: always measured, always first.
  return ['round-robin', ...list.filter((b, i) => b !== 'round-robin' && list.indexOf(b) === i)];
}

/**
 * The algorithms suite's control: a second round-robin child measured like the algorithms; its
 * ratio shows what the method alone (a child idle between its runs vs the baseline child that runs
 * every other time) produces.
 */
export const CONTROL_NAME = 'round-robin-copy';

// Settings of every balancer child (both suites; documented with the algorithms suite).
/** weighted-round-robin's weights, origin by origin; origins beyond the list get 1. */
export const WRR_WEIGHTS = envList('BENCH_WRR_WEIGHTS', ['3']).map((w) => {
  const n = Number(w);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`BENCH_WRR_WEIGHTS: ${JSON.stringify(w)} is not an integer 1-1000`);
  return n;
});
export const HASH_KEY = (process.env.BENCH_HASH_KEY ?? 'header:x-user').trim();
if (HASH_KEY !== 'header:x-user' && HASH_KEY !== 'path') {
  throw new Error(`BENCH_HASH_KEY must be header:x-user or path, got ${JSON.stringify(HASH_KEY)}`);
}

/** Switchboard options for one balancer over `n` origins (weights 3,1,1.. for weighted-round-robin). */
function balancerOptions(name: string, n: number, accessLog: boolean): SwitchboardOptions {
  const balancer = name === CONTROL_NAME ? 'round-robin' : name;
  const o: SwitchboardOptions = { balancer, accessLog };
  if (balancer === 'weighted-round-robin') o.weights = Array.from({ length: n }, (_, i) => WRR_WEIGHTS[i] ?? 1);
  if (balancer === 'consistent-hash') o.hashKey = HASH_KEY;
  return o;
}

function describeBalancer(o: SwitchboardOptions): string {
  const extra = [o.weights ? `weights ${o.weights.join(',')}` : '', o.hashKey ? `hashKey ${o.hashKey}` : ''].filter(Boolean);
  return `Switchboard, balancer ${o.balancer}${extra.length ? ` (${extra.join(', ')})` : ''}, access log ${o.accessLog ? 'ON' : 'OFF'}`;
}

export interface BalancerSuiteRun {
  origins: { delayMs: number }[];
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: SubjectSummary[];
}

/** One Switchboard child per balancer over the same origins, measured in interleaved rounds. */
export async function runBalancerSuite(
  loadgen: LoadGen,
  label: string,
  balancers: string[],
  delaysMs: number[],
  accessLog: boolean,
  plan: Omit<RoundsPlan, 'origins' | 'label'>,
): Promise<BalancerSuiteRun | null> {
  let origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  let rounds: RoundResult[] = [];
  try {
    origins = await startOrigins(`${label}-origin`, delaysMs);
    const expectedBody = await originBody(origins);
    log(`${label} origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid}${o.delayMs > 0 ? `, +${o.delayMs} ms` : ''})`).join(', ')}`);
    if (!fs.existsSync(path.join(REPO_DIR, 'src', 'index.ts'))) throw new Error('src/index.ts not found');
    for (const b of balancers) {
      if (shuttingDown) return null;
      const o = balancerOptions(b, origins.length, accessLog);
      await startChecked(b, describeBalancer(o), () => startSwitchboard(`${label}-${b}`, origins, o), expectedBody, running, statuses);
    }
    if (!running.has('round-robin')) throw new Error('the round-robin baseline could not be started');
    const order = balancers.filter((b) => running.has(b));
    const full: RoundsPlan = { ...plan, label, origins };
    const how = full.baseline ? `, each run between two ${full.baseline} runs` : '';
    log(`\n${label}: running ${order.join(', ')}${how}; about ${Math.ceil(plannedSeconds(order, full))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, full);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;
  return { origins: origins.map((o) => ({ delayMs: o.delayMs })), subjects: statuses, rounds, summary: summarize(balancers, rounds) };
}
