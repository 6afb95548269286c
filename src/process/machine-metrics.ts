/**
 * One scrape for the whole machine: the supervisor asks every worker for its metrics (its
 * registry as JSON, over IPC), adds its own (config reloads, process metrics, workers missing),
 * and sums them with the client library's aggregation (`Registry.aggregate`): counters and
 * histograms are summed; gauges by their `aggregator` (connections and requests in flight summed,
 * endpoint health the minimum, ejection the maximum; observability/metrics.ts and
 * docs/metrics.md say which). No `worker` label: the series are the machine's.
 *
 * A worker that does not answer within the timeout is left out of that scrape and counted in
 * `switchboard_metrics_workers_missing`. A worker's counts live in the worker: when it dies (or
 * is replaced, or drained away) its counts go with it, and the machine's counters drop by that
 * much (Prometheus's rate() reads a drop as a counter reset).
 */
import type { Worker } from 'node:cluster';
import { Gauge, Registry } from '@prometheus-io/client';
import { Metrics, wantsOpenMetrics, type MetricsProvider } from '../observability/metrics.ts';
import { askWorker } from './messages.ts';

/** How long a scrape waits for a worker's answer. */
export const WORKER_METRICS_TIMEOUT_MS = 2000;

export class MachineMetrics implements MetricsProvider {
  /** The supervisor's own metrics: reloads and its process (traffic is the workers'). Per machine. */
  readonly own = new Metrics({ traffic: false });
  readonly #missing = new Gauge({
    name: 'switchboard_metrics_workers_missing',
    help: 'Workers that did not send their metrics in time for this scrape (their counts are not in it).',
    registers: [this.own.registry],
  });
  readonly #workers: () => Iterable<Worker>;
  readonly #timeout: number;
  #nextId = 1;

  /** `workers`: the workers to ask now (serving or draining: both hold counts). */
  constructor(workers: () => Iterable<Worker>, timeoutMs = WORKER_METRICS_TIMEOUT_MS) {
    this.#workers = workers;
    this.#timeout = timeoutMs;
  }

  /** One worker's metrics as JSON, or undefined when it did not answer in time (or exited). */
  #ask(worker: Worker): Promise<unknown[] | undefined> {
    const id = this.#nextId++;
    return askWorker(worker, { sb: 'metrics', id }, (m) => (m.sb === 'metrics' && m.id === id ? m.metrics : undefined), this.#timeout);
  }

  /** Every worker's metrics as JSON (those that answered in time), counting the ones that did not. */
  async workerSnapshots(): Promise<unknown[][]> {
    const answers = await Promise.all([...this.#workers()].map((w) => this.#ask(w)));
    const lists = answers.filter((a): a is unknown[] => a !== undefined);
    this.#missing.set(answers.length - lists.length);
    return lists;
  }

  async render(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const lists = await this.workerSnapshots();
    lists.push(await this.own.snapshot());
    const type = wantsOpenMetrics(accept) ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE;
    const machine = Registry.aggregate(lists as object[]);
    machine.setContentType(type);
    return { contentType: type, body: await machine.metrics() };
  }

  close(): void {
    this.own.close();
  }
}
