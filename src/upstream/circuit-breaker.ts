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
 * State scope:
 * - `active` and the limits: per worker for now. The limit protects the upstream, so it must count
 *   every request this machine sends it: per machine when workers arrive (issue 11), a shared
 *   counter, or `maxRequests` divided among the workers. Not per fleet: Envoy's breakers are "fully
 *   distributed (not coordinated)", each instance enforcing its own; a fleet-wide count in Redis
 *   would put a network round trip before every request.
 * - the wait queue: per worker, always. A queued request is a client socket this worker holds;
 *   only the news that a slot is free would cross workers.
 */
import type { CircuitBreakerConfig } from '../config/types.ts';

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
}

export class CircuitBreaker {
  #config: CircuitBreakerConfig;
  #active = 0;
  readonly #queue: QueueTicket[] = [];

  constructor(config: CircuitBreakerConfig) {
    this.#config = config;
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
    if (max === 0 || this.#active < max) return 'now';
    return this.#queue.length < this.#config.maxQueued ? 'queue' : 'full';
  }

  /** Queues a request that `admit` said must wait; `onTimeout` runs if no slot frees within `queueTimeout`. */
  enqueue(start: () => void, onTimeout: () => void): QueueTicket {
    const ticket: QueueTicket = { start, onTimeout, timer: undefined };
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
    this.#remove(ticket);
  }

  /** A request starts: one more in flight. */
  enter(): void {
    this.#active++;
  }

  /** A request is over: one fewer in flight, then queued requests start, oldest first, while there is room. */
  leave(): void {
    this.#active--;
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
