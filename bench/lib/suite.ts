// What a suite is. Adding one: a file in bench/suites/ exporting a `Suite`, and its line in the
// SUITES table of bench/run.ts (which sets the order the suites run in).
import type { LoadGen } from './loadgen.ts';

/** What run.ts hands every suite. */
export interface SuiteContext {
  /** The HTTP/1.1 load generator: wrk, or autocannon without it (pickLoadgen). A suite may bring its own (tcp). */
  loadgen: LoadGen;
}

/**
 * One benchmark suite. Its settings (BENCH_<SUITE>_*) are parsed when its module loads, so a bad
 * value stops the bench before anything runs; the general ones (BENCH_DURATION, ...) are in lib/env.ts.
 */
export interface Suite<Report = unknown> {
  /** Its name in BENCH_SUITES. */
  name: string;
  /**
   * Runs it and prints its results (stdout; progress to stderr). Returns its report for the
   * results file, or null when a signal stopped it; throws when it cannot run (reported, the
   * next suite runs, the exit code is 1). Processes it starts are tracked (lib/processes.ts) and
   * stopped by it, or by run.ts on a signal.
   */
  run(ctx: SuiteContext): Promise<Report | null>;
  /**
   * Its part of the results JSON, given its report (null when it did not run, failed or was
   * stopped). Default: `{ [name]: report }`.
   */
  results?(report: Report | null): Record<string, unknown>;
}
