/** An HTTP/2 client for integration tests (node:http2): sessions, one-shot requests, closing. */
import http2 from 'node:http2';
import { guard } from './guard.ts';

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** One request on `session`; `body` (if any) is written after the headers, then the stream ended. */
export function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Response> {
  return guard(
    new Promise((resolve, reject) => {
      const stream = session.request(headers, { endStream: body === undefined });
      let head: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (head = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks).toString(), trailers }));
      stream.on('error', reject);
      if (body !== undefined) stream.end(body);
    }),
    `response to ${String(headers[':method'] ?? 'GET')} ${String(headers[':path'])}`,
  );
}

export function connectH2(url: string, opts: http2.SecureClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
  return guard(
    new Promise((resolve, reject) => {
      const session = http2.connect(url, opts);
      session.once('remoteSettings', () => resolve(session));
      session.once('error', reject);
    }),
    `HTTP/2 session to ${url}`,
  );
}

export function closeSession(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed) return resolve();
    session.close(() => resolve());
  });
}
