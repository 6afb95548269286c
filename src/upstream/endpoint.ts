/**
 * One server of an upstream in one config generation: its pools, its configured weight, and the
 * lasting state (in flight, latency, health) it shares with the same endpoint in other generations.
 * This is what balancers see (`BalancerEndpoint`).
 */
import { createHash } from 'node:crypto';
import type { UpstreamPool } from '../transport/pools.ts';
import type { ConnectionOptions } from 'node:tls';
import type { EndpointConfig } from '../config/types.ts';
import type { BalancerEndpoint } from './balancers/balancer.ts';
import type { EndpointState } from './state.ts';
import { endpointAddress } from '../transport/upstream-tls.ts';

/** Opaque, stable id of an endpoint: derived from upstream name and origin, never the address itself. */
export function endpointId(upstream: string, origin: string): string {
  return createHash('sha256').update(`${upstream}\0${origin}`).digest('base64url').slice(0, 12);
}

export class Endpoint implements BalancerEndpoint {
  readonly id: string;
  readonly origin: string;
  /** host:port, sent as Host when the upstream asks for the endpoint's host. */
  readonly host: string;
  /** Configured weight, 1-1000. */
  readonly configWeight: number;
  readonly state: EndpointState;
  /** The connection pool requests to this endpoint go through; undefined for tcp:// endpoints. */
  readonly dispatcher: UpstreamPool | undefined;
  /** Pools with a route-specific connect timeout, by that timeout (ms). */
  readonly dispatchers = new Map<number, UpstreamPool>();
  /** The endpoint's address, as dialled by tunnels (WebSocket) and TCP health checks. */
  readonly address: { host: string; port: number };
  /** TLS options for an https:// endpoint (tunnels use them as they are); undefined for http://. */
  readonly tls: ConnectionOptions | undefined;

  constructor(upstreamName: string, config: EndpointConfig, state: EndpointState, dispatcher: UpstreamPool | undefined, tls?: ConnectionOptions) {
    this.id = endpointId(upstreamName, config.origin);
    this.origin = config.origin;
    this.host = config.host;
    this.configWeight = config.weight;
    this.state = state;
    this.dispatcher = dispatcher;
    this.tls = tls;
    const a = endpointAddress(config);
    this.address = { host: a.host!, port: a.port };
  }

  /** Effective weight: the configured one (or one set through the admin API), scaled down while slow start ramps the endpoint up. */
  get weight(): number {
    return (this.state.weightOverride ?? this.configWeight) * this.state.weightFactor;
  }

  /** Requests in flight to this endpoint from the whole machine: this worker's exact count plus the others' last report. */
  get inFlight(): number {
    return this.state.inFlight + this.state.othersInFlight;
  }

  latencyCost(now: number): number {
    return this.state.latency.cost(now);
  }

  /** The pool to use for a given connect timeout. Only HTTP endpoints are asked (routes never reach tcp:// ones). */
  dispatcherFor(connectTimeout: number): UpstreamPool {
    return (this.dispatchers.get(connectTimeout) ?? this.dispatcher)!;
  }
}
