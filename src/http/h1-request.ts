/**
 * The request half of the HTTP/1.x adapters (h1-downstream.ts, ws-downstream.ts): node:http's
 * IncomingMessage as a `DownstreamRequest`'s head, and HTTP/1.1's framing checks.
 */
import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../errors.ts';
import { clientAddressOf, clientCertOf, type VerifiedCertificate } from '../transport/connection-info.ts';
import { checkFraming } from './strict.ts';

export abstract class H1Request {
  readonly req: IncomingMessage;
  readonly trailersAccepted = false;

  constructor(req: IncomingMessage) {
    this.req = req;
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  get url(): string {
    return this.req.url ?? '';
  }

  get authority(): string {
    return this.req.headers.host ?? '';
  }

  get headers(): IncomingMessage['headers'] {
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
    return checkFraming(this.req);
  }
}
