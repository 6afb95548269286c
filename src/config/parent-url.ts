/**
 * A parent proxy's `url` (forward listeners' `forward.parent`): `http://[user:pass@]host:port` or
 * `socks5://[user:pass@]host:port`, taken apart once at load. Credentials are percent-decoded (a
 * `@` or `:` in a password is written `%40`, `%3A`) and never appear in a problem's text.
 */
import { isIP } from 'node:net';
import { type KeyPath, type Problem, show } from './problems.ts';
import type { ForwardParentProxy } from './types.ts';

const PROTOCOLS: Record<string, ForwardParentProxy['protocol']> = { 'http:': 'http', 'socks5:': 'socks5' };

/** The URL as a problem may show it: its userinfo replaced. */
function shown(url: string): string {
  return show(url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1[redacted]@'));
}

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/** Checks and takes apart one parent URL; pushes a problem at `at` and returns undefined when it is not one. */
export function parseParentUrl(raw: string, at: KeyPath, problems: Problem[]): ForwardParentProxy | undefined {
  const bad = (expected: string): undefined => {
    problems.push({ path: at, expected, found: shown(raw) });
    return undefined;
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return bad('a URL such as `http://host:3128` or `socks5://user:pass@host:1080`');
  }
  const protocol = PROTOCOLS[url.protocol];
  if (protocol === undefined) return bad('a parent URL with scheme `http` or `socks5`');
  if (url.hostname === '') return bad('a parent URL with a host');
  // URL drops a port equal to the scheme's default (`http://h:80`); the text still shows it.
  const authority = raw.slice(raw.indexOf('//') + 2).split(/[/?#]/)[0];
  if (!/:\d+$/.test(authority.slice(authority.lastIndexOf('@') + 1))) return bad('a parent URL with an explicit port (`:3128`, `:1080`)');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') return bad('a parent URL with no path, query or fragment');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const username = url.username === '' ? undefined : decode(url.username);
  const password = url.password === '' ? undefined : decode(url.password);
  if ((url.username !== '' && username === undefined) || (url.password !== '' && password === undefined)) return bad('credentials with valid percent-encoding');
  if (protocol === 'socks5' && (Buffer.byteLength(username ?? '') > 255 || Buffer.byteLength(password ?? '') > 255)) {
    return bad('a SOCKS5 username and password of at most 255 bytes each (RFC 1929)');
  }
  if (protocol === 'http' && username !== undefined && username.includes(':')) return bad('a username without `:` (Basic credentials are `user:pass`)');
  const port = url.port === '' ? 80 : Number(url.port);
  const label = `${protocol}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  return { protocol, host, port, label, username: username ?? (password === undefined ? undefined : ''), password };
}
