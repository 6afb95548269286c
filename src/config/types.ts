/**
 * The resolved configuration: what the runtime is built from. Durations are milliseconds, sizes are
 * bytes, defaults are applied and every name is known to refer to something that exists.
 */

export interface Timeouts {
  /** ms to open a connection to an endpoint. */
  connect: number;
  /** ms from the request being sent to the response headers arriving. */
  responseHeaders: number;
  /** ms of silence allowed between two response body chunks. */
  bodyIdle: number;
  /** ms for the whole exchange; 0 = no limit. */
  request: number;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ListenerConfig {
  name: string;
  address: ListenAddress;
  protocol: 'http';
  trustedProxies: string[];
  headerTimeout: number;
  /** ms to receive the whole request; 0 = no limit. */
  requestTimeout: number;
  /** ms a client may stall reading a response; 0 = no limit. */
  sendTimeout: number;
  keepAliveTimeout: number;
  maxHeaderSize: number;
  /** Open connections at once; 0 = no limit. */
  maxConnections: number;
  /** Open connections per client address; 0 = no limit. */
  maxConnectionsPerClient: number;
  maxRequestsPerConnection: number;
  headersWithUnderscores: 'allow' | 'drop' | 'reject';
}

export type StringMatchConfig =
  | { kind: 'exact'; value: string }
  | { kind: 'regex'; value: string }
  | { kind: 'present'; value: boolean };

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
  upstream: string;
  priority: number;
  rewrite: RewriteConfig | undefined;
  /** Only the timeouts this route overrides. */
  timeouts: Partial<Timeouts>;
  /** Bytes; 0 = no limit. */
  maxBodySize: number;
  /** Position in the config, the last tie-breaker between equally specific routes. */
  order: number;
}

export interface EndpointConfig {
  url: string;
  /** `http://host:port`, the key of its connection pool. */
  origin: string;
  /** `host:port` as sent in Host when the upstream's hostHeader is `endpoint`. */
  host: string;
  weight: number;
}

export interface UpstreamConfig {
  name: string;
  balancer: 'round-robin';
  endpoints: EndpointConfig[];
  timeouts: Timeouts;
  hostHeader: 'preserve' | 'endpoint';
  connectionsPerEndpoint: number;
  keepAliveTimeout: number;
}

export interface GatewayConfig {
  listeners: ListenerConfig[];
  routes: RouteConfig[];
  upstreams: Map<string, UpstreamConfig>;
  drainTimeout: number;
}
