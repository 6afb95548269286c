/**
 * `hsts`: adds Strict-Transport-Security (RFC 6797) to every response sent over TLS, unless the
 * upstream set its own; nothing over plain HTTP, where browsers ignore it (RFC 6797 §8.1). The
 * header value is built once. After nginx's `add_header Strict-Transport-Security … always` and
 * Caddy's header handler. An https listener's `hsts:` key is a shorthand for this policy.
 */
import type { Filter, PolicyType } from '../filter.ts';
import { parseDuration } from '../../util/units.ts';
import { hstsConfig, type HstsConfig } from './config.ts';

/** The header value for a config, `max-age=31536000; includeSubDomains`. */
export function hstsValue(raw: HstsConfig): string {
  let v = `max-age=${Math.floor(parseDuration(raw.maxAge ?? '365d') / 1000)}`;
  if (raw.includeSubDomains === true) v += '; includeSubDomains';
  if (raw.preload === true) v += '; preload';
  return v;
}

/** The filter adding `value` to responses over TLS. */
export function hstsFilter(value: string): Filter {
  return {
    onResponse(s, head) {
      if (s.client.tls && !head.headers.has('strict-transport-security')) head.headers.append('strict-transport-security', value);
      return undefined;
    },
  };
}

export const hstsPolicy = {
  type: 'hsts',
  description: 'Adds Strict-Transport-Security to responses over TLS (unless the upstream sent one).',
  config: hstsConfig,
  resolve: (raw: HstsConfig): string => hstsValue(raw),
  create: (value: string): Filter => hstsFilter(value),
} satisfies PolicyType<typeof hstsConfig, string>;
