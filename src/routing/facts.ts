/**
 * `Facts`: what routing looks at in one request, built once per request by the pipeline. The host
 * is split into name and port and lower-cased; the query string is parsed only if a route asks.
 */
import type { MatchInput } from './matchers.ts';

export class Facts implements MatchInput {
  hostname: string;
  port: string;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  #rawQuery: string;
  #query: URLSearchParams | undefined;

  constructor(host: string, method: string, path: string, rawQuery: string, headers: Record<string, string | string[] | undefined>) {
    // splitHost, without its object: this runs once per request.
    let hostname = host;
    let port = '';
    const colon = host.lastIndexOf(':');
    if (colon !== -1 && colon > host.lastIndexOf(']')) {
      hostname = host.slice(0, colon);
      port = host.slice(colon + 1);
    }
    hostname = hostname.toLowerCase();
    if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
    this.hostname = hostname;
    this.port = port;
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.#rawQuery = rawQuery;
  }

  query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.#rawQuery);
    return this.#query;
  }
}

/** `Example.COM.:8080` → `{ hostname: 'example.com', port: '8080' }`; IPv6 keeps its brackets. */
export function splitHost(host: string): { hostname: string; port: string } {
  let hostname = host;
  let port = '';
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && colon > host.lastIndexOf(']')) {
    hostname = host.slice(0, colon);
    port = host.slice(colon + 1);
  }
  hostname = hostname.toLowerCase();
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  return { hostname, port };
}
