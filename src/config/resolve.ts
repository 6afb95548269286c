/**
 * Raw (schema-valid) config → resolved GatewayConfig: defaults applied, units converted, names
 * wired, and every check the schema cannot express (references, addresses, URLs, regexes). Problems
 * carry the key path so the loader can point at file:line:column.
 */
import { isIP } from 'node:net';
import { defaults } from './defaults.ts';
import type { RawConfig, RawHealthCheck, RawListener, RawListenerTls, RawPathMatch, RawStringMatch, RawTimeouts, RawUpstream } from './schema.ts';
import type {
  EndpointConfig,
  GatewayConfig,
  HashKeyConfig,
  HealthCheckConfig,
  Http2Config,
  ListenAddress,
  ListenerTlsConfig,
  ListenerConfig,
  MatchConfig,
  PathMatchConfig,
  RewriteConfig,
  RouteConfig,
  StringMatchConfig,
  Timeouts,
  UpstreamConfig,
} from './types.ts';
import { parseDuration, parseSize } from './units.ts';
import { suggest } from './suggest.ts';
import { sniNames, sniUpstreamProblems } from './sni.ts';
import { parseCidr } from '../util/cidr.ts';
import { configPath, loadCa, loadCertificate, loadPem, type FileProblem } from './tls-files.ts';

export type KeyPath = ReadonlyArray<string | number>;

/** One thing wrong with a config. `found` is shown as written; `hint` is a "did you mean". */
export interface Problem {
  path: KeyPath;
  expected: string;
  found: string;
  hint?: string;
  /** Point at the key itself rather than its value (unknown keys). */
  atKey?: boolean;
}

export interface ResolveResult {
  config: GatewayConfig | undefined;
  problems: Problem[];
}

export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a map';
  return String(value);
}

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

function resolveTimeouts(raw: RawTimeouts | undefined, base: Timeouts): Timeouts {
  return {
    connect: raw?.connect !== undefined ? parseDuration(raw.connect) : base.connect,
    responseHeaders: raw?.responseHeaders !== undefined ? parseDuration(raw.responseHeaders) : base.responseHeaders,
    bodyIdle: raw?.bodyIdle !== undefined ? parseDuration(raw.bodyIdle) : base.bodyIdle,
    request: raw?.request !== undefined ? parseDuration(raw.request) : base.request,
    tunnelIdle: raw?.tunnelIdle !== undefined ? parseDuration(raw.tunnelIdle) : base.tunnelIdle,
  };
}

function partialTimeouts(raw: RawTimeouts | undefined): Partial<Timeouts> {
  const out: Partial<Timeouts> = {};
  if (!raw) return out;
  for (const key of ['connect', 'responseHeaders', 'bodyIdle', 'request', 'tunnelIdle'] as const) {
    const v = raw[key];
    if (v !== undefined) out[key] = parseDuration(v);
  }
  return out;
}

function checkRegex(source: string, path: KeyPath, problems: Problem[]): void {
  try {
    new RegExp(source);
  } catch (err) {
    problems.push({ path, expected: 'a valid regular expression', found: `${JSON.stringify(source)} (${(err as Error).message})` });
  }
}

function stringMatch(raw: RawStringMatch, path: KeyPath, problems: Problem[]): StringMatchConfig {
  if (typeof raw === 'string') return { kind: 'exact', value: raw };
  if ('exact' in raw) return { kind: 'exact', value: raw.exact };
  if ('regex' in raw) {
    checkRegex(raw.regex, [...path, 'regex'], problems);
    return { kind: 'regex', value: raw.regex };
  }
  return { kind: 'present', value: raw.present };
}

function pathMatch(raw: RawPathMatch, path: KeyPath, problems: Problem[]): PathMatchConfig {
  if (typeof raw === 'string') {
    if (!raw.startsWith('/')) problems.push({ path, expected: 'a path starting with "/"', found: show(raw) });
    return { kind: 'prefix', value: raw };
  }
  if ('regex' in raw) {
    checkRegex(raw.regex, [...path, 'regex'], problems);
    return { kind: 'regex', value: raw.regex };
  }
  const kind = 'prefix' in raw ? 'prefix' : 'exact';
  const value = 'prefix' in raw ? raw.prefix : raw.exact;
  if (!value.startsWith('/')) problems.push({ path: [...path, kind], expected: 'a path starting with "/"', found: show(value) });
  return { kind, value };
}

const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/;

function fileProblem(at: KeyPath, p: FileProblem, problems: Problem[]): void {
  problems.push({ path: [...at, p.key], expected: p.expected, found: p.found });
}

function listenerTls(raw: RawListenerTls, at: KeyPath, baseDir: string, problems: Problem[]): ListenerTlsConfig {
  const d = defaults.listener.tls;
  const certificates: ListenerTlsConfig['certificates'] = [];
  raw.certificates.forEach((c, i) => {
    const certFile = configPath(baseDir, c.cert);
    const keyFile = configPath(baseDir, c.key);
    const loaded = loadCertificate(certFile, keyFile);
    if (!loaded.ok) return fileProblem([...at, 'certificates', i], loaded.problem, problems);
    certificates.push({ certFile, keyFile, ...loaded.value });
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

function hstsValue(raw: RawListener['hsts']): string | undefined {
  if (raw === undefined) return undefined;
  const d = defaults.listener.hsts;
  let v = `max-age=${Math.floor(parseDuration(raw.maxAge ?? d.maxAge) / 1000)}`;
  if (raw.includeSubDomains ?? d.includeSubDomains) v += '; includeSubDomains';
  if (raw.preload ?? d.preload) v += '; preload';
  return v;
}

/** The listener keys that only fit one protocol, checked against the listener's. */
function listenerProtocolProblems(name: string, l: RawListener, problems: Problem[]): void {
  const at = ['listeners', name];
  if (l.udp !== undefined && l.protocol !== 'udp') problems.push({ path: [...at, 'udp'], expected: `no udp settings on a ${l.protocol} listener (protocol: udp only)`, found: 'a map' });
  if (l.sni !== undefined && l.protocol !== 'tls-passthrough') problems.push({ path: [...at, 'sni'], expected: `no sni on a ${l.protocol} listener (protocol: tls-passthrough only)`, found: 'a map' });
  if (l.protocol === 'tls-passthrough') {
    if (l.upstream === undefined && l.sni === undefined) problems.push({ path: [...at, 'sni'], expected: 'server names to route by, or an upstream for every connection (a tls-passthrough listener needs sni or upstream)', found: 'nothing' });
    for (const key of ['tls', 'h2c', 'http2', 'httpsRedirect', 'hsts'] as const) {
      if (l[key] !== undefined) problems.push({ path: [...at, key], expected: `no ${key} on a tls-passthrough listener (TLS passes through it to the endpoints)`, found: show(l[key]) });
    }
    return;
  }
  if (l.protocol === 'udp') {
    if (l.upstream === undefined) problems.push({ path: [...at, 'upstream'], expected: 'the upstream a udp listener forwards to', found: 'nothing' });
    for (const key of ['tls', 'h2c', 'http2', 'httpsRedirect', 'hsts', 'proxyProtocol'] as const) {
      if (l[key] !== undefined) problems.push({ path: [...at, key], expected: `no ${key} on a udp listener (it has no connections, and does not speak HTTP)`, found: show(l[key]) });
    }
    return;
  }
  if (l.protocol === 'tcp' || l.protocol === 'tls') {
    if (l.upstream === undefined) problems.push({ path: [...at, 'upstream'], expected: `the upstream a ${l.protocol} listener forwards to`, found: 'nothing' });
    if (l.protocol === 'tls' && l.tls === undefined) problems.push({ path: [...at, 'tls'], expected: 'TLS settings with at least one certificate (a tls listener needs them)', found: 'nothing' });
    for (const key of [...(l.protocol === 'tcp' ? (['tls'] as const) : []), 'h2c', 'http2', 'httpsRedirect', 'hsts'] as const) {
      if (l[key] !== undefined) problems.push({ path: [...at, key], expected: `no ${key} on a ${l.protocol} listener (it does not speak HTTP)`, found: show(l[key]) });
    }
    return;
  }
  if (l.upstream !== undefined) problems.push({ path: [...at, 'upstream'], expected: `no upstream on an ${l.protocol} listener (routes choose its upstreams)`, found: show(l.upstream) });
  if (l.protocol === 'https') {
    if (l.tls === undefined) problems.push({ path: [...at, 'tls'], expected: 'TLS settings with at least one certificate (an https listener needs them)', found: 'nothing' });
    if (l.h2c !== undefined) problems.push({ path: [...at, 'h2c'], expected: 'no h2c on an https listener (HTTP/2 is offered by ALPN; see tls.alpn)', found: show(l.h2c) });
    if (l.httpsRedirect !== undefined) problems.push({ path: [...at, 'httpsRedirect'], expected: 'no httpsRedirect on an https listener', found: show(l.httpsRedirect) });
  } else {
    if (l.tls !== undefined) problems.push({ path: [...at, 'tls'], expected: 'no tls on an http listener (use protocol: https)', found: 'a map' });
    if (l.hsts !== undefined) problems.push({ path: [...at, 'hsts'], expected: 'no hsts on an http listener (browsers ignore it over plain http)', found: 'a map' });
  }
}

function endpointConfig(url: string, weight: number | undefined, path: KeyPath, problems: Problem[]): EndpointConfig | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    problems.push({ path: [...path, 'url'], expected: 'a URL such as "http://127.0.0.1:9001"', found: show(url) });
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && parsed.protocol !== 'tcp:' && parsed.protocol !== 'udp:') {
    problems.push({ path: [...path, 'url'], expected: 'an http://, https://, tcp:// or udp:// URL', found: show(url) });
    return undefined;
  }
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search || parsed.hash || parsed.username || parsed.password) {
    problems.push({ path: [...path, 'url'], expected: 'an origin only (scheme, host, port), no path, query or credentials', found: show(url) });
    return undefined;
  }
  const scheme = parsed.protocol.slice(0, -1) as EndpointConfig['scheme'];
  if ((scheme === 'tcp' || scheme === 'udp') && parsed.port === '') {
    problems.push({ path: [...path, 'url'], expected: `a ${scheme}:// URL with a port, such as "${scheme}://127.0.0.1:${scheme === 'tcp' ? 5432 : 53}"`, found: show(url) });
    return undefined;
  }
  // tcp:// and udp:// URLs have no origin in the URL standard: build the same scheme://host:port form.
  const origin = scheme === 'tcp' || scheme === 'udp' ? `${scheme}://${parsed.host}` : parsed.origin;
  return { url, secure: scheme === 'https', scheme, origin, host: parsed.host, weight: weight ?? defaults.endpoint.weight };
}

/** `"200-399"`, `[200, "300-308"]` → inclusive ranges; problems for anything outside 100-599 or reversed. */
function statusRanges(raw: string | Array<number | string>, path: KeyPath, problems: Problem[]): Array<[number, number]> {
  const items = typeof raw === 'string' ? [raw] : raw;
  const out: Array<[number, number]> = [];
  items.forEach((item, i) => {
    const at = typeof raw === 'string' ? path : [...path, i];
    const m = typeof item === 'number' ? [String(item), String(item), undefined] : /^\s*(\d{3})\s*(?:-\s*(\d{3}))?\s*$/.exec(item);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!(lo >= 100 && hi <= 599 && lo <= hi)) {
      problems.push({ path: at, expected: 'a status (100-599) or a range such as "200-399"', found: show(item) });
      return;
    }
    out.push([lo, hi]);
  });
  return out;
}

function hashKey(raw: string): HashKeyConfig {
  if (raw === 'path') return { kind: 'path' };
  const colon = raw.indexOf(':');
  const kind = raw.slice(0, colon) as 'header' | 'cookie' | 'query';
  const name = raw.slice(colon + 1);
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

function healthCheckConfig(raw: RawHealthCheck, path: KeyPath, problems: Problem[]): HealthCheckConfig {
  const d = defaults.upstream.healthCheck;
  const interval = parseDuration(raw.interval ?? d.interval);
  const timeout = parseDuration(raw.timeout ?? d.timeout);
  const checkPath = raw.path ?? d.path;
  if (interval === 0) problems.push({ path: [...path, 'interval'], expected: 'a duration above 0', found: '0' });
  if (timeout === 0) problems.push({ path: [...path, 'timeout'], expected: 'a duration above 0', found: '0' });
  if (!checkPath.startsWith('/')) problems.push({ path: [...path, 'path'], expected: 'a path starting with "/"', found: show(checkPath) });
  return {
    type: raw.type ?? d.type,
    method: raw.method ?? d.method,
    path: checkPath,
    host: raw.host,
    statuses: statusRanges(raw.statuses ?? d.statuses, [...path, 'statuses'], problems),
    bodyContains: raw.bodyContains,
    interval,
    timeout,
    jitter: raw.jitter !== undefined ? parseDuration(raw.jitter) : Math.round(interval / 10),
    rise: raw.rise ?? d.rise,
    fall: raw.fall ?? d.fall,
    initialState: raw.initialState ?? d.initialState,
  };
}

function upstreamTls(raw: RawUpstream['tls'], at: KeyPath, baseDir: string, problems: Problem[]): UpstreamConfig['tls'] {
  const d = defaults.upstream.tls;
  const pem = (file: string | undefined, key: 'ca' | 'cert' | 'key'): string | undefined => {
    if (file === undefined) return undefined;
    const r = key === 'ca' ? loadCa(configPath(baseDir, file)) : loadPem(configPath(baseDir, file), key);
    if (r.ok) return r.value;
    fileProblem(at, { ...r.problem, key }, problems);
    return undefined;
  };
  if ((raw?.cert === undefined) !== (raw?.key === undefined)) {
    const missing = raw?.cert === undefined ? 'cert' : 'key';
    problems.push({ path: [...at, missing], expected: `a ${missing} file too (a client certificate needs both cert and key)`, found: 'nothing' });
  }
  return {
    ca: pem(raw?.ca, 'ca'),
    serverName: raw?.serverName,
    cert: pem(raw?.cert, 'cert'),
    key: pem(raw?.key, 'key'),
    minVersion: raw?.minVersion ?? d.minVersion,
    insecureSkipVerify: raw?.insecureSkipVerify ?? d.insecureSkipVerify,
  };
}

function resolveUpstream(name: string, u: RawUpstream, endpoints: EndpointConfig[], baseTimeouts: Timeouts, baseDir: string, problems: Problem[]): UpstreamConfig {
  const at = ['upstreams', name];
  const d = defaults.upstream;
  const protocol = u.protocol ?? d.protocol;
  u.endpoints.forEach((e, i) => {
    const ep = endpoints.find((x) => x.url === e.url);
    if (ep === undefined) return;
    if (protocol === 'h2' && !ep.secure) {
      problems.push({ path: [...at, 'endpoints', i, 'url'], expected: 'an https:// URL (protocol h2 is HTTP/2 over TLS; use h2c for cleartext)', found: show(e.url) });
    } else if (protocol === 'h2c' && ep.secure) {
      problems.push({ path: [...at, 'endpoints', i, 'url'], expected: 'an http:// URL (protocol h2c is cleartext; use h2 for TLS)', found: show(e.url) });
    }
  });
  if (u.tls !== undefined && !endpoints.some((e) => e.secure)) {
    problems.push({ path: [...at, 'tls'], expected: 'https:// endpoints (tls applies only to them)', found: 'only http:// endpoints' });
  }
  const balancer = u.balancer ?? d.balancer;
  if (balancer === 'consistent-hash' && u.hashKey === undefined) {
    problems.push({ path: [...at, 'hashKey'], expected: 'a key for consistent-hash: header:NAME, cookie:NAME, query:NAME or path', found: 'nothing' });
  }
  if (balancer !== 'consistent-hash' && u.hashKey !== undefined) {
    problems.push({ path: [...at, 'hashKey'], expected: `no hashKey (it is used by balancer consistent-hash, this upstream uses ${balancer})`, found: show(u.hashKey) });
  }
  const od = u.outlierDetection ?? {};
  const outlier = {
    consecutiveFailures: od.consecutiveFailures ?? d.outlierDetection.consecutiveFailures,
    baseEjectionTime: parseDuration(od.baseEjectionTime ?? d.outlierDetection.baseEjectionTime),
    maxEjectionTime: parseDuration(od.maxEjectionTime ?? d.outlierDetection.maxEjectionTime),
    maxEjectedPercent: od.maxEjectedPercent ?? d.outlierDetection.maxEjectedPercent,
  };
  if (outlier.maxEjectionTime < outlier.baseEjectionTime) {
    problems.push({
      path: [...at, 'outlierDetection', 'maxEjectionTime'],
      expected: `at least the baseEjectionTime (${od.baseEjectionTime ?? d.outlierDetection.baseEjectionTime})`,
      found: show(od.maxEjectionTime ?? d.outlierDetection.maxEjectionTime),
    });
  }
  const cb = u.circuitBreaker ?? {};
  const r = u.retries ?? {};
  const retryOn = r.retryOn ?? d.retries.retryOn;
  const st = u.sticky;
  return {
    name,
    protocol,
    tls: upstreamTls(u.tls, [...at, 'tls'], baseDir, problems),
    proxyProtocol: u.proxyProtocol,
    balancer,
    hashKey: u.hashKey === undefined ? undefined : hashKey(u.hashKey),
    hashTable: u.hashTable ?? d.hashTable,
    sticky:
      st === undefined
        ? undefined
        : {
            cookie: st.cookie,
            ttl: parseDuration(st.ttl ?? d.sticky.ttl),
            path: st.path ?? d.sticky.path,
            secure: st.secure ?? d.sticky.secure,
            sameSite: st.sameSite ?? d.sticky.sameSite,
          },
    slowStart: parseDuration(u.slowStart ?? d.slowStart),
    healthCheck: u.healthCheck === undefined ? undefined : healthCheckConfig(u.healthCheck, [...at, 'healthCheck'], problems),
    outlier,
    panicThreshold: u.panicThreshold ?? d.panicThreshold,
    circuitBreaker: {
      maxRequests: cb.maxRequests ?? d.circuitBreaker.maxRequests,
      maxQueued: cb.maxQueued ?? d.circuitBreaker.maxQueued,
      queueTimeout: parseDuration(cb.queueTimeout ?? d.circuitBreaker.queueTimeout),
    },
    retries: {
      attempts: r.attempts ?? d.retries.attempts,
      perTryTimeout: parseDuration(r.perTryTimeout ?? d.retries.perTryTimeout),
      onReset: retryOn.includes('reset'),
      onTimeout: retryOn.includes('timeout'),
      statuses: r.statuses ?? [...d.retries.statuses],
      budgetPercent: r.budget?.percent ?? d.retries.budget.percent,
      budgetMinConcurrent: r.budget?.minConcurrent ?? d.retries.budget.minConcurrent,
    },
    endpoints,
    timeouts: resolveTimeouts(u.timeouts, baseTimeouts),
    hostHeader: u.hostHeader ?? d.hostHeader,
    connectionsPerEndpoint: u.connectionsPerEndpoint ?? d.connectionsPerEndpoint,
    keepAliveTimeout: parseDuration(u.keepAliveTimeout ?? d.keepAliveTimeout),
  };
}

/**
 * Applies defaults and checks everything the schema cannot. Never throws on a schema-valid config.
 * Reads the TLS files the config names (relative to `baseDir`, the config file's directory).
 */
export function resolve(raw: RawConfig, baseDir = process.cwd()): ResolveResult {
  const problems: Problem[] = [];
  const baseTimeouts = resolveTimeouts(defaults.upstream.timeouts, {
    connect: 0,
    responseHeaders: 0,
    bodyIdle: 0,
    request: 0,
    tunnelIdle: 0,
  });

  const listeners: ListenerConfig[] = [];
  const seenAddresses = new Map<string, string>();
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
        l.proxyProtocol === undefined ? undefined : { trusted: l.proxyProtocol.trusted, timeout: parseDuration(l.proxyProtocol.timeout ?? defaults.listener.proxyProtocol.timeout) },
      tls: (l.protocol === 'https' || l.protocol === 'tls') && l.tls !== undefined ? listenerTls(l.tls, ['listeners', name, 'tls'], baseDir, problems) : undefined,
      h2c: l.h2c ?? defaults.listener.h2c,
      http2: http2Config(l.http2),
      httpsRedirect:
        l.httpsRedirect === undefined || l.httpsRedirect === false
          ? undefined
          : { port: (l.httpsRedirect === true ? undefined : l.httpsRedirect.port) ?? defaults.listener.httpsRedirect.port },
      hsts: l.protocol === 'https' ? hstsValue(l.hsts) : undefined,
      trustedProxies,
      headerTimeout,
      requestTimeout,
      sendTimeout: parseDuration(l.sendTimeout ?? defaults.listener.sendTimeout),
      keepAliveTimeout: parseDuration(l.keepAliveTimeout ?? defaults.listener.keepAliveTimeout),
      maxHeaderSize: parseSize(l.maxHeaderSize ?? defaults.listener.maxHeaderSize),
      maxConnections: l.maxConnections ?? defaults.listener.maxConnections,
      maxConnectionsPerClient: l.maxConnectionsPerClient ?? defaults.listener.maxConnectionsPerClient,
      maxRequestsPerConnection: l.maxRequestsPerConnection ?? defaults.listener.maxRequestsPerConnection,
      headersWithUnderscores: l.headersWithUnderscores ?? defaults.listener.headersWithUnderscores,
    });
  }
  listeners.forEach((l) => {
    if (l.headerTimeout === 0) problems.push({ path: ['listeners', l.name, 'headerTimeout'], expected: 'a duration above 0 (the slowloris guard cannot be off)', found: '0' });
  });

  const upstreams = new Map<string, UpstreamConfig>();
  for (const [name, u] of Object.entries(raw.upstreams ?? {})) {
    const endpoints: EndpointConfig[] = [];
    const seen = new Set<string>();
    u.endpoints.forEach((e, i) => {
      const ep = endpointConfig(e.url, e.weight, ['upstreams', name, 'endpoints', i], problems);
      if (!ep) return;
      if (seen.has(ep.origin)) {
        problems.push({ path: ['upstreams', name, 'endpoints', i, 'url'], expected: 'each endpoint once', found: `${show(e.url)} again` });
      }
      seen.add(ep.origin);
      endpoints.push(ep);
    });
    upstreams.set(name, resolveUpstream(name, u, endpoints, baseTimeouts, baseDir, problems));
  }

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
      problems.push({ path: ['listeners', l.name, 'upstream'], expected: `an upstream with ${wanted}:// endpoints (upstream "${u.name}" has ${has} ones)`, found: show(l.upstream) });
    }
  }
  for (const [name, u] of upstreams) {
    if (u.proxyProtocol !== undefined && u.endpoints.some((e) => e.scheme !== 'tcp')) {
      problems.push({ path: ['upstreams', name, 'proxyProtocol'], expected: 'tcp:// endpoints (the PROXY protocol is sent to layer 4 endpoints only, for now)', found: show(u.proxyProtocol) });
    }
    // Layer 4 upstreams are all tcp:// or all udp://.
    const l4 = u.endpoints.find((e) => e.scheme === 'tcp' || e.scheme === 'udp')?.scheme;
    const i = l4 === undefined ? -1 : u.endpoints.findIndex((e) => e.scheme !== l4);
    if (i >= 0) {
      problems.push({ path: ['upstreams', name, 'endpoints', i, 'url'], expected: `a ${l4}:// URL like the other endpoints of this upstream`, found: show(u.endpoints[i].url) });
    }
  }
  const tcpListeners = new Set(listeners.filter((l) => l.protocol === 'tcp' || l.protocol === 'tls' || l.protocol === 'tls-passthrough' || l.protocol === 'udp').map((l) => l.name));
  const listenerNames = Object.keys(raw.listeners);
  const upstreamNames = [...upstreams.keys()];
  const routes: RouteConfig[] = [];
  let order = 0;
  for (const [name, r] of Object.entries(raw.routes ?? {})) {
    const at = ['routes', name];
    if (!upstreams.has(r.upstream)) {
      problems.push({
        path: [...at, 'upstream'],
        expected: upstreamNames.length ? `the name of an upstream (one of: ${upstreamNames.join(', ')})` : 'the name of an upstream (none are defined)',
        found: show(r.upstream),
        hint: suggest(r.upstream, upstreamNames),
      });
    }
    const routed = upstreams.get(r.upstream);
    const l4 = routed?.endpoints.find((e) => e.scheme === 'tcp' || e.scheme === 'udp')?.scheme;
    if (l4 !== undefined) {
      problems.push({ path: [...at, 'upstream'], expected: `an upstream with http(s) endpoints (upstream "${r.upstream}" has ${l4}:// ones, for ${l4} listeners)`, found: show(r.upstream) });
    }
    r.listeners?.forEach((l, i) => {
      if (tcpListeners.has(l)) {
        problems.push({ path: [...at, 'listeners', i], expected: 'an http or https listener (routes do not apply to tcp, tls, tls-passthrough and udp listeners)', found: show(l) });
      } else if (!listenerNames.includes(l)) {
        problems.push({
          path: [...at, 'listeners', i],
          expected: `the name of a listener (one of: ${listenerNames.join(', ')})`,
          found: show(l),
          hint: suggest(l, listenerNames),
        });
      }
    });
    const m = r.match ?? {};
    const hosts = m.host === undefined ? [] : Array.isArray(m.host) ? m.host : [m.host];
    hosts.forEach((h, i) => {
      const lower = h.toLowerCase();
      if (!HOST_PATTERN.test(lower)) {
        problems.push({ path: Array.isArray(m.host) ? [...at, 'match', 'host', i] : [...at, 'match', 'host'], expected: 'a host name, "*.domain" wildcard or [IPv6], with an optional :port', found: show(h) });
      }
    });
    const match: MatchConfig = {
      hosts: hosts.map((h) => h.toLowerCase()),
      path: m.path === undefined ? undefined : pathMatch(m.path, [...at, 'match', 'path'], problems),
      methods: m.methods,
      headers: Object.entries(m.headers ?? {}).map(([k, v]) => [k.toLowerCase(), stringMatch(v, [...at, 'match', 'headers', k], problems)]),
      query: Object.entries(m.query ?? {}).map(([k, v]) => [k, stringMatch(v, [...at, 'match', 'query', k], problems)]),
    };
    let rewrite: RewriteConfig | undefined;
    if (r.rewrite?.stripPrefix !== undefined && r.rewrite.replacePrefix !== undefined) {
      problems.push({ path: [...at, 'rewrite'], expected: 'either stripPrefix or replacePrefix, not both', found: 'both' });
    } else if (r.rewrite?.stripPrefix !== undefined) {
      rewrite = { kind: 'strip', prefix: r.rewrite.stripPrefix };
    } else if (r.rewrite?.replacePrefix !== undefined) {
      rewrite = { kind: 'replace', from: r.rewrite.replacePrefix.from, to: r.rewrite.replacePrefix.to };
    }
    if (rewrite) {
      const first = rewrite.kind === 'strip' ? rewrite.prefix : rewrite.from;
      const keyPath = rewrite.kind === 'strip' ? [...at, 'rewrite', 'stripPrefix'] : [...at, 'rewrite', 'replacePrefix', 'from'];
      if (!first.startsWith('/')) problems.push({ path: keyPath, expected: 'a path starting with "/"', found: show(first) });
      if (rewrite.kind === 'replace' && !rewrite.to.startsWith('/')) {
        problems.push({ path: [...at, 'rewrite', 'replacePrefix', 'to'], expected: 'a path starting with "/"', found: show(rewrite.to) });
      }
    }
    routes.push({
      name,
      listeners: r.listeners,
      match,
      upstream: r.upstream,
      priority: r.priority ?? defaults.route.priority,
      rewrite,
      timeouts: partialTimeouts(r.timeouts),
      maxBodySize: parseSize(r.maxBodySize ?? defaults.route.maxBodySize),
      order: order++,
    });
  }

  const config: GatewayConfig = {
    listeners,
    routes,
    upstreams,
    drainTimeout: parseDuration(raw.drainTimeout ?? defaults.drainTimeout),
  };
  return { config: problems.length ? undefined : config, problems };
}
