/**
 * Counters and histograms for the per-request metrics, counted in plain numbers.
 *
 * The client library's `inc(labels)` and `observe(labels, v)` hash the label object on every call;
 * five of them per request measured about 49 µs of CPU per request in one short, noisy run of
 * the bench (suite `policies`, subject `switchboard-metrics`), and level with no metrics after this. Here each series is a cell the caller
 * looks up once per request (by a key it builds) and bumps with additions; the library's registry
 * reads the cells only when scraped (`get()`), in the shape its own metrics have, so the text and
 * OpenMetrics formats and the workers' aggregation (`Registry.aggregate`) treat them the same.
 *
 * Scope: per process, like the registry they belong to.
 */
import type { Registry } from '@prometheus-io/client';

type Labels = Readonly<Record<string, string>>;

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Value[];
  aggregator: 'sum';
}

/** One counter series: add to `value`. */
export interface CounterCell {
  readonly labels: Labels;
  value: number;
}

/** A counter whose series are cells. */
export class SeriesCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #cells: CounterCell[] = [];
  readonly name: string;
  readonly help: string;

  constructor(name: string, help: string, registry: Registry) {
    this.name = name;
    this.help = help;
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** A new series (call once per label set: the caller keeps it). */
  cell(labels: Labels): CounterCell {
    const c: CounterCell = { labels, value: 0 };
    this.#cells.push(c);
    return c;
  }

  async get(): Promise<MetricData> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.#cells.map((c) => ({ labels: { ...c.labels }, value: c.value })),
    };
  }

  reset(): void {
    for (const c of this.#cells) c.value = 0;
  }
}

/** One histogram series: `observe(v)`. */
export class HistogramCell {
  /** Observations per bucket (not cumulative); the last slot is above the largest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly labels: Labels;
  readonly bounds: readonly number[];

  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** A histogram whose series are cells, with fixed bucket bounds. */
export class SeriesHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #cells: HistogramCell[] = [];
  readonly name: string;
  readonly help: string;
  readonly bounds: readonly number[];

  constructor(name: string, help: string, bounds: readonly number[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  cell(labels: Labels): HistogramCell {
    const c = new HistogramCell(labels, this.bounds);
    this.#cells.push(c);
    return c;
  }

  async get(): Promise<MetricData> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.#cells) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, ...c.labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...c.labels }, value: c.count, metricName: bucket });
      values.push({ labels: { ...c.labels }, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...c.labels }, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const c of this.#cells) {
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }
}
