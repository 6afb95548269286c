/**
 * The `admin` section of resolve: a listen address that no traffic listener uses or overlaps, and a
 * token whenever the address is not loopback (an admin API open to the network without a token
 * would let anyone drain the fleet).
 */
import { isIP } from 'node:net';
import { show, type Problem } from './problems.ts';
import { parseListenAddress } from './resolve-listener.ts';
import type { RawConfig } from './schema.ts';
import type { AdminConfig, ListenerConfig } from './types.ts';

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** Whether `host` names only this machine: 127.0.0.0/8, ::1 (IPv4-mapped too) or localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function overlaps(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  if (a.host === b.host) return true;
  if (!WILDCARDS.has(a.host) && !WILDCARDS.has(b.host)) return false;
  // 0.0.0.0 (IPv4) and a specific IPv6 address do not overlap; [::] takes IPv4 too (dual stack).
  if ((a.host === '0.0.0.0' && isIP(b.host) === 6) || (b.host === '0.0.0.0' && isIP(a.host) === 6)) return false;
  return true;
}

/** Resolves `raw.admin` (absent: no admin listener). */
export function resolveAdmin(raw: RawConfig, listeners: ListenerConfig[], problems: Problem[]): AdminConfig | undefined {
  const a = raw.admin;
  if (a === undefined) return undefined;
  const address = parseListenAddress(a.address);
  if (!address) {
    problems.push({ path: ['admin', 'address'], expected: 'host:port, e.g. "127.0.0.1:9901" or "[::1]:9901"', found: show(a.address) });
    return undefined;
  }
  for (const l of listeners) {
    // UDP ports are another namespace: the admin's TCP port may equal a udp listener's.
    if (l.protocol === 'udp' || !overlaps(address, l.address)) continue;
    problems.push({
      path: ['admin', 'address'],
      expected: `an address apart from the traffic listeners (listener "${l.name}" is at ${l.address.host.includes(':') ? `[${l.address.host}]` : l.address.host}:${l.address.port}; the admin API is never served on a traffic listener)`,
      found: show(a.address),
    });
  }
  if (a.token === undefined && !isLoopbackHost(address.host)) {
    problems.push({
      path: ['admin', 'token'],
      expected: `a token (e.g. token: "\${ADMIN_TOKEN}"), because ${show(a.address)} is reachable from other machines and the admin API can drain endpoints and reload the config; or a loopback address such as "127.0.0.1:9901"`,
      found: 'nothing',
    });
  }
  return { address, token: a.token };
}
