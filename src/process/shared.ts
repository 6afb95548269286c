/**
 * The supervisor's side of the counters that must mean the same for the whole machine, whichever
 * worker reads them (the workers' side is upstream/machine-link.ts, carried by worker-link.ts):
 *
 * - Requests in flight per endpoint, for upstreams whose balancer reads them (least-connections,
 *   least-response-time, power-of-two): each worker reports its own counts when they change (at
 *   most once per millisecond); the supervisor sums the *other* workers' counts per endpoint and
 *   sends each worker its sum, which it adds to its own exact count. A worker's view of the others is late by one report (a few milliseconds).
 * - Circuit-breaker slots per upstream (`maxRequests`, `maxQueued`): exact for the machine. A
 *   worker asks for a slot (one IPC round trip, only on upstreams with a breaker) and gives it
 *   back when the request ends; requests past `maxRequests` wait here in one FIFO queue across
 *   workers. A worker that dies gives back every slot it held and leaves the queue.
 * - Outlier ejections: the worker that ejects an endpoint says so, and every other worker ejects it
 *   for as long (upstream/outlier-detection.ts).
 *
 * State scope: per machine (this process); never per fleet, because all of it describes this machine's
 * own connections to its upstreams (as Envoy's breakers are per instance).
 */
import type { Worker } from 'node:cluster';
import { post, type FromWorker } from './messages.ts';

interface Slots {
  active: number;
  /** The latest limits a worker sent (a reload may change them). */
  max: number;
  held: Map<Worker, number>;
  queue: Array<{ worker: Worker; id: number }>;
}

export class SharedCounters {
  /** Each worker's own in-flight count per key (upstream + endpoint). */
  readonly #load = new Map<Worker, Map<string, number>>();
  readonly #slots = new Map<string, Slots>();

  /** A new worker: it hears the others' counts from now on (its own are 0). */
  add(worker: Worker): void {
    this.#load.set(worker, new Map());
  }

  /** Handles a worker's `load`, `acquire`, `release`, `cancel` or `eject`; answers go to the workers concerned. */
  handle(worker: Worker, m: FromWorker): void {
    switch (m.sb) {
      case 'load': {
        const own = this.#load.get(worker);
        if (own === undefined) return;
        for (const [key, n] of Object.entries(m.inFlight)) own.set(key, n);
        this.#sendLoad(Object.keys(m.inFlight), worker);
        return;
      }
      case 'acquire': {
        const s = this.#slotsOf(m.upstream);
        s.max = m.max;
        if (s.max === 0 || s.active < s.max) {
          this.#take(s, worker);
          post(worker, { sb: 'slot', id: m.id, grant: true });
        } else if (s.queue.length < m.maxQueued) s.queue.push({ worker, id: m.id });
        else post(worker, { sb: 'slot', id: m.id, grant: false });
        return;
      }
      case 'release': {
        const s = this.#slotsOf(m.upstream);
        const held = s.held.get(worker) ?? 0;
        if (held === 0) return;
        s.held.set(worker, held - 1);
        s.active--;
        this.#pump(s);
        return;
      }
      case 'eject':
        // Outlier ejections hold for the machine: every other worker ejects the endpoint as long.
        for (const w of this.#load.keys()) if (w !== worker) post(w, m);
        return;
      case 'cancel': {
        const s = this.#slots.get(m.upstream);
        if (s === undefined) return;
        const i = s.queue.findIndex((q) => q.worker === worker && q.id === m.id);
        if (i !== -1) s.queue.splice(i, 1);
        return;
      }
      default:
        return;
    }
  }

  /** A worker is gone: its slots free up, its queued requests leave, its load no longer counts. */
  forget(worker: Worker): void {
    for (const s of this.#slots.values()) {
      s.active -= s.held.get(worker) ?? 0;
      s.held.delete(worker);
      s.queue = s.queue.filter((q) => q.worker !== worker);
      this.#pump(s);
    }
    const own = this.#load.get(worker);
    this.#load.delete(worker);
    if (own !== undefined && own.size > 0) this.#sendLoad([...own.keys()], undefined);
  }

  /** Requests in flight machine-wide for `key` (tests, status). */
  inFlight(key: string): number {
    let n = 0;
    for (const own of this.#load.values()) n += own.get(key) ?? 0;
    return n;
  }

  /** Sends every worker but `from` the other workers' sums for `keys` (each recipient's own count left out). */
  #sendLoad(keys: string[], from: Worker | undefined): void {
    for (const w of this.#load.keys()) {
      if (w === from) continue;
      const inFlight: Record<string, number> = {};
      for (const key of keys) {
        let n = 0;
        for (const [other, own] of this.#load) if (other !== w) n += own.get(key) ?? 0;
        inFlight[key] = n;
      }
      post(w, { sb: 'load', inFlight });
    }
  }

  #slotsOf(upstream: string): Slots {
    let s = this.#slots.get(upstream);
    if (s === undefined) {
      s = { active: 0, max: 0, held: new Map(), queue: [] };
      this.#slots.set(upstream, s);
    }
    return s;
  }

  #take(s: Slots, worker: Worker): void {
    s.active++;
    s.held.set(worker, (s.held.get(worker) ?? 0) + 1);
  }

  /** Starts queued requests, oldest first, while there is room. */
  #pump(s: Slots): void {
    while (s.queue.length > 0 && (s.max === 0 || s.active < s.max)) {
      const next = s.queue.shift()!;
      if (!next.worker.isConnected()) continue;
      this.#take(s, next.worker);
      post(next.worker, { sb: 'slot', id: next.id, grant: true });
    }
  }
}
