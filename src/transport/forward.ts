/**
 * HTTP forwarding on undici's dispatch API: one `UpstreamTry` per try, streaming the response into
 * a `ResponseSink` with backpressure and mapping every failure to a ProxyError. The transport never
 * writes to the client: it hands the response to its sink (the downstream itself, or the response
 * filters in front of it), and every decision (retry, answer, record) to the try's owner.
 *
 *   owner ──startTry(dispatcher, request)──► undici pool ──► endpoint
 *   owner.head ◄── onResponseStart      sink.data ◄── onResponseData      owner.ended ◄── onResponseEnd
 *
 * This is the hot path: no closures per try beyond the try object (a response that outruns its
 * client adds one drain callback), no buffering of bodies.
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { ProxyError, upstreamError } from '../errors.ts';

/** How a sink holds back or stops the body of a response it is not ready for. */
export interface Flow {
  pause(): void;
  resume(): void;
  /** Drop the rest of the upstream response (the sink answered otherwise). */
  stop(): void;
}

/**
 * Where a response goes: the client's downstream response, or the response filters before it.
 * Called by the try (data) and its owner (head, end, abort), in that order, once each but `data`.
 */
export interface ResponseSink {
  /**
   * The final head (status ≥ 200). `headers` is a flat [name, value, …] list, hop-by-hop removed;
   * the sink may keep it. Returns false when the sink answered otherwise and wants no body: the
   * upstream response is then dropped. `flow` lets a sink hold the body back (an async filter).
   */
  head(status: number, reason: string | undefined, headers: string[], flow: Flow | undefined): boolean;
  /** A body chunk; false when the client's connection is full: wait for `onDrain`. */
  data(chunk: Buffer): boolean;
  /** Calls `resume` once the client can take more. */
  onDrain(resume: () => void): void;
  /** The response is complete; trailers when the endpoint sent some. */
  end(trailers: Record<string, string | string[]> | undefined): void;
  /** Cuts a response whose head went out: the client must see an aborted response, never a clean short one. */
  abort(err: ProxyError): void;
  /** Whether the head went out (or is committed to go out): an error can no longer be answered. */
  readonly headersSent: boolean;
  /** Whether the client is gone. */
  readonly destroyed: boolean;
}

/** What one try sends. */
export interface TryRequest {
  readonly method: string;
  /** Path and query as sent upstream. */
  readonly path: string;
  /** Flat [name, value, …], hop-by-hop already removed. */
  readonly headers: string[];
  /** The body to stream, or null. */
  readonly body: Readable | null;
  /** ms for the response head; 0 = none (undici's headersTimeout). */
  readonly headersTimeout: number;
  /** ms of silence between body chunks; 0 = none (undici's bodyTimeout). */
  readonly bodyTimeout: number;
  /** The origin to send to when `dispatcher` serves several (an Agent: the forward proxy's checked `http://ip:port`); undefined for a Pool. */
  readonly origin?: string | undefined;
}

/** The request a try belongs to: it decides what the try's outcomes mean. */
export interface TryOwner {
  /** Where the response body goes. */
  readonly sink: ResponseSink;
  /** ms a client may take to accept more once its connection is full; 0 = no limit. */
  readonly sendTimeout: number;
  /** A 1xx response other than 101. */
  informational(t: UpstreamTry, status: number, headers: IncomingHttpHeaders): void;
  /** The final head: true when the owner passed it to the sink, false to drop the response (a retry, or the sink answered). */
  head(t: UpstreamTry, status: number, headers: IncomingHttpHeaders, reason: string | undefined): boolean;
  /** The response ended cleanly. */
  ended(t: UpstreamTry, trailers: IncomingHttpHeaders): void;
  /** The try failed (before or after the head); `err` says how. */
  failed(t: UpstreamTry, err: ProxyError): void;
  /** A try whose response was dropped is over (its connection released). */
  dropped(t: UpstreamTry): void;
}

/** One request to one endpoint; implements undici's DispatchHandler and the sink's Flow. */
export class UpstreamTry implements Dispatcher.DispatchHandler, Flow {
  readonly owner: TryOwner;
  controller: Dispatcher.DispatchController | undefined = undefined;
  /** Set when the try was given up before undici started it; undici's later start is aborted. */
  pendingAbort: Error | undefined = undefined;
  /** undici started writing the request (so some of it may have reached the endpoint). */
  sent = false;
  /** Abandoned before undici started it (its body may still be touched later). */
  abandoned = false;
  /** The response is being dropped (a retry, or the sink answered otherwise). */
  dropping = false;
  finished = false;
  /** performance.now() at dispatch. */
  startedAt = 0;
  tryTimer: NodeJS.Timeout | undefined = undefined;
  /** The per-try timer ran out: the try is given up in the next check phase unless headers arrive first. */
  tryDue = false;
  /** Armed while the client socket is full: the client has `sendTimeout` to take more. */
  stallTimer: NodeJS.Timeout | undefined = undefined;
  #paused = false;

  constructor(owner: TryOwner) {
    this.owner = owner;
  }

  /** Ends this try with `reason` (client gone, timeout, body too large). */
  abort(reason: Error): void {
    if (this.finished) return;
    if (this.controller) {
      this.controller.abort(reason);
      return;
    }
    // undici has not started it (waiting for a connection): fail now, abort when it starts.
    this.pendingAbort = reason;
    this.abandoned = true;
    this.onResponseError(undefined, reason);
  }

  pause(): void {
    this.#paused = true;
    this.controller?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.controller?.resume();
  }

  stop(): void {
    if (this.dropping || this.finished) return;
    this.dropping = true;
    this.controller?.abort(new ProxyError('UPSTREAM_ERROR', undefined, 'response dropped'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.pendingAbort) {
      controller.abort(this.pendingAbort);
      return;
    }
    this.controller = controller;
    this.sent = true;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (this.finished || this.dropping) return;
    if (statusCode < 200) return this.owner.informational(this, statusCode, headers);
    if (this.tryTimer) {
      clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
    this.tryDue = false;
    if (!this.owner.head(this, statusCode, headers, statusMessage) && !this.dropping) {
      this.dropping = true;
      controller.abort(new ProxyError('UPSTREAM_ERROR', undefined, 'response dropped'));
    } else if (this.#paused) controller.pause();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.dropping || this.finished) return;
    const sink = this.owner.sink;
    if (!sink.data(chunk)) {
      controller.pause();
      // Only responses that outrun their client get here, so this closure is off the common path.
      sink.onDrain(() => {
        if (this.stallTimer) clearTimeout(this.stallTimer);
        this.stallTimer = undefined;
        if (!this.#paused) controller.resume();
      });
      const sendTimeout = this.owner.sendTimeout;
      if (sendTimeout > 0 && this.stallTimer === undefined) this.stallTimer = setTimeout(onSendTimeout, sendTimeout, this);
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.finished) return;
    this.#cleanup();
    if (this.dropping) this.owner.dropped(this);
    else this.owner.ended(this, trailers);
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.finished) return;
    this.#cleanup();
    if (this.dropping) this.owner.dropped(this);
    else this.owner.failed(this, upstreamError(err));
  }

  #cleanup(): void {
    this.finished = true;
    if (this.tryTimer) clearTimeout(this.tryTimer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
  }
}

/** The client stopped reading: give up on it, and on the upstream request feeding it. */
function onSendTimeout(t: UpstreamTry): void {
  t.stallTimer = undefined;
  const err = new ProxyError('SEND_TIMEOUT');
  t.abort(err);
  t.owner.sink.abort(err);
}

/**
 * The per-try timer ran out. Node runs due timers before it polls for I/O, so after the event loop
 * stalled (a GC pause, a loaded machine) this callback can run before a connect or response headers
 * that completed in time have been read: the try would be given up before its request was even
 * written. The try is therefore given up one turn later, in the check phase that follows the poll:
 * a try whose response headers arrived meanwhile is kept, and one whose request went out on a
 * connection completed meanwhile is abandoned only after the request reached the endpoint.
 */
function onTryTimeout(t: UpstreamTry): void {
  t.tryTimer = undefined;
  t.tryDue = true;
  setImmediate(onTryExpired, t);
}

function onTryExpired(t: UpstreamTry): void {
  if (!t.tryDue || t.finished) return;
  t.tryDue = false;
  t.abort(new ProxyError('UPSTREAM_TIMEOUT', undefined, 'the endpoint did not answer within the per-try timeout'));
}

/** What a try is sent through: an undici dispatcher, or the own HTTP/1.1 client (h1-client.ts `H1Agent`). */
export interface DispatchTarget {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
}

/** Sends one try of `owner`'s request through `dispatcher`; `perTryTimeout` ms for the head (0 = none). */
export function startTry(owner: TryOwner, dispatcher: DispatchTarget, request: TryRequest, perTryTimeout: number): UpstreamTry {
  const t = new UpstreamTry(owner);
  if (perTryTimeout > 0) t.tryTimer = setTimeout(onTryTimeout, perTryTimeout, t);
  t.startedAt = performance.now();
  try {
    dispatcher.dispatch(
      {
        origin: request.origin,
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body,
        headersTimeout: request.headersTimeout,
        bodyTimeout: request.bodyTimeout,
        idempotent: false,
        blocking: true,
      },
      t,
    );
  } catch (err) {
    t.onResponseError(undefined, err as Error);
  }
  return t;
}
