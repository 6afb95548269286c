/**
 * The upstreams section of resolve: endpoint URLs (each once, one kind per layer 4 upstream), the
 * protocol and TLS to the endpoints, the balancer and its hash key, health checks, outlier
 * detection, circuit breaker, retries, sticky sessions and timeouts, with their defaults applied.
 */
import { parseDuration, parseSize } from '../util/units.ts';
import { defaults } from './defaults.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { RawConfig } from './schema.ts';
import { configPath, fileProblem, loadCa, loadPem } from './tls-files.ts';
import type { EndpointConfig, HashKeyConfig, HealthCheckConfig, Timeouts, UpstreamConfig } from './types.ts';
import type { RawHealthCheck, RawTimeouts, RawUpstream } from './upstream-schema.ts';

function resolveTimeouts(raw: RawTimeouts | undefined, base: Timeouts): Timeouts {
  return {
    connect: raw?.connect !== undefined ? parseDuration(raw.connect) : base.connect,
    responseHeaders: raw?.responseHeaders !== undefined ? parseDuration(raw.responseHeaders) : base.responseHeaders,
    bodyIdle: raw?.bodyIdle !== undefined ? parseDuration(raw.bodyIdle) : base.bodyIdle,
    request: raw?.request !== undefined ? parseDuration(raw.request) : base.request,
    tunnelIdle: raw?.tunnelIdle !== undefined ? parseDuration(raw.tunnelIdle) : base.tunnelIdle,
  };
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
    problems.push({
      path: [...path, 'url'],
      expected: `a ${scheme}:// URL with a port, such as "${scheme}://127.0.0.1:${scheme === 'tcp' ? 5432 : 53}"`,
      found: show(url),
    });
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

/** An upstream's (or, with `type: tcp`, a parent proxy entry's) `healthCheck`, defaults applied. */
export function healthCheckConfig(raw: RawHealthCheck, path: KeyPath, problems: Problem[]): HealthCheckConfig {
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
      bodyBuffer: parseSize(r.bodyBuffer ?? d.retries.bodyBuffer),
      nonIdempotent: r.nonIdempotent ?? d.retries.nonIdempotent,
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
 * The upstreams by name, in the order written, each with its defaults applied and its endpoints
 * parsed (an endpoint whose URL does not parse is left out, and reported). Reads the TLS files,
 * relative to `baseDir`.
 */
export function resolveUpstreams(raw: RawConfig, baseDir: string, problems: Problem[]): Map<string, UpstreamConfig> {
  const baseTimeouts = resolveTimeouts(defaults.upstream.timeouts, {
    connect: 0,
    responseHeaders: 0,
    bodyIdle: 0,
    request: 0,
    tunnelIdle: 0,
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
  return upstreams;
}

/**
 * The checks of an upstream's endpoints as a whole: the PROXY protocol is sent to tcp:// endpoints
 * only, and a layer 4 upstream's endpoints are all tcp:// or all udp://.
 */
export function endpointSchemeProblems(upstreams: ReadonlyMap<string, UpstreamConfig>, problems: Problem[]): void {
  for (const [name, u] of upstreams) {
    if (u.proxyProtocol !== undefined && u.endpoints.some((e) => e.scheme !== 'tcp')) {
      problems.push({
        path: ['upstreams', name, 'proxyProtocol'],
        expected: 'tcp:// endpoints (the PROXY protocol is sent to layer 4 endpoints only, for now)',
        found: show(u.proxyProtocol),
      });
    }
    // Layer 4 upstreams are all tcp:// or all udp://.
    const l4 = u.endpoints.find((e) => e.scheme === 'tcp' || e.scheme === 'udp')?.scheme;
    const i = l4 === undefined ? -1 : u.endpoints.findIndex((e) => e.scheme !== l4);
    if (i >= 0) {
      problems.push({
        path: ['upstreams', name, 'endpoints', i, 'url'],
        expected: `a ${l4}:// URL like the other endpoints of this upstream`,
        found: show(u.endpoints[i].url),
      });
    }
  }
}
