/**
 * The downstream side of one request, whatever the protocol: the request as the client sent it and
 * the response we send back. HTTP/1.1 (h1-server.ts H1Exchange), HTTP/2 (h2-downstream.ts) and WebSocket
 * upgrades (ws-downstream.ts) each implement it; protocol differences live in those adapters, and
 * nothing past them (the pipeline, the policies, the proxy step) branches on the protocol.
 *
 * The response half is also what the transport writes an upstream response into (`ResponseSink`):
 * a route with no response-phase filter hands the downstream itself to the transport.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ErrorCode } from '../errors.ts';
import type { ResponseSink } from '../transport/forward.ts';
import type { ClientCertificate } from '../policies/filter.ts';

/** The request's session as its adapter sees it: counters to keep, and the end to report. */
export interface DownstreamOwner {
  /** Status of the response head sent; the adapter sets it. */
  status: number;
  /** Response body bytes sent; the adapter counts them. */
  bytesOut: number;
  /** Set when the listener drains: responses close their connection. */
  readonly draining: boolean;
  /** The exchange is over: `complete` when the whole response reached the client. Called once. */
  closed(complete: boolean): void;
}

export interface DownstreamRequest {
  /** The method as sent (HTTP/1.1 requires upper case; HTTP/2 is checked by `check`). */
  readonly method: string;
  /** The request target: HTTP/1.1 request-target, HTTP/2 `:path`. */
  readonly url: string;
  /** Host (HTTP/1.1) or `:authority` (HTTP/2, else its Host), '' when absent. */
  readonly authority: string;
  /** Request headers by lower-case name. */
  readonly headers: IncomingHttpHeaders;
  /**
   * The request's fields as a flat [name, value, …] list for forwarding: HTTP/2 pseudo-headers
   * left out and its Cookie fields joined into one (RFC 9113 §8.2.3).
   */
  readonly fields: readonly string[];
  /** `HTTP/1.0`, `HTTP/1.1` or `HTTP/2` (for the access log; nothing branches on it). */
  readonly version: string;
  /** Whether the request opens a WebSocket (an HTTP/1.1 Upgrade this listener tunnels). */
  readonly upgrade: boolean;
  /** Whether the request has a body (to come, or already in). */
  readonly hasBody: boolean;
  /** Whether the whole body has arrived. */
  readonly bodyComplete: boolean;
  /** Whether reading the body failed (the client reset or stopped). */
  readonly bodyFailed: boolean;
  /** Whether a `te: trailers` of the client is passed on (HTTP/2: gRPC needs it). */
  readonly trailersAccepted: boolean;
  /** The TCP peer address as the socket (or the PROXY header) says. */
  readonly remoteAddress: string | undefined;
  /** The connection's verified client certificate (mTLS listeners), or undefined. */
  readonly clientCertificate: ClientCertificate | undefined;
  /**
   * The protocol's own framing checks (HTTP/1.1: version, Host, Transfer-Encoding; HTTP/2: header
   * list size, authority, CONNECT): the error code to answer with, or undefined.
   */
  check(): ErrorCode | undefined;
  /**
   * Whether forwarding waits one event-loop turn (HTTP/2: a stream the client resets in the same
   * read, a rapid reset, then never costs an upstream request).
   */
  readonly settleFirst: boolean;
  /**
   * The body as a Readable that its consumer may destroy without harming the response (undici
   * destroys a body it gave up on). Called at most once.
   */
  body(): Readable;
}

export interface DownstreamResponse extends ResponseSink {
  /**
   * An interim response. 100 once the request body is wanted (Expect: 100-continue); 102 and 103
   * relayed from the endpoint. One the protocol cannot carry is left out: returns whether it went out.
   */
  informational(status: number, headers?: Record<string, string | string[]>): boolean;
  /** Ask for the connection to close after this response (HTTP/1.1: `Connection: close`). */
  closeAfter(): void;
  /** Whether the response has been ended (everything handed to the connection). */
  readonly ended: boolean;
}

/** One downstream exchange: the request in, the response out. */
export interface Downstream extends DownstreamRequest, DownstreamResponse {
  /** Connects the adapter to the pipeline: `owner.closed()` is called when the exchange is over. */
  attach(owner: DownstreamOwner): void;
}
