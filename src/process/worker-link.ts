/**
 * The worker's end of the machine-wide counters (upstream/machine-link.ts), over the IPC channel
 * to the supervisor (process/shared.ts is the other end).
 *
 * In-flight counts are batched: a change marks its key, and at most one `load` message per
 * FLUSH_MS carries the latest count of every marked key, so a busy worker sends at most 1,000
 * small messages a second whatever its request rate, and the supervisor (which forwards each to
 * the other workers) cannot be flooded: sending one per event-loop turn was, under load, more
 * than it could forward, and delayed everything else it does. The other workers hear of a change
 * within about FLUSH_MS plus two IPC hops.
 */
import type { Logger } from 'pino';
import type { MachineLink } from '../upstream/machine-link.ts';
import type { FromWorker, ToWorker } from './messages.ts';

const FLUSH_MS = 1;

export class WorkerLink implements MachineLink {
  readonly #send: (m: FromWorker) => void;
  readonly #dirty = new Map<string, number>();
  #scheduled = false;
  #nextId = 1;
  readonly #answers = new Map<number, (granted: boolean) => void>();
  #onOthers: ((key: string, others: number) => void) | undefined;
  #onPeerEjection: ((upstream: string, origin: string, duration: number, reason: string) => void) | undefined;
  /** The worker's logger, once it has one: each `load` heard is logged at trace level (tests wait on it). */
  log: Logger | undefined;

  constructor(send: (m: FromWorker) => void) {
    this.#send = send;
  }

  /** Feeds a message from the supervisor (the worker's message handler calls it for `load` and `slot`). */
  handle(m: ToWorker): void {
    if (m.sb === 'load') {
      if (this.log?.isLevelEnabled('trace')) this.log.trace({ inFlight: m.inFlight }, 'machine load');
      const fn = this.#onOthers;
      if (fn !== undefined) for (const [key, n] of Object.entries(m.inFlight)) fn(key, n);
    } else if (m.sb === 'eject') {
      this.#onPeerEjection?.(m.upstream, m.endpoint, m.duration, m.reason);
    } else if (m.sb === 'slot') {
      const answer = this.#answers.get(m.id);
      this.#answers.delete(m.id);
      answer?.(m.grant);
    }
  }

  inFlightChanged(key: string, n: number): void {
    this.#dirty.set(key, n);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(this.#flush, FLUSH_MS);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const inFlight: Record<string, number> = {};
    for (const [key, n] of this.#dirty) inFlight[key] = n;
    this.#dirty.clear();
    this.#send({ sb: 'load', inFlight });
  };

  acquire(upstream: string, max: number, maxQueued: number, answer: (granted: boolean) => void): number {
    const id = this.#nextId++;
    this.#answers.set(id, answer);
    this.#send({ sb: 'acquire', id, upstream, max, maxQueued });
    return id;
  }

  release(upstream: string): void {
    this.#send({ sb: 'release', upstream });
  }

  cancel(upstream: string, id: number): void {
    this.#answers.delete(id);
    this.#send({ sb: 'cancel', id, upstream });
  }

  ejected(upstream: string, origin: string, duration: number, reason: string): void {
    this.#send({ sb: 'eject', upstream, endpoint: origin, duration, reason });
  }

  onPeerEjection(fn: (upstream: string, origin: string, duration: number, reason: string) => void): void {
    this.#onPeerEjection = fn;
  }

  onOthers(fn: (key: string, others: number) => void): void {
    this.#onOthers = fn;
  }
}
