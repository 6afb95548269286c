/**
 * HTTP/2 streams as the pipeline's `Downstream`, without node:http2's compatibility layer (which
 * wraps every stream in two further streams and always waits for trailers; going without it cut
 * Switchboard's CPU per HTTP/2 request from about 90 to 72 µs in the bench's https suite).
 *
 * What is HTTP/2's own lives here: pseudo-headers left out of the forwarded fields and Cookie
 * fields joined (RFC 9113 §8.2.3), `te: trailers` passed on, no reason phrase, no Connection
 * header; a response waits for trailers only when it may have some (a gRPC response, or one that
 * declares `Trailer`); a gRPC Trailers-Only answer goes out as one HEADERS frame with END_STREAM;
 * a response cut mid-body resets the stream (INTERNAL_ERROR), or, for a gRPC call, ends it with
 * the error as its grpc-status trailers.
 */
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { PassThrough, type Readable } from 'node:stream';
import type { ErrorCode, ProxyError } from '../errors.ts';
import { clientAddressOf, clientCertOf, type VerifiedCertificate } from '../transport/connection-info.ts';
import type { Downstream, DownstreamOwner } from './downstream.ts';
import { grpcErrorStatus, isGrpc } from './error-response.ts';
import { checkH2 } from './strict.ts';

const { NGHTTP2_CANCEL } = http2.constants;
const noop = (): void => undefined;

/** Whether a response with these headers may end with trailers (so we must wait for them). */
function mayHaveTrailers(headers: OutgoingHttpHeaders): boolean {
  const type = headers['content-type'];
  return headers.trailer !== undefined || (typeof type === 'string' && type.startsWith('application/grpc'));
}

/** The request's fields for forwarding: no pseudo-headers, one Cookie field. */
function forwardedFields(raw: string[], headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  let cookies = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 58 /* : */) continue;
    if (name === 'cookie') {
      if (!cookies) out.push('cookie', headers.cookie as string);
      cookies = true;
      continue;
    }
    out.push(name, raw[i + 1]);
  }
  return out;
}

export class H2Downstream implements Downstream {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly method: string;
  readonly url: string;
  readonly authority: string;
  readonly version = 'HTTP/2';
  readonly settleFirst = true;
  readonly upgrade = false;
  readonly expectContinue: boolean;
  readonly #maxHeaderListSize: number;
  /** The client's connection (TCP or TLS socket): node:http2 itself may read it through a wrapper. */
  readonly #connection: object | undefined;
  /** The header block held a field RFC 9113 §8.2.1 forbids: the listener has reset the stream. */
  readonly #malformed: boolean;
  /** CONNECT streams are accepted (a forward listener's tunnels); refused otherwise. */
  readonly #connect: boolean;
  owner: DownstreamOwner | undefined = undefined;
  #fields: string[] | undefined = undefined;
  #out: OutgoingHttpHeaders = {};
  #status = 200;
  #trailers: OutgoingHttpHeaders | undefined = undefined;
  /** A gRPC Trailers-Only head, held until end() so it goes out with END_STREAM. */
  #held = false;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    rawHeaders: string[],
    maxHeaderListSize: number,
    connection?: object,
    malformed = false,
    connect = false,
  ) {
    this.stream = stream;
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.method = headers[':method'] as string;
    this.url = (headers[':path'] as string | undefined) ?? '';
    this.authority = (headers[':authority'] as string | undefined) ?? headers.host ?? '';
    this.expectContinue = headers.expect === '100-continue';
    this.#maxHeaderListSize = maxHeaderListSize;
    this.#connection = connection;
    this.#malformed = malformed;
    this.#connect = connect;
    // A client reset surfaces as 'aborted'/'close'; an 'error' must never go unhandled.
    stream.on('error', noop);
  }

  attach(owner: DownstreamOwner): void {
    this.owner = owner;
    this.stream.once('close', () => {
      const s = this.stream;
      // A stream reset by the client reports writableFinished (node ends its writable side on
      // close), so a response is complete only if we ended it and no error code closed the stream.
      owner.closed(s.writableEnded && s.rstCode === 0);
    });
  }

  get fields(): readonly string[] {
    this.#fields ??= forwardedFields(this.rawHeaders, this.headers);
    return this.#fields;
  }

  get hasBody(): boolean {
    return !this.stream.endAfterHeaders;
  }

  get bodyComplete(): boolean {
    return this.stream.readableEnded;
  }

  get bodyFailed(): boolean {
    return this.stream.errored !== null;
  }

  get trailersAccepted(): boolean {
    return this.headers.te === 'trailers';
  }

  /** The client's connection: remote address, client certificate. */
  get remoteAddress(): string {
    const socket = this.#connection ?? this.stream.session?.socket;
    return socket === undefined ? '' : clientAddressOf(socket);
  }

  get clientCertificate(): VerifiedCertificate | undefined {
    const socket = this.#connection ?? this.stream.session?.socket;
    return socket === undefined ? undefined : clientCertOf(socket);
  }

  /** Whether the stream is already gone (reset in the same read that opened it: rapid reset). */
  get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  check(): ErrorCode | undefined {
    // Reset already by the listener: this only names the error for the access log.
    if (this.#malformed) return 'MALFORMED_HEADER';
    return checkH2(this, this.#maxHeaderListSize, this.#connect);
  }

  /**
   * The request body as a Readable of its own: whoever consumes a body may destroy it (undici
   * does), and destroying the stream itself would reset the response too. A client reset fails it.
   */
  body(): Readable {
    const body = new PassThrough();
    const stream = this.stream;
    stream.pipe(body);
    stream.once('aborted', () => body.destroy(new Error('the client reset the stream')));
    return body;
  }

  // The response.

  get headersSent(): boolean {
    return this.#held || this.stream.headersSent;
  }

  /** Reset or closed: nothing can be sent any more (node:http2 would throw). */
  get destroyed(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  get ended(): boolean {
    return this.stream.writableEnded;
  }

  informational(status: number, headers?: Record<string, string | string[]>): boolean {
    if (this.stream.headersSent || this.destroyed) return false;
    // 102 has no meaning in HTTP/2.
    if (status !== 100 && status !== 103) return false;
    try {
      this.stream.additionalHeaders({ ...headers, ':status': status });
    } catch {
      // A 1xx head node:http2 refuses (a connection-specific field) is left out: the final response still goes out.
    }
    return true;
  }

  head(status: number, _reason: string | undefined, headers: string[]): boolean {
    this.owner!.status = status;
    const out = this.#out;
    for (let i = 0; i < headers.length; i += 2) {
      const key = headers[i].toLowerCase();
      const prior = out[key];
      out[key] = prior === undefined ? headers[i + 1] : ([] as Array<string | number>).concat(prior, headers[i + 1]).map(String);
    }
    this.#status = status;
    // gRPC Trailers-Only (grpc-status already in the head): it must reach the client as one HEADERS
    // frame with END_STREAM; HEADERS now and an empty DATA frame later read as "no gRPC status".
    if (out['grpc-status'] !== undefined) {
      this.#held = true;
      return true;
    }
    this.#respond(false);
    return true;
  }

  #respond(endStream: boolean): void {
    if (this.destroyed) return;
    const headers = this.#out;
    headers[':status'] = this.#status;
    const waitForTrailers = !endStream && mayHaveTrailers(headers);
    try {
      this.stream.respond(headers, { endStream, waitForTrailers });
    } catch (err) {
      // A head HTTP/2 cannot carry (a field node:http2 refuses): the client gets a reset stream,
      // never a half-written response.
      this.stream.destroy(err as Error);
      return;
    }
    if (waitForTrailers) this.stream.once('wantTrailers', () => this.stream.sendTrailers(this.#trailers ?? {}));
  }

  data(chunk: Buffer): boolean {
    if (this.destroyed) return true;
    this.owner!.bytesOut += chunk.length;
    if (this.method === 'HEAD') return true;
    if (!this.stream.headersSent) {
      this.#held = false;
      this.#respond(false);
    }
    return this.stream.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.stream.once('drain', resume);
  }

  /** Ends the response; one without a body yet goes out as a single HEADERS frame. */
  end(trailers: Record<string, string | string[]> | undefined): void {
    if (this.destroyed) return;
    if (trailers !== undefined) {
      for (const _ in trailers) {
        this.#trailers = trailers;
        break;
      }
    }
    if (!this.stream.headersSent) {
      this.#held = false;
      // With trailers to send, the head cannot carry END_STREAM.
      this.#respond(this.#trailers === undefined);
      if (this.#trailers === undefined) return;
    }
    this.stream.end();
  }

  /**
   * A response cut mid-body. A gRPC call ends with the error as its status in the trailers (a
   * non-OK grpc-status is no clean end; a reset would tell the client only "no status"); anything
   * else resets the stream with INTERNAL_ERROR (never NO_ERROR, which reads as a clean end).
   */
  abort(err: ProxyError): void {
    if (this.destroyed) return;
    if (this.#held) {
      // A held Trailers-Only head never went out: answer the error instead.
      this.#held = false;
      this.#out = {};
      this.#trailers = grpcErrorStatus(err.code, err.kind.status, err.message);
      this.#out['content-type'] = 'application/grpc';
      Object.assign(this.#out, this.#trailers);
      this.#trailers = undefined;
      this.#status = 200;
      this.#respond(true);
      return;
    }
    if (!this.stream.writableEnded && isGrpc(this.headers) && this.stream.headersSent) {
      this.#trailers = grpcErrorStatus(err.code, err.kind.status, err.message);
      this.stream.end();
      return;
    }
    if (err.code === 'CLIENT_CLOSED' || err.code === 'SEND_TIMEOUT') this.stream.close(NGHTTP2_CANCEL);
    else this.stream.destroy(err);
  }

  closeAfter(): void {
    // HTTP/2 has no Connection header: its framing is never in doubt, and the stream simply ends.
  }
}
