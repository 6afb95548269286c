/**
 * From what happened to every request (a RunRecord) to what the reports show: per endpoint its share
 * of requests, mean and p99 latency and errors; the same overall; "keys moved" around a failure;
 * and p99 latency over time. Latency figures are of successful requests; errors are counted apart
 * (a refused connection is fast, and would make a failing algorithm look quick).
 */
import type { BalancerName } from '../upstream/balancers/index.ts';
import type { Arrivals } from './arrivals.ts';
import type { RunRecord } from './engine.ts';
import { momentMs, spanOf, type Scenario } from './model.ts';

/** Latency buckets in the timeline. */
export const TIMELINE_BUCKETS = 40;

/** Latency and errors of a set of requests. */
export interface LatencyStats {
  /** Requests (sent to this endpoint, or all of them for overall). */
  requests: number;
  /** Successful requests' mean latency, ms; NaN without any. */
  mean: number;
  /** Successful requests' 99th percentile latency (nearest rank), ms; NaN without any. */
  p99: number;
  errors: number;
}

/** One endpoint's part of a run. */
export interface EndpointStats extends LatencyStats {
  name: string;
  weight: number;
  /** requests / all requests of the run, 0-1. */
  share: number;
}

/** Among keys seen both before a failure and while the failed endpoint was out of the set. */
export interface KeysMoved {
  /** What was counted: request keys, or clients for ip-hash (what each algorithm would hash). */
  unit: 'keys' | 'clients';
  /** Keys whose endpoint before the failure was not the failed one. */
  of: number;
  /** Of those, the ones sent elsewhere afterwards. */
  moved: number;
  /** moved / of, 0-1; NaN when of is 0. */
  share: number;
}

/** What the reports show of one algorithm's run. */
export interface RunSummary {
  algorithm: BalancerName;
  endpoints: EndpointStats[];
  overall: LatencyStats;
  /** Requests that found no endpoint in the set (all out): errors without an endpoint. */
  unrouted: number;
  /** Set for scenarios with a failure that took an endpoint out of the set. */
  keysMoved?: KeysMoved;
  /** p99 latency of successful requests by arrival time; null for a bucket without any. */
  timeline: { bucketMs: number; p99: (number | null)[]; errors: number[] };
}

/** Nearest-rank percentile of unsorted values (sorted in place). */
export function percentile(values: Float64Array, p: number): number {
  if (values.length === 0) return NaN;
  values.sort();
  return values[Math.max(0, Math.ceil((p / 100) * values.length) - 1)];
}

function latencyStats(record: RunRecord, requests: number[]): LatencyStats {
  const ok = new Float64Array(requests.length);
  let count = 0;
  let sum = 0;
  let errors = 0;
  for (const r of requests) {
    if (record.error[r]) errors++;
    else sum += ok[count++] = record.latency[r];
  }
  const sample = ok.subarray(0, count);
  return { requests: requests.length, mean: count ? sum / count : NaN, p99: percentile(sample, 99), errors };
}

function keysMoved(scenario: Scenario, arrivals: Arrivals, record: RunRecord): KeysMoved | undefined {
  const fail = scenario.events.find((e) => e.type === 'fail');
  if (!fail) return undefined;
  const failed = scenario.endpoints.findIndex((e) => e.name === fail.endpoint);
  const failAt = momentMs(fail.at, spanOf(scenario));
  const out = record.changes.find((c) => c.endpoint === failed && !c.listed && c.time >= failAt);
  if (!out) return undefined;
  const back = record.changes.find((c) => c.endpoint === failed && c.listed && c.time > out.time)?.time ?? Infinity;

  const unit = record.algorithm === 'ip-hash' ? 'clients' : 'keys';
  const keyOf = unit === 'clients' ? arrivals.client : arrivals.key;
  const size = unit === 'clients' ? arrivals.addresses.length : arrivals.keys.length;
  const before = new Int32Array(size).fill(-1);
  const after = new Int32Array(size).fill(-1);
  for (let r = 0; r < arrivals.time.length; r++) {
    const t = arrivals.time[r];
    const e = record.endpointOf[r];
    if (e < 0) continue;
    if (t < failAt)
      before[keyOf[r]] = e; // the last one before
    else if (t >= out.time && t < back && after[keyOf[r]] < 0) after[keyOf[r]] = e; // the first one after
  }
  let of = 0;
  let moved = 0;
  for (let k = 0; k < size; k++) {
    if (before[k] < 0 || after[k] < 0 || before[k] === failed) continue;
    of++;
    if (after[k] !== before[k]) moved++;
  }
  return { unit, of, moved, share: of ? moved / of : NaN };
}

function timeline(arrivals: Arrivals, record: RunRecord): RunSummary['timeline'] {
  const n = arrivals.time.length;
  const last = n ? arrivals.time[n - 1] : 0;
  const bucketMs = last / TIMELINE_BUCKETS || 1;
  const buckets: number[][] = Array.from({ length: TIMELINE_BUCKETS }, () => []);
  const errors = new Array<number>(TIMELINE_BUCKETS).fill(0);
  for (let r = 0; r < n; r++) {
    const b = Math.min(TIMELINE_BUCKETS - 1, Math.floor(arrivals.time[r] / bucketMs));
    if (record.error[r]) errors[b]++;
    else buckets[b].push(record.latency[r]);
  }
  return { bucketMs, p99: buckets.map((b) => (b.length ? percentile(Float64Array.from(b), 99) : null)), errors };
}

/** Summarises one run of `scenario`. */
export function summarize(scenario: Scenario, arrivals: Arrivals, record: RunRecord): RunSummary {
  const n = arrivals.time.length;
  const byEndpoint: number[][] = scenario.endpoints.map(() => []);
  let unrouted = 0;
  for (let r = 0; r < n; r++) {
    const e = record.endpointOf[r];
    if (e >= 0) byEndpoint[e].push(r);
    else unrouted++;
  }
  const all = Array.from({ length: n }, (_, r) => r);
  return {
    algorithm: record.algorithm,
    endpoints: scenario.endpoints.map((m, i) => ({
      name: m.name,
      weight: m.weight,
      share: n ? byEndpoint[i].length / n : 0,
      ...latencyStats(record, byEndpoint[i]),
    })),
    overall: latencyStats(record, all),
    unrouted,
    keysMoved: keysMoved(scenario, arrivals, record),
    timeline: timeline(arrivals, record),
  };
}
