/**
 * `Facts`: what routing looks at in one request, built once per request by the pipeline. The host
 * is split into name and port and lower-cased; the query string is parsed only if a route asks.
 */
import { hostnameOf, portColon } from '../util/host.ts';
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
    const colon = portColon(host);
    this.hostname = hostnameOf(host);
    this.port = colon === -1 ? '' : host.slice(colon + 1);
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
