/**
 * The resolved configuration: what the runtime is built from. Durations are milliseconds, sizes are
 * bytes, defaults are applied and every name is known to refer to something that exists.
 */
import type { ZodObject } from 'zod';
import type { ConsumerDirectory, PolicyType } from '../policies/filter.ts';
import type { BalancerName } from './balancer-names.ts';

export interface Timeouts {
  /** ms to open a connection to an endpoint. */
  connect: number;
  /** ms from the request being sent to the response headers arriving. */
  responseHeaders: number;
  /** ms of silence allowed between two response body chunks. */
  bodyIdle: number;
  /** ms for the whole exchange; 0 = no limit. */
  request: number;
  /** ms of silence (both directions) before an upgraded connection is closed; 0 = no limit. */
  tunnelIdle: number;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** A certificate and key as read (and checked) at config load. */
export interface CertificateConfig {
  /** Absolute paths, watched for changes. */
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  /** Lower-cased DNS names (`*.example.com` wildcards included) from the SAN, else the CN. */
  names: string[];
}

export interface ClientCertificateConfig {
  caFile: string;
  ca: string;
  required: boolean;
  /** Lower-cased request header names. */
  subjectHeader: string;
  fingerprintHeader: string;
}

export interface ListenerTlsConfig {
  certificates: CertificateConfig[];
  strictSni: boolean;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  ciphers: string | undefined;
  sessionTickets: boolean;
  /** ms. */
  sessionTimeout: number;
  alpn: Array<'h2' | 'http/1.1'>;
  clientCertificate: ClientCertificateConfig | undefined;
}

export interface Http2Config {
  maxConcurrentStreams: number;
  initialWindowSize: number;
  connectionWindowSize: number;
  /** Client stream resets allowed per resetWindow before GOAWAY. */
  maxResets: number;
  /** ms. */
  resetWindow: number;
}

/** Sessions of a udp listener. */
export interface UdpListenerConfig {
  /** ms without a datagram either way after which a session ends. */
  sessionIdle: number;
  /** Sessions open at once; new clients' datagrams past it are dropped. */
  maxSessions: number;
}

export interface ListenerConfig {
  name: string;
  address: ListenAddress;
  protocol: 'http' | 'https' | 'tcp' | 'tls' | 'tls-passthrough' | 'udp' | 'forward' | 'socks5';
  /** tcp, tls and udp listeners: the upstream connections (sessions) go to. tls-passthrough: the one when no `sni` entry matches. */
  upstream: string | undefined;
  /** tls-passthrough listeners only: lower-cased server name (or `*.` wildcard) to upstream name. */
  sni: ReadonlyMap<string, string> | undefined;
  /** udp listeners only: session settings. */
  udp: UdpListenerConfig | undefined;
  /** Accept the PROXY protocol from these peers (and only them); ms for the header to arrive. */
  proxyProtocol: { trusted: string[]; timeout: number } | undefined;
  /** Bind with SO_REUSEPORT: other processes may share the address (listeners/bind.ts). */
  reusePort: boolean;
  /** https and tls listeners. */
  tls: ListenerTlsConfig | undefined;
  /** http only: HTTP/2 with prior knowledge on the same port. */
  h2c: boolean;
  http2: Http2Config;
  /** http only: redirect everything to https on this port. */
  httpsRedirect: { port: number } | undefined;
  /** The Strict-Transport-Security value to add (https only), or undefined. */
  hsts: string | undefined;
  trustedProxies: string[];
  headerTimeout: number;
  /** ms to receive the whole request; 0 = no limit. */
  requestTimeout: number;
  /** ms a client may stall reading a response; 0 = no limit. */
  sendTimeout: number;
  /** ms an async policy hook may take before its request gets 503 POLICY_TIMEOUT. */
  policyTimeout: number;
  keepAliveTimeout: number;
  maxHeaderSize: number;
  /** Open connections at once; 0 = no limit. */
  maxConnections: number;
  /** Open connections per client address; 0 = no limit. */
  maxConnectionsPerClient: number;
  maxRequestsPerConnection: number;
  headersWithUnderscores: 'allow' | 'drop' | 'reject';
  /** http and https listeners: names of the policies run before routing, in order. */
  policies: string[];
  /** forward and socks5 listeners: the forward-proxy settings (defaults applied); undefined on the others. */
  forward: ForwardConfig | undefined;
}

/** A port range, both ends included. */
export interface PortRange {
  from: number;
  to: number;
}

/** One access rule of a forward listener, as written (checked); compiled by forward/rules.ts. */
export interface ForwardRuleConfig {
  /** `name`, or `rules[i]`. */
  name: string;
  action: 'allow' | 'deny';
  clients: string[] | undefined;
  consumers: string[] | undefined;
  groups: string[] | undefined;
  /** Exact names, `*.suffix` and `~regex` entries, lower-cased, with the names read from `domainFiles` appended. */
  domains: string[] | undefined;
  destinations: string[] | undefined;
  ports: PortRange[] | undefined;
  /** Upper-cased. */
  methods: string[] | undefined;
  schemes: Array<'http' | 'https' | 'udp'> | undefined;
  /** Minutes since midnight; `to` < `from` crosses midnight. Days 0 = Sunday … 6 = Saturday. */
  time: { from: number; to: number; days: number[]; utc: boolean } | undefined;
}

/** One parent proxy of an entry, its `url` checked and taken apart. */
export interface ForwardParentProxy {
  /** `http` (asked with CONNECT) or `socks5` (RFC 1928 CONNECT). */
  protocol: 'http' | 'socks5';
  /** Name or IP literal (IPv6 without brackets), as the URL gives it. */
  host: string;
  port: number;
  /** `protocol://host:port`, never with credentials: what logs and metrics name it by. */
  label: string;
  /** Percent-decoded userinfo, or undefined when the URL has none (sent as Basic or RFC 1929). */
  username: string | undefined;
  password: string | undefined;
}

/** One parent proxy entry. */
export interface ForwardParentConfig {
  /** The entry's `url`s, in order; several are balanced. Never empty. */
  proxies: ForwardParentProxy[];
  /** Domain patterns as in rules (exact and `*.suffix` lower-cased, `~regex` as written); empty = every destination. */
  domains: string[];
  balance: BalancerName;
  /** Active checks of each of `proxies` (always `type: tcp`); undefined: passive checks only. */
  healthCheck: HealthCheckConfig | undefined;
}

/** A forward (or socks5) listener's settings, defaults applied. */
export interface ForwardConfig {
  rules: ForwardRuleConfig[];
  safePorts: PortRange[];
  connectPorts: PortRange[];
  connectToHttp: boolean;
  anonymity: 'transparent' | 'anonymous' | 'elite';
  /** The Via pseudonym, or undefined for none. */
  via: string | undefined;
  /** DNS servers (`ip` or `ip:port`); empty = the system resolver. */
  resolverServers: string[];
  /** ms. */
  resolverTimeout: number;
  /** ms an answer may be reused at most (capped by its TTL); 0 = resolve on every request. */
  resolverMaxTtl: number;
  /** ms. */
  connectTimeout: number;
  /** ms; 0 = never. */
  tunnelIdleTimeout: number;
  parents: ForwardParentConfig[];
  /**
   * Serve /proxy.pac; `proxy` is the PROXY host:port it names, or undefined for the listener as
   * reached; `direct` the names (`name`, `*.name`, lower-cased, checked as host names) browsers reach direct.
   */
  pac: { proxy: string | undefined; direct: string[] } | undefined;
  /** socks5 listeners without authentication: serve on a non-loopback address too. */
  allowUnauthenticated: boolean;
}

export type StringMatchConfig = { kind: 'exact'; value: string } | { kind: 'regex'; value: string } | { kind: 'present'; value: boolean };

export interface PathMatchConfig {
  kind: 'prefix' | 'exact' | 'regex';
  value: string;
}

export interface MatchConfig {
  /** Lower-cased host patterns; empty = any host. */
  hosts: string[];
  path: PathMatchConfig | undefined;
  methods: string[] | undefined;
  /** Header names lower-cased. */
  headers: Array<[name: string, match: StringMatchConfig]>;
  query: Array<[name: string, match: StringMatchConfig]>;
}

export type RewriteConfig = { kind: 'strip'; prefix: string } | { kind: 'replace'; from: string; to: string };

export interface RouteConfig {
  name: string;
  /** Listener names; undefined = every http listener. */
  listeners: string[] | undefined;
  match: MatchConfig;
  /** Undefined for a route whose policies answer every request. */
  upstream: string | undefined;
  /** Names of the route's policies, in order. */
  policies: string[];
  priority: number;
  rewrite: RewriteConfig | undefined;
  /** Only the timeouts this route overrides. */
  timeouts: Partial<Timeouts>;
  /** Bytes; 0 = no limit. */
  maxBodySize: number;
  /** Position in the config, the last tie-breaker between equally specific routes. */
  order: number;
  /** Files served from a directory instead of an upstream (http/static-site.ts); undefined for other routes. */
  static?: StaticConfig | undefined;
}

/** A route's `static` section, resolved (docs/static.md). */
export interface StaticConfig {
  /** Absolute path of the directory, as the config names it (symbolic links not yet resolved). */
  root: string;
  /** File names tried for a path ending in `/`; empty: none. */
  index: string[];
  /** Remove the route's path prefix before the lookup (no effect with a route rewrite). */
  stripPrefix: boolean;
  precompressed: boolean;
  followSymlinks: boolean;
  dotfiles: boolean;
  /** In order; the first match applies. */
  cacheControl: Array<{ match: string; value: string }>;
}

export interface EndpointConfig {
  url: string;
  /** Whether the endpoint speaks TLS (an https:// URL). */
  secure: boolean;
  /** The URL scheme: http and https for HTTP upstreams, tcp for tcp listeners', udp for udp listeners'. */
  scheme: 'http' | 'https' | 'tcp' | 'udp';
  /** `http(s)://host:port`, the key of its connection pool. */
  origin: string;
  /** `host:port` as sent in Host when the upstream's hostHeader is `endpoint`. */
  host: string;
  weight: number;
}

export type HashKeyConfig = { kind: 'header'; name: string } | { kind: 'cookie'; name: string } | { kind: 'query'; name: string } | { kind: 'path' };

export interface HealthCheckConfig {
  type: 'http' | 'tcp';
  /** HTTP method, upper case. */
  method: string;
  /** Path plus optional query, starting with '/'. */
  path: string;
  /** Host header to send; undefined = the endpoint's host:port. */
  host: string | undefined;
  /** Accepted status ranges, inclusive. */
  statuses: Array<[number, number]>;
  /** When set, the response body must contain this substring. */
  bodyContains: string | undefined;
  /** ms between the end of one check and the start of the next. */
  interval: number;
  /** ms a single check may take. */
  timeout: number;
  /** ms of random extra delay added to each interval, uniformly in [0, jitter]. */
  jitter: number;
  rise: number;
  fall: number;
  initialState: 'healthy' | 'unhealthy';
}

export interface OutlierConfig {
  /** 0 = outlier detection off. */
  consecutiveFailures: number;
  baseEjectionTime: number;
  maxEjectionTime: number;
  maxEjectedPercent: number;
}

export interface CircuitBreakerConfig {
  /** 0 = no limit. */
  maxRequests: number;
  maxQueued: number;
  queueTimeout: number;
}

export interface RetryConfig {
  /** Tries per request, the first included. */
  attempts: number;
  /** ms; 0 = none. */
  perTryTimeout: number;
  onReset: boolean;
  onTimeout: boolean;
  statuses: number[];
  /** Bodies up to this many bytes are kept so a retry can send them again; 0 = never. */
  bodyBuffer: number;
  /** Retry non-idempotent methods after the request was sent. */
  nonIdempotent: boolean;
  budgetPercent: number;
  budgetMinConcurrent: number;
}

export interface StickyConfig {
  cookie: string;
  /** ms; 0 = session cookie. */
  ttl: number;
  path: string;
  secure: boolean;
  sameSite: 'Strict' | 'Lax' | 'None';
}

export interface UpstreamTlsConfig {
  /** PEM contents, read at config load; undefined = the system's CAs. */
  ca: string | undefined;
  serverName: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  insecureSkipVerify: boolean;
}

export interface UpstreamConfig {
  name: string;
  protocol: 'http1' | 'h2' | 'h2c';
  /** Used for https:// endpoints. */
  tls: UpstreamTlsConfig;
  /** Send a PROXY header to each endpoint connection (tcp:// endpoints). */
  proxyProtocol: 'v1' | 'v2' | undefined;
  balancer: BalancerName;
  /** consistent-hash: what is hashed. */
  hashKey: HashKeyConfig | undefined;
  hashTable: 'ring' | 'maglev';
  sticky: StickyConfig | undefined;
  /** ms; 0 = off. */
  slowStart: number;
  healthCheck: HealthCheckConfig | undefined;
  outlier: OutlierConfig;
  /** Percent; 0 = never panic. */
  panicThreshold: number;
  circuitBreaker: CircuitBreakerConfig;
  retries: RetryConfig;
  endpoints: EndpointConfig[];
  timeouts: Timeouts;
  hostHeader: 'preserve' | 'endpoint';
  connectionsPerEndpoint: number;
  keepAliveTimeout: number;
}

/** A named policy: its type's module, and its config as that module resolved it. */
export interface PolicyConfig {
  name: string;
  type: PolicyType<ZodObject, unknown>;
  config: unknown;
}

/** Where shared state lives (src/state/): `memory` per machine, `redis` per fleet. */
export interface StateConfig {
  backend: 'memory' | 'redis';
  /** Always resolved (defaults applied); used when `backend` is `redis`. */
  redis: RedisStateConfig;
}

export interface RedisStateConfig {
  /** `redis://` or `rediss://` (checked when the backend is redis); may hold credentials: never log it as is. */
  url: string;
  /** Prepended to every key. */
  prefix: string;
  /** ms to open a connection. */
  connectTimeout: number;
  /** ms an operation may wait for its answer. */
  commandTimeout: number;
}

/** OpenTelemetry traces (observability/tracing.ts); built per worker, each worker exporting its own spans. */
export interface TracingConfig {
  /** OTLP/HTTP traces URL (http: or https:). */
  endpoint: string;
  /** Sent with each export; may hold an API key: never log it. */
  headers: Record<string, string>;
  /** ms one export request may take. */
  timeout: number;
  /** Share of new traces sampled, 0 to 1 (parent-based). */
  sampleRate: number;
  serviceName: string;
  /** Peers whose traceparent/tracestate are continued; undefined: each listener's trustedProxies. */
  trust: string[] | undefined;
}

export interface GatewayConfig {
  listeners: ListenerConfig[];
  routes: RouteConfig[];
  upstreams: Map<string, UpstreamConfig>;
  policies: Map<string, PolicyConfig>;
  drainTimeout: number;
  /** Worker processes `switchboard start` runs ('auto' resolved to the core count); 1 = one process. */
  workers: number;
  /** Bytes of RSS past which a worker is drained and replaced; 0 = no limit. */
  workerMemoryLimit: number;
  /** Where shared state lives (state/): memory (the machine, through the supervisor) or redis (the fleet). */
  state: StateConfig;
  /** Prometheus metrics (observability/metrics.ts). */
  metrics: { enabled: boolean };
  /** OpenTelemetry traces; undefined when off. */
  tracing: TracingConfig | undefined;
  /** The admin listener (src/admin/); undefined when the config has no `admin` section. */
  admin: AdminConfig | undefined;
  /** The consumers and their credentials (hashes only), for the authentication policies; empty without a `consumers` section. */
  consumers: ConsumerDirectory;
}

/** The admin listener: never on a traffic listener's address; off loopback only with a token. */
export interface AdminConfig {
  address: ListenAddress;
  /** Bearer token for `/api` and `/metrics`: a credential, never logged nor shown by `/api/config`. */
  token: string | undefined;
}
