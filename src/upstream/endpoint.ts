/**
 * One server of an upstream, as balancers see it: its weight, how busy it is (requests in flight),
 * how fast it has been (latency observations), and whether it may be picked.
 */
import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { EndpointConfig } from '../config/types.ts';

export class Endpoint {
  /** Opaque, stable id (derived from upstream name and origin; never the address itself). */
  readonly id: string;
  readonly origin: string;
  /** host:port, sent as Host when the upstream asks for the endpoint's host. */
  readonly host: string;
  /** Configured weight, 1-1000. */
  readonly weight: number;
  /** The connection pool requests to this endpoint go through. */
  readonly dispatcher: Dispatcher;
  /** Pools with a route-specific connect timeout, by that timeout (ms). */
  readonly dispatchers = new Map<number, Dispatcher>();
  /** Requests currently in flight to this endpoint (incremented at dispatch, decremented at end). */
  inFlight = 0;
  /** Whether health checking allows traffic here. Issue-3 health checkers flip it. */
  healthy = true;
  /** Exponentially weighted moving average of response-header latency, ms; 0 until observed. */
  latencyEwma = 0;
  /** Completed requests, for balancers and metrics. */
  completed = 0;

  constructor(upstreamName: string, config: EndpointConfig, dispatcher: Dispatcher) {
    this.id = createHash('sha256').update(`${upstreamName}\0${config.origin}`).digest('base64url').slice(0, 12);
    this.origin = config.origin;
    this.host = config.host;
    this.weight = config.weight;
    this.dispatcher = dispatcher;
  }

  /** The pool to use for a given connect timeout. */
  dispatcherFor(connectTimeout: number): Dispatcher {
    return this.dispatchers.get(connectTimeout) ?? this.dispatcher;
  }

  /** Records one response-header latency (ms). Called once per completed attempt. */
  observe(ms: number): void {
    this.latencyEwma = this.completed === 0 ? ms : this.latencyEwma * 0.8 + ms * 0.2;
    this.completed++;
  }
}
