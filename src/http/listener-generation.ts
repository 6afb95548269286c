/**
 * What one listener's requests depend on that a reload may change: its part of a config
 * generation (routes with their compiled filter chains, its own filters, settings). The listener
 * holds one and swaps it on reload; a request keeps the one it started with.
 */
import type { RouteConfig, Timeouts } from '../config/types.ts';
import type { AccessRecord } from '../observability/access-log.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { Routable, Router } from '../routing/router.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { UnderscorePolicy } from '../transport/headers.ts';
import type { AddressSet } from '../util/cidr.ts';
import type { Chain } from './chain.ts';
import type { StaticSite } from './static-site.ts';

/** Counts the requests a config generation still has in flight. */
export interface GenerationTracker {
  enter(): void;
  leave(): void;
}

/** Per-listener settings the pipeline and the proxy step read; one object per listener generation. */
export interface ListenerSettings {
  /** `http` or `https`, as this listener terminates. */
  readonly scheme: 'http' | 'https';
  /** Request headers that carry the verified client certificate [subject, fingerprint] (mTLS), lower-case. */
  readonly clientCertHeaders: readonly [string, string] | undefined;
  readonly underscores: UnderscorePolicy;
  /** ms a client may take to accept more of a response once its socket is full; 0 = no limit. */
  readonly sendTimeout: number;
  /** ms an async policy hook may take before its request is answered 503 POLICY_TIMEOUT; 0 = no limit. */
  readonly policyTimeout: number;
  /** Largest response head accepted from an endpoint answering an upgrade, in bytes. */
  readonly maxHeaderSize: number;
  /** Set when the listener stops: responses carry `Connection: close`. */
  draining: boolean;
  /**
   * A forward-proxy listener (forward/): targets name their destination (absolute-form, CONNECT),
   * and credentials for the proxy are asked with 407 (`RequestView.proxyAuthentication`).
   */
  readonly forwardProxy?: boolean;
}

/** A route as one listener serves it: the route, and the chain of the listener's and the route's filters. */
export interface ListenerRoute extends Routable {
  readonly name: string;
  readonly config: RouteConfig;
  /** Undefined for a route whose policies answer every request (`respond`). */
  readonly upstream: Upstream | undefined;
  /** The directory a `static:` route serves instead of an upstream (static-files.ts); undefined otherwise. */
  readonly static?: StaticSite | undefined;
  /** The upstream's timeouts with the route's overrides. */
  readonly timeouts: Timeouts;
  /** Largest request body in bytes; 0 = no limit. */
  readonly maxBodySize: number;
  readonly chain: Chain;
}

export interface ListenerGeneration {
  readonly name: string;
  readonly router: Router<ListenerRoute>;
  /** Peers whose X-Forwarded-For is believed. */
  readonly trusted: AddressSet;
  readonly settings: ListenerSettings;
  readonly generation: GenerationTracker;
  /** The listener's own filters: run before routing, and for requests no route takes. */
  readonly chain: Chain;
  /**
   * A forward-proxy listener's one route (built by forward/forward-route.ts; its chain holds the
   * listener's filters): it takes every request in place of the router, and the listener's forward
   * step serves it. Undefined on every other listener (the router decides).
   */
  readonly forwardRoute?: ListenerRoute | undefined;
  /**
   * The process's tracing when the config turns it on, else undefined: the one test a request
   * makes (set once per generation; with it undefined no span work happens at all).
   */
  readonly tracing: Tracing | undefined;
  /** Query parameters whose values never reach the access log (the filters' `secretQueryParams`); per generation. */
  readonly secretQueryParams: ReadonlySet<string>;
  /** Called once per finished request (the access log), with its session. */
  readonly onRequestEnd: (s: AccessRecord) => void;
  /** Called when handling a request threw: a bug, or a policy (`policy` names it); the request gets a 500. */
  readonly onInternalError: (s: AccessRecord, err: unknown, policy?: string) => void;
}
