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
 * State scope: per machine. The caller passes the machine's requests in flight (the breaker's
 * `machineActive`), and in a worker (`shared` given) the retries in flight of the other workers
 * come from the supervisor's sums (reported by each worker as they change, late by one report: a
 * burst of retries in several workers at the same instant may pass the budget by a few). So the
 * floor `minConcurrent` counts once per machine, not once per worker. Not per fleet: as in Envoy,
 * each instance budgets its own retries.
 */
import type { RetryConfig } from '../config/types.ts';
import { loadKey, type MachineLink } from './machine-link.ts';

/** The budget's part of an upstream's retry config. */
export type RetryBudgetConfig = Pick<RetryConfig, 'budgetPercent' | 'budgetMinConcurrent'>;

export class RetryBudget {
  #config: RetryBudgetConfig;
  #retrying = 0;
  /** The other workers' retries in flight at this upstream, as last reported (shared mode). */
  othersRetrying = 0;
  readonly #shared: { link: MachineLink; key: string } | undefined;

  constructor(config: RetryBudgetConfig, shared?: { link: MachineLink; upstream: string }) {
    this.#config = config;
    this.#shared = shared === undefined ? undefined : { link: shared.link, key: loadKey.retrying(shared.upstream) };
  }

  /** Adopts a reloaded config; retries in flight keep their place. */
  configure(config: RetryBudgetConfig): void {
    this.#config = config;
  }

  /** Requests in flight that are on a retry. */
  get retrying(): number {
    return this.#retrying;
  }

  /** How many retries may be in flight while `activeRequests` requests are. */
  limit(activeRequests: number): number {
    const c = this.#config;
    return Math.max(c.budgetMinConcurrent, Math.floor((c.budgetPercent * activeRequests) / 100));
  }

  /** Takes one place for a retrying request if the budget has one; false leaves everything as is. */
  tryAcquire(activeRequests: number): boolean {
    if (this.#retrying + this.othersRetrying >= this.limit(activeRequests)) return false;
    this.#retrying++;
    this.#shared?.link.inFlightChanged(this.#shared.key, this.#retrying);
    return true;
  }

  /** Gives back the place a `tryAcquire` took; once per successful `tryAcquire`. */
  release(): void {
    this.#retrying--;
    this.#shared?.link.inFlightChanged(this.#shared.key, this.#retrying);
  }
}
