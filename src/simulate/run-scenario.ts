/**
 * One scenario, every algorithm: draws the arrivals once for the seed, runs the engine once per
 * algorithm over those same arrivals, and summarises each run. What both reports and the tests read.
 */
import { BALANCER_NAMES, type BalancerName } from '../upstream/balancers/index.ts';
import { drawArrivals } from './arrivals.ts';
import { simulate } from './engine.ts';
import type { Scenario } from './model.ts';
import { summarize, type RunSummary } from './stats.ts';

/** Every algorithm's summary for one scenario and seed, in the order the algorithms were given. */
export interface ScenarioResult {
  /** The scenario as run (with any `requests` override applied). */
  scenario: Scenario;
  seed: number;
  runs: RunSummary[];
}

/** How to run a scenario; the overrides come from the command line. */
export interface RunOptions {
  seed: number;
  /** Overrides the scenario's algorithms. */
  algorithms?: readonly BalancerName[];
  /** Overrides the scenario's request count. */
  requests?: number;
}

/** Runs every algorithm of `base` (or of the options) over the same arrivals. */
export function runScenario(base: Scenario, options: RunOptions): ScenarioResult {
  const scenario: Scenario = options.requests === undefined ? base : { ...base, requests: options.requests };
  const algorithms = options.algorithms ?? scenario.algorithms ?? BALANCER_NAMES;
  const arrivals = drawArrivals(scenario, options.seed);
  const runs = algorithms.map((algorithm) => summarize(scenario, arrivals, simulate(scenario, arrivals, algorithm, options.seed)));
  return { scenario, seed: options.seed, runs };
}
