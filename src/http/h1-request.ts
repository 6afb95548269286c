/**
 * The request half of the HTTP/1.x adapter for connections handed over by an upgrade or CONNECT
 * (ws-downstream.ts): the head the own server parsed (h1-server.ts), as a `DownstreamRequest`'s
 * head, with HTTP/1.1's framing checks.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '../errors.ts';
import { clientAddressOf, clientCertOf, type VerifiedCertificate } from '../transport/connection-info.ts';
import { checkFraming } from './strict.ts';

/** An HTTP/1.x request head and its connection, in node:http's IncomingMessage's names. */
export interface H1Head {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: Socket;
  /** What the request line had wrong (h1-head.ts): the pipeline answers it. */
  readonly lineError: ErrorCode | undefined;
}

export abstract class H1Request {
  readonly req: H1Head;
  readonly trailersAccepted = false;

  constructor(req: H1Head) {
    this.req = req;
  }

  get method(): string {
    return this.req.method;
  }

  get url(): string {
    return this.req.url;
  }

  get authority(): string {
    return this.req.headers.host ?? '';
  }

  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  get fields(): readonly string[] {
    return this.req.rawHeaders;
  }

  get remoteAddress(): string {
    return clientAddressOf(this.req.socket);
  }

  get clientCertificate(): VerifiedCertificate | undefined {
    return clientCertOf(this.req.socket);
  }

  check(): ErrorCode | undefined {
    const r = this.req;
    return checkFraming(r.lineError, r.httpVersionMinor, r.rawHeaders, r.headers);
  }
}
