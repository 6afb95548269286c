/**
 * The circuit breaker of one upstream: at most `maxRequests` requests in flight to it (0 = no
 * limit); past that, up to `maxQueued` requests wait, oldest first, for up to `queueTimeout` each;
 * past that, the request is refused at once (503, UPSTREAM_OVERLOADED).
 *
 * The proxy step calls, per request: `admit()` once; on 'now' `enter()` and, when the request is
 * over, `leave()`; on 'queue' `enqueue()`, whose `start` runs on a freed slot and must `enter()`,
 * and `cancel()` if the client leaves first. `leave()` starts queued requests while there is room.
 *
 * Source: Envoy's circuit breaking (envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/
 * circuit_breaking: `max_requests` and `max_pending_requests` per cluster), with a timeout on the
 * wait as HAProxy's `maxconn` + `maxqueue` + `timeout queue` on a server.
 *
 * State scope: per machine. The limit protects the upstream, so it counts every request this
 * machine sends it. In a lone process the counts here are the machine's. In a worker (`shared`
 * given), every request on an upstream with `maxRequests` asks the supervisor for a slot (one IPC
 * round trip, process/shared.ts), which keeps the machine's count and one FIFO wait queue for all
 * workers; this object then only remembers the slots its requests hold, to give them back. Not per
 * fleet: Envoy's breakers are "fully distributed (not coordinated)", each instance enforcing its
 * own; a fleet-wide count in Redis would put a network round trip before every request.
 * Upstreams without `maxRequests` never ask: the breaker costs them nothing.
 */
import type { CircuitBreakerConfig } from '../config/types.ts';
import type { MachineLink } from './machine-link.ts';

/** What `admit` decides: go now, wait in the queue, or refuse (queue full). */
export type Admission = 'now' | 'queue' | 'full';

/** A place in the wait queue, from `enqueue`; hand it back to `cancel`. */
export interface QueueTicket {
  /** Runs when a slot frees up; must call `enter()` before it returns. */
  readonly start: () => void;
  /** Runs when `queueTimeout` passes first; the ticket has already left the queue. */
  readonly onTimeout: () => void;
  /** The queueTimeout timer; undefined once started, cancelled or timed out. */
  timer: NodeJS.Timeout | undefined;
  /** Shared mode: the supervisor's id for the request, and whether it was answered, cancelled or timed out. */
  id?: number;
  settled?: boolean;
}

/** A worker's breaker: the machine's slots are the supervisor's (machine-link.ts). */
export interface SharedBreaker {
  link: MachineLink;
  upstream: string;
}

export class CircuitBreaker {
  #config: CircuitBreakerConfig;
  #active = 0;
  readonly #queue: QueueTicket[] = [];
  readonly #shared: SharedBreaker | undefined;
  /** Shared mode: slots the supervisor granted to this worker's requests, given back on `leave`. */
  #held = 0;

  constructor(config: CircuitBreakerConfig, shared?: SharedBreaker) {
    this.#config = config;
    this.#shared = shared;
  }

  /**
   * Adopts a reloaded config. Waiting requests keep their timers; a higher limit lets them in at
   * the next `leave()`.
   */
  configure(config: CircuitBreakerConfig): void {
    this.#config = config;
  }

  /** Requests in flight to the upstream (queued ones excluded); the retry budget is a share of it. */
  get active(): number {
    return this.#active;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Whether a new request may go now, must wait, or is refused. Changes nothing. */
  admit(): Admission {
    const max = this.#config.maxRequests;
    if (max === 0) return 'now';
    // A worker does not know the machine's count: it asks the supervisor (enqueue).
    if (this.#shared !== undefined) return 'queue';
    if (this.#active < max) return 'now';
    return this.#queue.length < this.#config.maxQueued ? 'queue' : 'full';
  }

  /** Queues a request that `admit` said must wait; `onTimeout` runs if no slot frees within `queueTimeout`. */
  enqueue(start: () => void, onTimeout: () => void): QueueTicket {
    const ticket: QueueTicket = { start, onTimeout, timer: undefined };
    const shared = this.#shared;
    if (shared !== undefined) {
      // The grant usually comes back within a millisecond; the wait is bounded as a local one is.
      ticket.timer = setTimeout(
        () => {
          ticket.timer = undefined;
          if (ticket.settled) return;
          ticket.settled = true;
          shared.link.cancel(shared.upstream, ticket.id!);
          onTimeout();
        },
        Math.max(this.#config.queueTimeout, 250),
      );
      ticket.id = shared.link.acquire(shared.upstream, this.#config.maxRequests, this.#config.maxQueued, (granted) => {
        if (ticket.settled) {
          if (granted) shared.link.release(shared.upstream);
          return;
        }
        ticket.settled = true;
        if (ticket.timer) clearTimeout(ticket.timer);
        ticket.timer = undefined;
        if (!granted) return onTimeout();
        this.#held++;
        start();
      });
      return ticket;
    }
    ticket.timer = setTimeout(() => {
      ticket.timer = undefined;
      this.#remove(ticket);
      onTimeout();
    }, this.#config.queueTimeout);
    this.#queue.push(ticket);
    return ticket;
  }

  /** Takes `ticket` out of the queue without starting it (the client left); no-op if it already left. */
  cancel(ticket: QueueTicket): void {
    if (ticket.timer) clearTimeout(ticket.timer);
    ticket.timer = undefined;
    const shared = this.#shared;
    if (shared !== undefined) {
      if (!ticket.settled && ticket.id !== undefined) shared.link.cancel(shared.upstream, ticket.id);
      ticket.settled = true;
      return;
    }
    this.#remove(ticket);
  }

  /** A request starts: one more in flight. */
  enter(): void {
    this.#active++;
  }

  /** A request is over: one fewer in flight, then queued requests start, oldest first, while there is room. */
  leave(): void {
    this.#active--;
    const shared = this.#shared;
    if (shared !== undefined) {
      if (this.#held > 0) {
        this.#held--;
        shared.link.release(shared.upstream);
      }
      return;
    }
    const queue = this.#queue;
    while (queue.length > 0) {
      const max = this.#config.maxRequests;
      if (max !== 0 && this.#active >= max) return;
      const next = queue.shift()!;
      if (next.timer) clearTimeout(next.timer);
      next.timer = undefined;
      next.start();
    }
  }

  /**
   * Stops the queue timers (so that the process may exit). Waiting requests stay queued and still
   * start on a `leave()` of the requests in flight.
   */
  close(): void {
    for (const ticket of this.#queue) {
      if (ticket.timer) clearTimeout(ticket.timer);
      ticket.timer = undefined;
    }
  }

  #remove(ticket: QueueTicket): void {
    const i = this.#queue.indexOf(ticket);
    if (i !== -1) this.#queue.splice(i, 1);
  }
}
