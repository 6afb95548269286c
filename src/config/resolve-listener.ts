/**
 * The listeners section of resolve: addresses (parsed, each used once), trusted proxies, TLS files,
 * HTTP/2 settings, HSTS, udp sessions, the keys that fit only some protocols, and the upstreams that
 * layer 4 listeners name (tcp, tls, tls-passthrough with its `sni` table, udp).
 */
import { hstsPolicy } from '../policies/registry.ts';
import { isIP } from 'node:net';
import { parseCidr } from '../util/cidr.ts';
import { parseDuration, parseSize } from '../util/units.ts';
import { defaults } from './defaults.ts';
import type { RawListener, RawListenerTls } from './listener-schema.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { RawConfig } from './schema.ts';
import { resolveForward } from './resolve-forward.ts';
import { sniNames, sniUpstreamProblems } from './sni.ts';
import { suggest } from './suggest.ts';
import { configPath, fileProblem, loadCa, loadCertificate } from './tls-files.ts';
import type { Http2Config, ListenAddress, ListenerConfig, ListenerTlsConfig, UpstreamConfig } from './types.ts';

/** Parses `127.0.0.1:8080`, `[::1]:8080`, `:8080`, `localhost:0`. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] || '0.0.0.0');
  if (m[1] !== undefined && isIP(m[1]) !== 6) return undefined;
  return { host, port };
}

function listenerTls(raw: RawListenerTls, at: KeyPath, baseDir: string, problems: Problem[]): ListenerTlsConfig {
  const d = defaults.listener.tls;
  const certificates: ListenerTlsConfig['certificates'] = [];
  raw.certificates.forEach((c, i) => {
    const certFile = configPath(baseDir, c.cert);
    const keyFile = configPath(baseDir, c.key);
    const loaded = loadCertificate(certFile, keyFile);
    if (loaded.ok) certificates.push({ certFile, keyFile, ...loaded.value });
    else fileProblem([...at, 'certificates', i], loaded.problem, problems);
  });
  let clientCertificate: ListenerTlsConfig['clientCertificate'];
  const cc = raw.clientCertificate;
  if (cc !== undefined) {
    const caFile = configPath(baseDir, cc.ca);
    const ca = loadCa(caFile);
    if (!ca.ok) fileProblem([...at, 'clientCertificate'], ca.problem, problems);
    const dc = d.clientCertificate;
    clientCertificate = {
      caFile,
      ca: ca.ok ? ca.value : '',
      required: cc.required ?? dc.required,
      subjectHeader: (cc.subjectHeader ?? dc.subjectHeader).toLowerCase(),
      fingerprintHeader: (cc.fingerprintHeader ?? dc.fingerprintHeader).toLowerCase(),
    };
  }
  return {
    certificates,
    strictSni: raw.strictSni ?? d.strictSni,
    minVersion: raw.minVersion ?? d.minVersion,
    ciphers: raw.ciphers,
    sessionTickets: raw.sessionTickets ?? d.sessionTickets,
    sessionTimeout: parseDuration(raw.sessionTimeout ?? d.sessionTimeout),
    alpn: raw.alpn ?? [...d.alpn],
    clientCertificate,
  };
}

function http2Config(raw: RawListener['http2']): Http2Config {
  const d = defaults.listener.http2;
  return {
    maxConcurrentStreams: raw?.maxConcurrentStreams ?? d.maxConcurrentStreams,
    initialWindowSize: parseSize(raw?.initialWindowSize ?? d.initialWindowSize),
    connectionWindowSize: parseSize(raw?.connectionWindowSize ?? d.connectionWindowSize),
    maxResets: raw?.maxResets ?? d.maxResets,
    resetWindow: parseDuration(raw?.resetWindow ?? d.resetWindow),
  };
}

/** The listener keys that only fit one protocol, checked against the listener's. */
function listenerProtocolProblems(name: string, l: RawListener, problems: Problem[]): void {
  const at = ['listeners', name];
  if (l.udp !== undefined && l.protocol !== 'udp')
    problems.push({ path: [...at, 'udp'], expected: `no udp settings on a ${l.protocol} listener (protocol: udp only)`, found: 'a map' });
  if (l.forward !== undefined && l.protocol !== 'forward' && l.protocol !== 'socks5')
    problems.push({ path: [...at, 'forward'], expected: `no forward settings on a ${l.protocol} listener (protocol: forward or socks5 only)`, found: 'a map' });
  if (l.protocol === 'forward' || l.protocol === 'socks5') {
    if (l.upstream !== undefined)
      problems.push({ path: [...at, 'upstream'], expected: `no upstream on a ${l.protocol} listener (requests name their destinations)`, found: show(l.upstream) });
    // A forward listener speaks HTTP/1.1, and HTTP/2 by prior knowledge with h2c (CONNECT over HTTP/2, RFC 9113 §8.5).
    for (const key of ['tls', 'sni', 'udp', 'httpsRedirect', 'hsts', ...(l.protocol === 'socks5' ? (['h2c', 'http2'] as const) : [])] as const) {
      if (l[key] !== undefined) problems.push({ path: [...at, key], expected: `no ${key} on a ${l.protocol} listener`, found: show(l[key]) });
    }
    return;
  }
  if (l.sni !== undefined && l.protocol !== 'tls-passthrough')
    problems.push({ path: [...at, 'sni'], expected: `no sni on a ${l.protocol} listener (protocol: tls-passthrough only)`, found: 'a map' });
  if (l.protocol === 'tls-passthrough') {
    if (l.upstream === undefined && l.sni === undefined)
      problems.push({
        path: [...at, 'sni'],
        expected: 'server names to route by, or an upstream for every connection (a tls-passthrough listener needs sni or upstream)',
        found: 'nothing',
      });
    for (const key of ['tls', 'h2c', 'http2', 'httpsRedirect', 'hsts', 'policies'] as const) {
      if (l[key] !== undefined)
        problems.push({ path: [...at, key], expected: `no ${key} on a tls-passthrough listener (TLS passes through it to the endpoints)`, found: show(l[key]) });
    }
    return;
  }
  if (l.protocol === 'udp') {
    if (l.upstream === undefined) problems.push({ path: [...at, 'upstream'], expected: 'the upstream a udp listener forwards to', found: 'nothing' });
    for (const key of ['tls', 'h2c', 'http2', 'httpsRedirect', 'hsts', 'proxyProtocol', 'policies'] as const) {
      if (l[key] !== undefined)
        problems.push({ path: [...at, key], expected: `no ${key} on a udp listener (it has no connections, and does not speak HTTP)`, found: show(l[key]) });
    }
    return;
  }
  if (l.protocol === 'tcp' || l.protocol === 'tls') {
    if (l.upstream === undefined) problems.push({ path: [...at, 'upstream'], expected: `the upstream a ${l.protocol} listener forwards to`, found: 'nothing' });
    if (l.protocol === 'tls' && l.tls === undefined)
      problems.push({ path: [...at, 'tls'], expected: 'TLS settings with at least one certificate (a tls listener needs them)', found: 'nothing' });
    for (const key of [...(l.protocol === 'tcp' ? (['tls'] as const) : []), 'h2c', 'http2', 'httpsRedirect', 'hsts', 'policies'] as const) {
      if (l[key] !== undefined) problems.push({ path: [...at, key], expected: `no ${key} on a ${l.protocol} listener (it does not speak HTTP)`, found: show(l[key]) });
    }
    return;
  }
  if (l.upstream !== undefined)
    problems.push({ path: [...at, 'upstream'], expected: `no upstream on an ${l.protocol} listener (routes choose its upstreams)`, found: show(l.upstream) });
  if (l.protocol === 'https') {
    if (l.tls === undefined)
      problems.push({ path: [...at, 'tls'], expected: 'TLS settings with at least one certificate (an https listener needs them)', found: 'nothing' });
    if (l.h2c !== undefined)
      problems.push({ path: [...at, 'h2c'], expected: 'no h2c on an https listener (HTTP/2 is offered by ALPN; see tls.alpn)', found: show(l.h2c) });
    if (l.httpsRedirect !== undefined) problems.push({ path: [...at, 'httpsRedirect'], expected: 'no httpsRedirect on an https listener', found: show(l.httpsRedirect) });
  } else {
    if (l.tls !== undefined) problems.push({ path: [...at, 'tls'], expected: 'no tls on an http listener (use protocol: https)', found: 'a map' });
    if (l.hsts !== undefined) problems.push({ path: [...at, 'hsts'], expected: 'no hsts on an http listener (browsers ignore it over plain http)', found: 'a map' });
  }
}

interface Bound {
  name: string;
  udp: boolean;
  address: ListenAddress;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * Two listeners on one port where one address is a wildcard (`0.0.0.0:P` and `127.0.0.1:P`, or
 * `[::]:P` and anything on P): the second bind fails at start (EADDRINUSE), or with SO_REUSEPORT
 * the kernel splits connections between them, so the config says so first. Port 0 picks distinct
 * ports and never overlaps.
 */
function overlapProblem(name: string, udp: boolean, address: ListenAddress, seen: Bound[], problems: Problem[]): void {
  if (address.port !== 0) {
    for (const b of seen) {
      if (b.udp !== udp || b.address.port !== address.port || b.address.host === address.host) continue;
      if (!WILDCARDS.has(b.address.host) && !WILDCARDS.has(address.host)) continue;
      // 0.0.0.0 (IPv4) and a specific IPv6 address do not overlap; [::] takes IPv4 too (dual stack).
      if ((b.address.host === '0.0.0.0' && isIP(address.host) === 6) || (address.host === '0.0.0.0' && isIP(b.address.host) === 6)) continue;
      problems.push({
        path: ['listeners', name, 'address'],
        expected: `an address that does not overlap listener "${b.name}" at ${b.address.host}:${b.address.port} (a wildcard address takes the port on every address)`,
        found: show(`${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`),
      });
      break;
    }
  }
  seen.push({ name, udp, address });
}

/**
 * The listeners, in the order written, each with its defaults applied; a listener whose address
 * does not parse is left out (and reported). Reads the TLS files, relative to `baseDir`. The
 * upstreams they name are checked later, by `listenerUpstreamProblems`, once upstreams are resolved.
 */
export function resolveListeners(raw: RawConfig, baseDir: string, problems: Problem[]): ListenerConfig[] {
  const listeners: ListenerConfig[] = [];
  const seenAddresses = new Map<string, string>();
  const seen: Bound[] = [];
  for (const [name, l] of Object.entries(raw.listeners)) {
    const trustedProxies = l.trustedProxies ?? [...defaults.listener.trustedProxies];
    trustedProxies.forEach((cidr, i) => {
      if (!parseCidr(cidr)) problems.push({ path: ['listeners', name, 'trustedProxies', i], expected: 'an IP address or CIDR range', found: show(cidr) });
    });
    l.proxyProtocol?.trusted.forEach((cidr, i) => {
      if (!parseCidr(cidr)) problems.push({ path: ['listeners', name, 'proxyProtocol', 'trusted', i], expected: 'an IP address or CIDR range', found: show(cidr) });
    });
    const address = parseListenAddress(l.address);
    if (!address) {
      problems.push({ path: ['listeners', name, 'address'], expected: 'host:port, e.g. "127.0.0.1:8080" or "[::1]:8080"', found: show(l.address) });
      continue;
    }
    // A udp listener may share its host:port with a tcp one (e.g. DNS on both): a different socket.
    const key = `${l.protocol === 'udp' ? 'udp ' : ''}${address.host}:${address.port}`;
    const other = seenAddresses.get(key);
    if (other !== undefined && address.port !== 0) {
      problems.push({ path: ['listeners', name, 'address'], expected: `an address no other listener uses (listener "${other}" has it)`, found: show(l.address) });
    }
    seenAddresses.set(key, name);
    overlapProblem(name, l.protocol === 'udp', address, seen, problems);
    const headerTimeout = parseDuration(l.headerTimeout ?? defaults.listener.headerTimeout);
    const requestTimeout = parseDuration(l.requestTimeout ?? defaults.listener.requestTimeout);
    if (requestTimeout !== 0 && requestTimeout < headerTimeout) {
      problems.push({
        path: ['listeners', name, 'requestTimeout'],
        expected: `0 or at least the headerTimeout (${l.headerTimeout ?? defaults.listener.headerTimeout})`,
        found: show(l.requestTimeout ?? defaults.listener.requestTimeout),
      });
    }
    listenerProtocolProblems(name, l, problems);
    listeners.push({
      name,
      address,
      protocol: l.protocol,
      upstream: l.upstream,
      sni: sniNames(name, l, problems),
      udp:
        l.protocol === 'udp'
          ? { sessionIdle: parseDuration(l.udp?.sessionIdle ?? defaults.listener.udp.sessionIdle), maxSessions: l.udp?.maxSessions ?? defaults.listener.udp.maxSessions }
          : undefined,
      proxyProtocol:
        l.proxyProtocol === undefined
          ? undefined
          : { trusted: l.proxyProtocol.trusted, timeout: parseDuration(l.proxyProtocol.timeout ?? defaults.listener.proxyProtocol.timeout) },
      tls: (l.protocol === 'https' || l.protocol === 'tls') && l.tls !== undefined ? listenerTls(l.tls, ['listeners', name, 'tls'], baseDir, problems) : undefined,
      h2c: l.h2c ?? defaults.listener.h2c,
      http2: http2Config(l.http2),
      httpsRedirect:
        l.httpsRedirect === undefined || l.httpsRedirect === false
          ? undefined
          : { port: (l.httpsRedirect === true ? undefined : l.httpsRedirect.port) ?? defaults.listener.httpsRedirect.port },
      hsts: l.protocol === 'https' && l.hsts !== undefined ? hstsPolicy.resolve(l.hsts) : undefined,
      trustedProxies,
      headerTimeout,
      requestTimeout,
      sendTimeout: parseDuration(l.sendTimeout ?? defaults.listener.sendTimeout),
      policyTimeout: parseDuration(l.policyTimeout ?? defaults.listener.policyTimeout),
      keepAliveTimeout: parseDuration(l.keepAliveTimeout ?? defaults.listener.keepAliveTimeout),
      maxHeaderSize: parseSize(l.maxHeaderSize ?? defaults.listener.maxHeaderSize),
      maxConnections: l.maxConnections ?? defaults.listener.maxConnections,
      maxConnectionsPerClient: l.maxConnectionsPerClient ?? defaults.listener.maxConnectionsPerClient,
      maxRequestsPerConnection: l.maxRequestsPerConnection ?? defaults.listener.maxRequestsPerConnection,
      headersWithUnderscores: l.headersWithUnderscores ?? defaults.listener.headersWithUnderscores,
      policies: l.policies ?? [],
      reusePort: l.reusePort ?? false,
      forward: l.protocol === 'forward' || l.protocol === 'socks5' ? resolveForward(l.forward, ['listeners', name, 'forward'], baseDir, problems) : undefined,
    });
  }
  listeners.forEach((l) => {
    if (l.headerTimeout === 0)
      problems.push({ path: ['listeners', l.name, 'headerTimeout'], expected: 'a duration above 0 (the slowloris guard cannot be off)', found: '0' });
  });
  return listeners;
}

/**
 * The upstreams named by layer 4 listeners (`upstream`, and the `sni` table of tls-passthrough) must
 * exist and have endpoints of the listener's kind: tcp:// for tcp, tls and tls-passthrough, udp://
 * for udp. `listeners` are the resolved ones, `upstreams` all resolved upstreams by name.
 */
export function listenerUpstreamProblems(
  raw: RawConfig,
  listeners: readonly ListenerConfig[],
  upstreams: ReadonlyMap<string, UpstreamConfig>,
  problems: Problem[],
): void {
  const upstreamNamesForTcp = [...upstreams.keys()];
  for (const l of listeners) {
    sniUpstreamProblems(l.name, raw.listeners[l.name], upstreams, problems);
    if ((l.protocol !== 'tcp' && l.protocol !== 'tls' && l.protocol !== 'tls-passthrough' && l.protocol !== 'udp') || l.upstream === undefined) continue;
    const wanted = l.protocol === 'udp' ? 'udp' : 'tcp';
    const u = upstreams.get(l.upstream);
    if (u === undefined) {
      problems.push({
        path: ['listeners', l.name, 'upstream'],
        expected: upstreamNamesForTcp.length ? `the name of an upstream (one of: ${upstreamNamesForTcp.join(', ')})` : 'the name of an upstream (none are defined)',
        found: show(l.upstream),
        hint: suggest(l.upstream, upstreamNamesForTcp),
      });
    } else if (u.endpoints.some((e) => e.scheme !== wanted)) {
      const has = u.endpoints.find((e) => e.scheme !== wanted)!.scheme;
      problems.push({
        path: ['listeners', l.name, 'upstream'],
        expected: `an upstream with ${wanted}:// endpoints (upstream "${u.name}" has ${has} ones)`,
        found: show(l.upstream),
      });
    }
  }
}
