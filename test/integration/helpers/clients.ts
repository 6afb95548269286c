/**
 * One request shape over HTTP/1.1 (undici), h2c with prior knowledge and HTTP/2 over TLS
 * (node:http2), so a test can assert the same behaviour over each protocol.
 */
import type http2 from 'node:http2';
import { Agent, request } from 'undici';
import { closeSession, connectH2, h2request } from './h2-client.ts';

export interface Answer {
  status: number;
  /** Lower-case names; repeated fields joined with `, `; no pseudo-headers. */
  headers: Record<string, string>;
  body: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface Client {
  /** `h1`, `h2c` or `h2 (TLS)`, for assertion messages. */
  readonly name: string;
  send(path: string, opts?: RequestOptions): Promise<Answer>;
  close(): Promise<void>;
}

function flat(headers: Record<string, string | string[] | number | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

/** HTTP/1.1 to `base` (`http://…` or `https://…`; `ca` and `servername` for TLS). */
export function h1Client(base: string, tls?: { ca: string; servername: string }): Client {
  const dispatcher = new Agent(tls ? { connect: { ca: tls.ca, servername: tls.servername } } : {});
  return {
    name: tls ? 'HTTP/1.1 (TLS)' : 'HTTP/1.1',
    async send(path, opts = {}) {
      const res = await request(base + path, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body, dispatcher });
      const body = await res.body.text();
      return { status: res.statusCode, headers: flat(res.headers), body };
    },
    close: () => dispatcher.close(),
  };
}

/** HTTP/2 to `base`: h2c with prior knowledge for `http://`, ALPN h2 for `https://`. */
export async function h2Client(base: string, tls?: { ca: string; servername: string }): Promise<Client> {
  const session: http2.ClientHttp2Session = await connectH2(base, tls ? { ca: tls.ca, servername: tls.servername } : {});
  return {
    name: tls ? 'HTTP/2 (TLS)' : 'HTTP/2 (h2c)',
    async send(path, opts = {}) {
      const r = await h2request(session, { ':method': opts.method ?? 'GET', ':path': path, ...opts.headers }, opts.body);
      return { status: r.status, headers: flat(r.headers), body: r.body };
    },
    close: () => closeSession(session),
  };
}
