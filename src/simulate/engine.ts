/**
 * The discrete-event engine: replays one scenario's arrivals against a simulated fleet, with the
 * production balancer of one algorithm choosing the endpoint of every request. Virtual time only
 * (ms): events wait in a binary heap, arrivals come from the pre-drawn trace, and nothing reads a
 * clock or Math.random.
 *
 * The model of an endpoint: `capacity` requests in service at once, the rest in a FIFO queue (or,
 * past `queueLimit`, answered with an error after REJECTED_MS). A request's service time is drawn
 * from its own random numbers and the endpoint's distribution, times the endpoint's current slowdown.
 * Like production endpoints, each keeps `inFlight` (dispatched, not yet answered, queued ones
 * included) and a PeakEwma fed with every response time (queueing included) when the response comes;
 * refused connections and reset requests have no response and are not observed.
 */
import { createHash } from 'node:crypto';
import type { BalancerEndpoint, BalancerFactory, PickContext } from '../upstream/balancers/balancer.ts';
import { balancers, type BalancerName } from '../upstream/balancers/index.ts';
import { PeakEwma } from '../upstream/balancers/latency.ts';
import type { Arrivals } from './arrivals.ts';
import { EventHeap, type Timed } from './heap.ts';
import { momentMs, serviceMs, spanOf, type EndpointModel, type Scenario } from './model.ts';
import { stream } from './random.ts';

/** How long a connection to a failed endpoint takes to be refused, ms. */
export const REFUSED_MS = 1;
/** How long an endpoint with a full queue takes to answer its error, ms. */
export const REJECTED_MS = 1;

/** A change of the set of endpoints given to the balancer. */
export interface SetChange {
  time: number;
  /** Endpoint index in the scenario. */
  endpoint: number;
  /** true: added back; false: removed. */
  listed: boolean;
}

/** What happened to every request of one run, by request index (the arrivals' order). */
export interface RunRecord {
  algorithm: BalancerName;
  /** Endpoint index the request was sent to; -1 when there was none to send it to. */
  endpointOf: Int32Array;
  /** From arrival to the answer (or the error), ms. */
  latency: Float64Array;
  /** 1 when the request ended in an error. */
  error: Uint8Array;
  /** Every change of the balancer's set, in time order. */
  changes: SetChange[];
  /** Virtual time when the last request ended, ms. */
  end: number;
}

/** One simulated server, as the balancer sees it (BalancerEndpoint) and as the engine runs it. */
class SimEndpoint implements BalancerEndpoint {
  readonly id: string;
  readonly index: number;
  readonly weight: number;
  readonly model: EndpointModel;
  inFlight = 0;
  readonly ewma = new PeakEwma();
  /** Current service-time multiplier (slowdowns). */
  slow = 1;
  /** Failed: refuses connections. */
  down = false;
  /** In the set given to the balancer. */
  listed = true;
  /** Bumped on failure: completions scheduled before it are void. */
  epoch = 0;
  readonly serving = new Set<number>();
  queue: number[] = [];
  head = 0;

  constructor(model: EndpointModel, index: number) {
    this.model = model;
    this.index = index;
    this.weight = model.weight;
    // Opaque like production ids (a hash of upstream and origin), so hash tables see realistic ids.
    this.id = createHash('sha256').update(`simulated\0http://${model.name}`).digest('base64url').slice(0, 12);
  }

  latencyCost(now: number): number {
    return this.ewma.cost(now);
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  dequeue(): number | undefined {
    if (this.head === this.queue.length) return undefined;
    const r = this.queue[this.head++];
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return r;
  }
}

type Kind = 'done' | 'answer' | 'slow' | 'unslow' | 'fail' | 'recover' | 'unlist' | 'list';

interface SimEvent extends Timed {
  kind: Kind;
  /** A request index (done, answer) or an endpoint index (the rest). */
  target: number;
  /** done: the endpoint epoch; answer: 1 when the answer is a response (observed); slow: the factor. */
  value: number;
}

/** Which string a request hands the balancer as `hashKey`, as production does for each algorithm. */
function hashKeys(algorithm: BalancerName, arrivals: Arrivals): (r: number) => string | undefined {
  if (algorithm === 'ip-hash') return (r) => arrivals.addresses[arrivals.client[r]];
  if (algorithm === 'consistent-hash') return (r) => arrivals.keys[arrivals.key[r]];
  return () => undefined;
}

/**
 * Runs `scenario`'s `arrivals` through the production balancer `algorithm`. `factory` is for tests
 * that watch the balancer; it defaults to the registry's.
 */
export function simulate(scenario: Scenario, arrivals: Arrivals, algorithm: BalancerName, seed: number, factory: BalancerFactory = balancers[algorithm]): RunRecord {
  const n = arrivals.time.length;
  const endpoints = scenario.endpoints.map((m, i) => new SimEndpoint(m, i));
  const byName = new Map(endpoints.map((e) => [e.model.name, e]));
  const record: RunRecord = {
    algorithm,
    endpointOf: new Int32Array(n).fill(-1),
    latency: new Float64Array(n),
    error: new Uint8Array(n),
    changes: [],
    end: 0,
  };
  const heap = new EventHeap<SimEvent>();
  const at = (time: number, kind: Kind, target: number, value = 0): void => heap.push({ time, seq: 0, kind, target, value });

  const span = spanOf(scenario);
  for (const ev of scenario.events) {
    const e = byName.get(ev.endpoint);
    if (!e) throw new Error(`event for unknown endpoint ${JSON.stringify(ev.endpoint)}`);
    if (ev.type === 'slowdown') {
      at(momentMs(ev.at, span), 'slow', e.index, ev.factor);
      if (ev.until) at(momentMs(ev.until, span), 'unslow', e.index, ev.factor);
    } else {
      at(momentMs(ev.at, span), 'fail', e.index, ev.detectAfter);
      if (ev.recover) at(momentMs(ev.recover, span), 'recover', e.index, ev.detectAfter);
    }
  }

  const balancer = factory({ random: stream(seed, 'balancer'), hashTable: scenario.hashTable });
  let set: SimEndpoint[] = endpoints.slice();
  balancer.update(set);
  const hashKey = hashKeys(algorithm, arrivals);
  const ctx: PickContext = { hashKey: undefined, now: 0 };
  let now = 0;

  const finish = (r: number, e: SimEndpoint | undefined, error: boolean): void => {
    record.latency[r] = now - arrivals.time[r];
    if (error) record.error[r] = 1;
    if (e) e.inFlight--;
    if (now > record.end) record.end = now;
  };

  const start = (e: SimEndpoint, r: number): void => {
    e.serving.add(r);
    const ms = serviceMs(e.model.service, arrivals.u[r], arrivals.z[r]) * e.slow;
    at(now + ms, 'done', r, e.epoch);
  };

  const arrive = (r: number): void => {
    ctx.now = now;
    ctx.hashKey = hashKey(r);
    const e = set.length ? balancer.pick(set, ctx) : undefined;
    if (!e) return finish(r, undefined, true); // no endpoint: 503 at once
    record.endpointOf[r] = e.index;
    e.inFlight++;
    if (e.down) at(now + REFUSED_MS, 'answer', r, 0);
    else if (e.serving.size < e.model.capacity) start(e, r);
    else if (e.model.queueLimit !== undefined && e.queued >= e.model.queueLimit) at(now + REJECTED_MS, 'answer', r, 1);
    else e.queue.push(r);
  };

  const relist = (e: SimEndpoint, listed: boolean): void => {
    e.listed = listed;
    set = endpoints.filter((x) => x.listed);
    balancer.update(set);
    record.changes.push({ time: now, endpoint: e.index, listed });
  };

  const handle = (ev: SimEvent): void => {
    if (ev.kind === 'done' || ev.kind === 'answer') {
      const r = ev.target;
      const e = endpoints[record.endpointOf[r]];
      if (ev.kind === 'answer') {
        if (ev.value) e.ewma.observe(now - arrivals.time[r], now);
        return finish(r, e, true);
      }
      if (ev.value !== e.epoch) return; // reset by a failure, already counted
      e.serving.delete(r);
      finish(r, e, false);
      e.ewma.observe(record.latency[r], now);
      const next = e.dequeue();
      if (next !== undefined) start(e, next);
      return;
    }
    const e = endpoints[ev.target];
    switch (ev.kind) {
      case 'slow':
        e.slow *= ev.value;
        break;
      case 'unslow':
        e.slow /= ev.value;
        break;
      case 'fail': {
        e.down = true;
        e.epoch++;
        for (const r of e.serving) finish(r, e, true);
        for (let r = e.dequeue(); r !== undefined; r = e.dequeue()) finish(r, e, true);
        e.serving.clear();
        at(now + ev.value, 'unlist', e.index);
        break;
      }
      case 'recover':
        e.down = false;
        at(now + ev.value, 'list', e.index);
        break;
      case 'unlist':
        if (e.down && e.listed) relist(e, false);
        break;
      case 'list':
        if (!e.down && !e.listed) relist(e, true);
        break;
    }
  };

  let next = 0;
  while (next < n || heap.size > 0) {
    const top = heap.peek();
    if (next < n && (top === undefined || arrivals.time[next] < top.time)) {
      now = arrivals.time[next];
      arrive(next++);
    } else {
      const ev = heap.pop()!;
      now = ev.time;
      handle(ev);
    }
  }
  return record;
}
