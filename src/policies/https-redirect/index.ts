/**
 * `https-redirect`: answers every request with a redirect to the same host, path and query over
 * https; nothing is forwarded (a request without a Host, which HTTP/1.0 allows, gets 400: there is
 * no URL to send it to). After nginx's `return 308 https://$host$request_uri` and Caddy's
 * automatic HTTP→HTTPS redirects. An http listener's `httpsRedirect:` key is a shorthand for this
 * policy on the listener.
 */
import { hostnameOf } from '../../util/host.ts';
import type { Filter, PolicyType, Reply } from '../filter.ts';
import { httpsRedirectConfig, type HttpsRedirectConfig } from './config.ts';

/** The resolved config: the port (443 left out of URLs) and the status. */
export interface HttpsRedirect {
  readonly port: number;
  readonly status: number;
}

/** The redirect's target: the same host (port removed, IPv6 brackets kept), path and query over https. */
export function httpsLocation(host: string, port: number, pathAndQuery: string): string {
  return `https://${hostnameOf(host)}${port === 443 ? '' : `:${port}`}${pathAndQuery}`;
}

/** The answer to a request without a host (HTTP/1.0 may send none): no URL to redirect to. */
const NO_HOST: Reply = Object.freeze({
  status: 400,
  error: { code: 'INVALID_HOST', message: 'the request has no Host header, so there is no https URL to redirect it to' },
});

/** The filter answering every request with the redirect. */
export function httpsRedirectFilter(config: HttpsRedirect): Filter {
  return {
    onRequest(s): Reply {
      const r = s.request;
      if (r.authority === '') return NO_HOST;
      return { status: config.status, headers: { location: httpsLocation(r.authority, config.port, r.path + r.query), 'content-length': '0' } };
    },
  };
}

export const httpsRedirectPolicy = {
  type: 'https-redirect',
  description: 'Redirects every request to the same host, path and query over https (308 by default); nothing is forwarded.',
  config: httpsRedirectConfig,
  resolve: (raw: HttpsRedirectConfig): HttpsRedirect => ({ port: raw.port ?? 443, status: raw.status ?? 308 }),
  create: (config: HttpsRedirect): Filter => httpsRedirectFilter(config),
} satisfies PolicyType<typeof httpsRedirectConfig, HttpsRedirect>;
