/**
 * The per-request context every layer after the listener shares: what was asked, where it went,
 * and what came back. One object per request, created by the listener, read by the access log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Endpoint } from '../upstream/endpoint.ts';
import type { ErrorCode } from '../transport/errors.ts';

/** A client certificate verified at the TLS handshake (downstream mutual TLS). */
export interface ClientCertInfo {
  /** Subject DN, `C=DE,O=Example,CN=client-1`. */
  readonly subject: string;
  /** SHA-256 of the DER certificate, lower-case hex. */
  readonly fingerprint: string;
}

/** Per-listener settings the forwarding step needs; one shared object per listener generation. */
export interface ListenerPolicy {
  /** `http` or `https`, as this listener terminates. */
  readonly proto: string;
  /** Strict-Transport-Security value added to proxied responses (https listeners), or undefined. */
  readonly hsts: string | undefined;
  /** Request headers that carry the verified client certificate [subject, fingerprint] (mTLS), lower-case. */
  readonly clientCertHeaders: readonly [string, string] | undefined;
  /** Port to redirect every request to over https (308), or undefined. */
  readonly httpsRedirect: number | undefined;
  readonly underscores: 'allow' | 'drop' | 'reject';
  /** ms a client may take to accept more of a response once its socket is full; 0 = no limit. */
  readonly sendTimeout: number;
  /** Set when the gateway shuts down: responses carry `Connection: close`. */
  draining: boolean;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly listener: string;
  readonly requestId: string;
  /** TCP peer address (no `::ffff:` prefix). */
  readonly peer: string;
  /** Client address after trusted-proxy resolution. */
  readonly client: string;
  /** Whether the peer is a trusted proxy. */
  readonly trustedPeer: boolean;
  /** Host header as received ('' when absent). */
  readonly host: string;
  /** Normalised path (before rewrite), no query; set once the target is parsed. */
  path: string;
  /** Query string including its leading `?`, or ''; set once the target is parsed. */
  query: string;
  /** Path plus query as it will be sent upstream (after rewrite); middleware may change it. */
  target: string;
  /** Listener policies the forwarding step applies. */
  readonly policy: ListenerPolicy;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** Whether the client sent `Expect: 100-continue` and is waiting for a 100 before the body. */
  readonly expectContinue: boolean;
  /** The route that matched, once routing ran. */
  route: string | undefined;
  /** The upstream and endpoint of the last attempt. */
  upstream: string | undefined;
  endpoint: Endpoint | undefined;
  /** Status sent to the client (0 until headers go out). */
  status: number;
  /** Request body bytes received, response body bytes sent. */
  bytesIn: number;
  bytesOut: number;
  /** ms from dispatch to upstream response headers, -1 when no upstream answered. */
  upstreamLatency: number;
  /** Tries sent to endpoints (1 + retries); 0 when none was sent. */
  tries: number;
  /** Error code when Switchboard answered for itself or the exchange failed. */
  error: ErrorCode | undefined;
  /** The upstream attempt in flight, so that a client leaving early can abort it. */
  attempt: AttemptHandle | undefined;
  /** Whether the request came over HTTP/2 (the request and response are node:http2's compat objects). */
  readonly h2: boolean;
  /** The verified client certificate of the connection (mTLS listeners), or undefined. */
  readonly clientCert: ClientCertInfo | undefined;
}

/** What the listener may do to an attempt in flight. */
export interface AttemptHandle {
  abort(reason: Error): void;
  readonly finished: boolean;
}

/**
 * A middleware policy: runs once per request in route order, may answer itself (not calling next),
 * change the context or request headers before calling `next`, and look at the outcome after it.
 * Calling `next` twice is an error.
 */
export type Middleware = (ctx: RequestContext, next: () => Promise<void>) => Promise<void>;

/** Builds a middleware from its config block; called once per config generation. */
export type MiddlewareFactory<Options> = (options: Options) => Middleware;
