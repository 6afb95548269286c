/**
 * The retry budget of one upstream: retries in flight stay at most
 * max(minConcurrent, ⌊percent × requests in flight / 100⌋), so that when an upstream fails, retries
 * cannot multiply its load (a retry storm); a fixed retry count per request cannot promise that.
 *
 * The proxy step calls `tryAcquire(breaker.active)` when a request is about to make its first
 * retry (later retries of the same request are covered), and `release()` once when that request is
 * over.
 *
 * Source: Envoy's retry budgets (envoyproxy.io/docs/envoy/latest/api-v3/config/cluster/v3/
 * circuit_breaker.proto, `RetryBudget`: `budget_percent`, default 20%, and `min_retry_concurrency`,
 * default 3). Envoy takes the percentage of active plus pending requests; here of active ones only,
 * since queued requests send nothing.
 *
 * State scope: per worker, sized for the machine. The limit is a share of the requests in flight,
 * and each worker's share of its own requests adds up to the machine's share of all of them; the
 * floor `minConcurrent` alone would count once per worker, so with N workers each worker's floor is
 * ⌈minConcurrent / N⌉ (`workers`), and the machine's is about minConcurrent. Nothing crosses
 * processes per request: sharing the counts cost an IPC message per request for a limit that is a
 * ratio anyway. Not per fleet: as in Envoy, each instance budgets its own retries.
 */
import type { RetryConfig } from '../config/types.ts';

/** The budget's part of an upstream's retry config. */
export type RetryBudgetConfig = Pick<RetryConfig, 'budgetPercent' | 'budgetMinConcurrent'>;

export class RetryBudget {
  #config: RetryBudgetConfig;
  #retrying = 0;
  /** The machine's worker processes: the floor is divided among them. */
  #workers = 1;

  constructor(config: RetryBudgetConfig, workers = 1) {
    this.#config = config;
    this.#workers = workers;
  }

  /** Adopts a reloaded config (and worker count); retries in flight keep their place. */
  configure(config: RetryBudgetConfig, workers = this.#workers): void {
    this.#config = config;
    this.#workers = workers;
  }

  /** Requests in flight that are on a retry. */
  get retrying(): number {
    return this.#retrying;
  }

  /** How many retries may be in flight while `activeRequests` requests are. */
  limit(activeRequests: number): number {
    const c = this.#config;
    return Math.max(Math.ceil(c.budgetMinConcurrent / this.#workers), Math.floor((c.budgetPercent * activeRequests) / 100));
  }

  /** Takes one place for a retrying request if the budget has one; false leaves everything as is. */
  tryAcquire(activeRequests: number): boolean {
    if (this.#retrying >= this.limit(activeRequests)) return false;
    this.#retrying++;
    return true;
  }

  /** Gives back the place a `tryAcquire` took; once per successful `tryAcquire`. */
  release(): void {
    this.#retrying--;
  }
}
