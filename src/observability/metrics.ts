/**
 * Prometheus metrics (docs/metrics.md lists every one), with @prometheus-io/client on a registry of
 * their own (never the library's global one, so two gateways in one process, or a library user's
 * own metrics, do not mix).
 *
 * Nothing here is woven into the request path: the metrics subscribe to the `diagnostics_channel`
 * events of events.ts, whose publishers check `hasSubscribers` first, so a gateway without metrics
 * pays nothing. What is cheaper to read than to publish (connections open, requests in flight,
 * endpoint health, balancer picks) is read from the live state at scrape time, through a
 * `MetricsSource` the gateway gives.
 *
 * Cardinality is bounded by construction: every label value comes from the config (listener,
 * route, upstream, policy names, endpoint URLs) or from a fixed set (status class, the error codes
 * of errors.ts, TLS failure reasons below, policies' results), never from request data: never a
 * consumer, a credential or a token either (docs/metrics.md says why). A request no route matched is
 * counted under `route="(none)"`; one with no upstream under `upstream="(none)"`.
 *
 * Scope: one Metrics per process (per worker): each worker counts its own traffic; the supervisor
 * sums the workers' (aggregate.ts). The diagnostics channels are process-wide, so a Metrics counts
 * every gateway of its process (one in production; tests start one at a time).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from '@prometheus-io/client';
import type diagnostics from 'node:diagnostics_channel';
import { ERRORS } from '../errors.ts';
import { AUTH_TYPES } from '../policies/auth-common.ts';
import { type AuthFetchEvent, authFetch, type CachePurgeEvent, cachePurge, type PolicyDecisionEvent, policyDecision } from '../policies/events.ts';
import type { StoreStats } from '../policies/filter.ts';
import type { AccessRecord, ForwardRecord } from './access-log.ts';
import { type CounterCell, type HistogramCell, SeriesCounter, SeriesHistogram } from './series-metrics.ts';
import {
  configReload,
  endpointState,
  type ForwardParentEvent,
  forwardParentState,
  http2Event,
  layer4Connection,
  forwardRefusal,
  type ForwardRefusalEvent,
  requestEnd,
  socksConnection,
  stateRestored,
  stateUnavailable,
  tlsHandshake,
  udpSession,
  type Http2Event,
  type Layer4ConnectionEvent,
  type SocksConnectionEvent,
  type TlsHandshakeEvent,
} from './events.ts';

/** What a provider of `GET /metrics` gives the admin listener. */
export interface MetricsProvider {
  /** The exposition: OpenMetrics when `accept` asks for `application/openmetrics-text`, else Prometheus text 0.0.4. */
  render(accept: string | undefined): Promise<{ contentType: string; body: string }>;
}

/** One listener's connections, read at scrape time. */
export interface ListenerSnapshot {
  name: string;
  protocol: string;
  /** Connections open now (admitted ones). */
  open: number;
  /** Connections admitted since the listener was created. */
  accepted: number;
  /** Connections refused by maxConnections / maxConnectionsPerClient since then. */
  refused: number;
}

/** One endpoint's state, read at scrape time. */
export interface EndpointSnapshot {
  upstream: string;
  endpoint: string;
  healthy: boolean;
  ejected: boolean;
  /** This process's requests (connections, sessions) in flight to it. */
  inFlight: number;
  /** Times this process's balancer chose it for a try. */
  picks: number;
}

/** One store of one cache policy, read at scrape time. */
export interface CacheStoreSnapshot extends StoreStats {
  readonly policy: string;
}

/** The live state metrics read at scrape time (the Gateway is one). */
export interface MetricsSource {
  listenerSnapshots(): Iterable<ListenerSnapshot>;
  endpointSnapshots(): Iterable<EndpointSnapshot>;
  /** The cache policies' stores (none without a cache policy). */
  cacheSnapshots?(): Iterable<CacheStoreSnapshot>;
}

export interface MetricsOptions {
  /** Traffic metrics (requests, connections, endpoints...); default true. False in a supervisor, which serves nothing. */
  traffic?: boolean;
  /** Config reload metrics; default true. False in a worker: its supervisor counts reloads for the machine. */
  reloads?: boolean;
  /** Process and event-loop metrics (collectDefaultMetrics); default true. */
  process?: boolean;
}

/**
 * Histogram buckets for a proxy, in seconds: from 0.5 ms (a cached or local answer, a fast
 * origin on the same host) to 60 s (long polls, slow uploads).
 */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Default metrics of the client library that `promtool check metrics` finds fault with. */
const LINT_FAILURES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
  'nodejs_eventloop_utilization_histogram',
  'nodejs_eventloop_utilization_summary',
];

/** Label value for a request that matched no route, or went to no upstream. */
export const NONE = '(none)';

const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'];

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[(status / 100) | 0]! : 'other';
}

/** An error code as a label: one of errors.ts's codes, '' for none, `OTHER` for anything else. */
function errorLabel(code: string | undefined): string {
  if (code === undefined) return '';
  return Object.hasOwn(ERRORS, code) ? code : 'OTHER';
}

/**
 * A failed TLS handshake's error code as a fixed reason: `timeout`, `reset` (the client went
 * away), `protocol` (version, cipher or record layer), `certificate` (a client certificate),
 * `sni` (no certificate for the name, strictSni), `other`.
 */
export function tlsFailureReason(code: string | undefined): string {
  if (code === undefined) return 'other';
  if (code === 'CLIENT_CERTIFICATE' || code.includes('CERT')) return 'certificate';
  if (code.includes('TIMEOUT')) return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') return 'reset';
  if (code.includes('SNI') || code.includes('SERVERNAME') || code.includes('UNRECOGNIZED_NAME')) return 'sni';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'protocol';
  return 'other';
}

/** The cells of one (listener, route), shared by the request series of that route. */
interface RouteCells {
  readonly duration: HistogramCell;
  readonly bytesIn: CounterCell;
  readonly bytesOut: CounterCell;
}

/** The cells one (listener, route, upstream, status class, code, answering policy) combination counts into, built once. */
interface RequestSeries {
  readonly requests: CounterCell;
  readonly route: RouteCells;
  /** The answering policy's (policy, status class, code) cell; undefined when no policy answered. */
  readonly answer: CounterCell | undefined;
}

/** The cells one policy decision counts into, built once per (type, policy, result). */
interface DecisionCells {
  readonly decision: CounterCell;
  /** For a decision of the shared state's fallback (`failed_open`, `failed_closed`). */
  readonly fallback: CounterCell | undefined;
}

/** Content type negotiation: OpenMetrics only when asked for by name. */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept?.toLowerCase().includes('application/openmetrics-text') === true;
}

export class Metrics implements MetricsProvider {
  /** This process's registry (per worker). */
  readonly registry = new Registry();
  #source: MetricsSource | undefined;
  readonly #unsubscribe: Array<() => void> = [];
  /** Label objects by series key; bounded, as their values are (config names, fixed sets). */
  readonly #series = new Map<string, RequestSeries>();
  /** Cells by (listener, route) and by (upstream, endpoint): bounded by the config like the series. */
  readonly #routes = new Map<string, RouteCells>();
  readonly #upstreamCells = new Map<string, HistogramCell>();
  /** The same cells by the endpoint object a request names, to skip building the key per request. */
  readonly #endpointCells = new WeakMap<object, HistogramCell>();
  /** Cells by (type, policy, result), and by the decision message itself (one per filter and result: no key built per request). */
  readonly #decisions = new Map<string, DecisionCells>();
  readonly #decisionCells = new WeakMap<PolicyDecisionEvent, DecisionCells>();
  /** (policy, status class, code) cells of the answering policies, shared by their request series. */
  readonly #answers = new Map<string, CounterCell>();
  /** Last ejection state seen per endpoint, so that an ejection is counted once. */
  readonly #ejected = new Map<string, boolean>();
  /** Renders one at a time: the registry's content type is switched for the duration of one. */
  #rendering: Promise<unknown> = Promise.resolve();

  readonly requests;
  readonly requestDuration;
  readonly upstreamDuration;
  readonly requestBytes;
  readonly responseBytes;
  readonly retries;
  readonly breakerRefusals;
  readonly ejections;
  readonly tlsHandshakes;
  readonly tlsFailures;
  readonly http2Resets;
  readonly http2GoAways;
  readonly l4Connections;
  readonly l4Bytes;
  readonly udpSessions;
  readonly udpSessionsOpen;
  readonly socksConnections;
  readonly socksBytes;
  readonly stateOutages;
  readonly stateUp;
  readonly parentUp;
  readonly parentDowns;
  readonly stateFallbacks;
  readonly policyAnswers;
  readonly authDecisions;
  readonly rateLimitDecisions;
  readonly quotaDecisions;
  readonly concurrencyDecisions;
  readonly policyDecisions;
  readonly cacheRequests;
  readonly cachePurges;
  readonly cachePurgedObjects;
  readonly authFetchDuration;
  readonly forwardRequests;
  readonly forwardTunnelBytes;
  readonly forwardRefusals;
  readonly reloads;
  readonly lastReload;
  readonly lastReloadOk;

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    const traffic = opts.traffic !== false;
    const self = this;
    // The per-request metrics count in plain numbers (series-metrics.ts); the registry reads them when scraped.
    this.requests = new SeriesCounter(
      'switchboard_requests_total',
      'HTTP requests answered, by listener, route, upstream, status class and error code (empty when none).',
      this.registry,
    );
    this.requestDuration = new SeriesHistogram(
      'switchboard_request_duration_seconds',
      'Time from the request arriving to the response being over, by listener and route.',
      LATENCY_BUCKETS,
      this.registry,
    );
    this.upstreamDuration = new SeriesHistogram(
      'switchboard_upstream_duration_seconds',
      'Time from sending a request to an endpoint to its response headers (the last try), by upstream and endpoint.',
      LATENCY_BUCKETS,
      this.registry,
    );
    this.requestBytes = new SeriesCounter('switchboard_request_bytes_total', 'Request body bytes received from clients, by listener and route.', this.registry);
    this.responseBytes = new SeriesCounter('switchboard_response_bytes_total', 'Response body bytes sent to clients, by listener and route.', this.registry);
    this.retries = new Counter({
      name: 'switchboard_upstream_retries_total',
      help: 'Tries beyond the first, by upstream.',
      labelNames: ['upstream'] as const,
      registers,
    });
    this.breakerRefusals = new Counter({
      name: 'switchboard_circuit_breaker_refusals_total',
      help: 'Requests refused with 503 UPSTREAM_OVERLOADED because the upstream was at its circuit breaker limit, by upstream.',
      labelNames: ['upstream'] as const,
      registers,
    });
    this.ejections = new Counter({
      name: 'switchboard_endpoint_ejections_total',
      help: "Outlier detection ejections this process decided (not the ones another worker's decision caused), by upstream and endpoint.",
      labelNames: ['upstream', 'endpoint'] as const,
      registers,
    });
    new Gauge({
      name: 'switchboard_endpoint_healthy',
      help: 'Active health of an endpoint: 1 healthy (or not checked), 0 unhealthy.',
      labelNames: ['upstream', 'endpoint'] as const,
      aggregator: 'min',
      registers,
      collect() {
        this.reset();
        for (const e of self.#endpoints()) this.set({ upstream: e.upstream, endpoint: e.endpoint }, e.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'switchboard_endpoint_ejected',
      help: 'Whether outlier detection has an endpoint out of rotation now: 1 ejected, 0 not.',
      labelNames: ['upstream', 'endpoint'] as const,
      aggregator: 'max',
      registers,
      collect() {
        this.reset();
        for (const e of self.#endpoints()) this.set({ upstream: e.upstream, endpoint: e.endpoint }, e.ejected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'switchboard_endpoint_in_flight',
      help: 'Requests, connections and UDP sessions in flight to an endpoint now.',
      labelNames: ['upstream', 'endpoint'] as const,
      registers,
      collect() {
        this.reset();
        for (const e of self.#endpoints()) this.set({ upstream: e.upstream, endpoint: e.endpoint }, e.inFlight);
      },
    });
    new Counter({
      name: 'switchboard_endpoint_picks_total',
      help: 'Times the balancer (or a sticky cookie) chose an endpoint for a try, by upstream and endpoint.',
      labelNames: ['upstream', 'endpoint'] as const,
      registers,
      collect() {
        this.reset();
        for (const e of self.#endpoints()) this.inc({ upstream: e.upstream, endpoint: e.endpoint }, e.picks);
      },
    });
    new Gauge({
      name: 'switchboard_connections_open',
      help: 'Client connections open now, by listener (tcp, http, https, tls listeners).',
      labelNames: ['listener'] as const,
      registers,
      collect() {
        this.reset();
        for (const l of self.#listeners()) this.set({ listener: l.name }, l.open);
      },
    });
    new Counter({
      name: 'switchboard_connections_accepted_total',
      help: 'Client connections accepted, by listener.',
      labelNames: ['listener'] as const,
      registers,
      collect() {
        this.reset();
        for (const l of self.#listeners()) this.inc({ listener: l.name }, l.accepted);
      },
    });
    new Counter({
      name: 'switchboard_connections_refused_total',
      help: 'Client connections refused by maxConnections or maxConnectionsPerClient, by listener.',
      labelNames: ['listener'] as const,
      registers,
      collect() {
        this.reset();
        for (const l of self.#listeners()) this.inc({ listener: l.name }, l.refused);
      },
    });
    this.tlsHandshakes = new Counter({
      name: 'switchboard_tls_handshakes_total',
      help: 'TLS handshakes with clients that succeeded, by listener.',
      labelNames: ['listener'] as const,
      registers,
    });
    this.tlsFailures = new Counter({
      name: 'switchboard_tls_handshake_failures_total',
      help: 'TLS handshakes with clients that failed, by listener and reason (timeout, reset, protocol, certificate, sni, other).',
      labelNames: ['listener', 'reason'] as const,
      registers,
    });
    this.http2Resets = new Counter({
      name: 'switchboard_http2_stream_resets_total',
      help: 'HTTP/2 streams reset before their response was complete, by listener.',
      labelNames: ['listener'] as const,
      registers,
    });
    this.http2GoAways = new Counter({
      name: 'switchboard_http2_goaways_total',
      help: 'GOAWAY frames sent to HTTP/2 clients, by listener and reason (drain, rapid_reset, protocol).',
      labelNames: ['listener', 'reason'] as const,
      registers,
    });
    this.l4Connections = new Counter({
      name: 'switchboard_l4_connections_total',
      help: 'Layer 4 (tcp, tls, tls-passthrough) connections forwarded to an endpoint, by listener, upstream and endpoint.',
      labelNames: ['listener', 'upstream', 'endpoint'] as const,
      registers,
    });
    this.l4Bytes = new Counter({
      name: 'switchboard_l4_bytes_total',
      help: 'Bytes through layer 4 connections, counted when they end, by listener and direction (in: from clients, out: to them).',
      labelNames: ['listener', 'direction'] as const,
      registers,
    });
    this.socksConnections = new Counter({
      name: 'switchboard_socks_connections_total',
      help: 'SOCKS5 connections ended, by listener and outcome (connect, udp, denied, unresolved, unreachable, auth_missing, auth_failed, malformed, unsupported, timeout, closed).',
      labelNames: ['listener', 'outcome'] as const,
      registers,
    });
    this.socksBytes = new Counter({
      name: 'switchboard_socks_bytes_total',
      help: 'Bytes through SOCKS5 tunnels and UDP associations (payloads), counted when they end, by listener and direction (in: from clients, out: to them).',
      labelNames: ['listener', 'direction'] as const,
      registers,
    });
    this.forwardRequests = new Counter({
      name: 'switchboard_forward_requests_total',
      help: 'Forward-proxy requests and tunnels, by listener, kind (http, connect, websocket), outcome (allowed, denied: a 4xx or 508 of ours, failed) and error code (empty when none).',
      labelNames: ['listener', 'kind', 'outcome', 'code'] as const,
      registers,
    });
    this.forwardTunnelBytes = new Counter({
      name: 'switchboard_forward_tunnel_bytes_total',
      help: 'Bytes through forward-proxy tunnels (CONNECT, WebSocket), counted when they close, by listener, kind and direction (up: from clients, down: to them).',
      labelNames: ['listener', 'kind', 'direction'] as const,
      registers,
    });
    this.forwardRefusals = new Counter({
      name: 'switchboard_forward_refusals_total',
      help: "Destinations the forward proxy's destination guard refused, by listener, code and the rule that decided (a config name or default:…).",
      labelNames: ['listener', 'code', 'rule'] as const,
      registers,
    });
    this.udpSessions = new Counter({
      name: 'switchboard_udp_sessions_total',
      help: 'UDP sessions opened, by listener.',
      labelNames: ['listener'] as const,
      registers,
    });
    this.udpSessionsOpen = new Gauge({
      name: 'switchboard_udp_sessions_open',
      help: 'UDP sessions open now, by listener.',
      labelNames: ['listener'] as const,
      registers,
    });
    this.parentUp = new Gauge({
      name: 'switchboard_forward_parent_up',
      help: "Whether a forward listener's parent proxy answers: 1 yes, 0 since a connect through it or its active health checks failed (shown once it first went down).",
      labelNames: ['listener', 'parent'] as const,
      aggregator: 'min',
      registers,
    });
    this.parentDowns = new Counter({
      name: 'switchboard_forward_parent_down_total',
      help: "Times a forward listener's parent proxy was marked down (a connect or handshake through it failed, or its active health checks did), by listener and parent.",
      labelNames: ['listener', 'parent'] as const,
      registers,
    });
    this.stateOutages = new Counter({
      name: 'switchboard_state_outages_total',
      help: 'Times the shared-state backend stopped answering, by backend (memory, supervisor, redis).',
      labelNames: ['backend'] as const,
      registers,
    });
    this.stateUp = new Gauge({
      name: 'switchboard_state_up',
      help: 'Whether the shared-state backend answers: 1 yes, 0 in an outage (shown once a first outage or recovery happened).',
      labelNames: ['backend'] as const,
      aggregator: 'min',
      registers,
    });
    // Policies: per-request decisions in plain-number cells (as the requests), fetches in a library histogram (rare).
    this.stateFallbacks = new SeriesCounter(
      'switchboard_state_fallback_decisions_total',
      'Decisions of limits answered by their fallback while the shared state was unreachable, by policy, type and mode (open: allowed uncounted, closed: refused).',
      this.registry,
    );
    this.policyAnswers = new SeriesCounter(
      'switchboard_policy_answers_total',
      'Requests a policy answered itself (or replaced the response of, or failed), by policy, status class and error code (empty when none).',
      this.registry,
    );
    this.authDecisions = new SeriesCounter(
      'switchboard_auth_decisions_total',
      'Decisions of authentication policies and authorize, by policy, type and result (success, anonymous, passed, missing, invalid, unavailable, forbidden).',
      this.registry,
    );
    this.rateLimitDecisions = new SeriesCounter(
      'switchboard_rate_limit_decisions_total',
      'Decisions of rate-limit policies, by policy and result (allowed, limited, delayed, failed_open, failed_closed).',
      this.registry,
    );
    this.quotaDecisions = new SeriesCounter(
      'switchboard_quota_decisions_total',
      'Decisions of quota policies, by policy and result (allowed, limited, failed_open, failed_closed).',
      this.registry,
    );
    this.concurrencyDecisions = new SeriesCounter(
      'switchboard_concurrency_limit_decisions_total',
      'Decisions of concurrency-limit policies, by policy and result (allowed, limited, failed_open, failed_closed).',
      this.registry,
    );
    this.policyDecisions = new SeriesCounter(
      'switchboard_policy_decisions_total',
      'Decisions of policies of other types that publish them (content-filter’s refusals, a program’s own policy types), by policy, type and result.',
      this.registry,
    );
    // The cache: results per request in cells (as the decisions), purges in library counters (rare),
    // the stores read at scrape time.
    this.cacheRequests = new SeriesCounter(
      'switchboard_cache_requests_total',
      'Requests a cache policy looked up, by policy and result (hit, miss, stale, revalidated, collapsed, bypass).',
      this.registry,
    );
    // With workers one worker applies each purge to the machine's shared store (process/supervisor.ts): summed.
    this.cachePurges = new Counter({
      name: 'switchboard_cache_purges_total',
      help: 'Purges applied (admin API, CLI, Gateway.purge), by policy and kind (url, prefix, tag); with workers, each purge once.',
      labelNames: ['policy', 'kind'] as const,
      registers: traffic ? registers : [],
    });
    this.cachePurgedObjects = new Counter({
      name: 'switchboard_cache_purged_objects_total',
      help: 'Stored objects removed by purges, by policy and kind (url, prefix, tag).',
      labelNames: ['policy', 'kind'] as const,
      registers: traffic ? registers : [],
    });
    // With workers every store is one copy for the machine (memory in /dev/shm, disk), which each
    // worker reports: the machine's size is the largest worker's view (file-store.ts `stats`), not
    // the sum. Evictions stay summed: each is one worker's sweep (one sweeps at a time).
    if (traffic) {
      new Gauge({
        name: 'switchboard_cache_store_bytes',
        help: 'Bytes a cache policy holds in a store now, by policy and store.',
        labelNames: ['policy', 'store'] as const,
        aggregator: 'max',
        registers,
        collect() {
          this.reset();
          for (const c of self.#caches()) this.set({ policy: c.policy, store: c.store }, c.bytes);
        },
      });
      new Gauge({
        name: 'switchboard_cache_store_objects',
        help: 'Objects (responses, one per variant) a cache policy holds in a store now, by policy and store.',
        labelNames: ['policy', 'store'] as const,
        aggregator: 'max',
        registers,
        collect() {
          this.reset();
          for (const c of self.#caches()) this.set({ policy: c.policy, store: c.store }, c.objects);
        },
      });
      new Counter({
        name: 'switchboard_cache_evictions_total',
        help: "Objects a cache policy's store evicted to stay within its budget (not purges or replacements), by policy and store.",
        labelNames: ['policy', 'store'] as const,
        registers,
        collect() {
          this.reset();
          for (const c of self.#caches()) this.inc({ policy: c.policy, store: c.store }, c.evictions);
        },
      });
    }
    this.authFetchDuration = new Histogram({
      name: 'switchboard_auth_fetch_duration_seconds',
      help: 'Fetches of authentication policies (a JWKS, a token introspection), from start to a usable answer or failure, by policy, kind and result (success, failure).',
      labelNames: ['policy', 'kind', 'result'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const reloadRegisters = opts.reloads === false ? [] : registers;
    this.reloads = new Counter({
      name: 'switchboard_config_reloads_total',
      help: 'Config reload attempts, by result (success, failure).',
      labelNames: ['result'] as const,
      aggregator: 'max',
      registers: reloadRegisters,
    });
    this.lastReload = new Gauge({
      name: 'switchboard_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last successful config load (the start counts as one).',
      aggregator: 'max',
      registers: reloadRegisters,
    });
    this.lastReloadOk = new Gauge({
      name: 'switchboard_config_last_reload_successful',
      help: 'Whether the last config reload succeeded: 1 yes, 0 no (the running config is the one before).',
      aggregator: 'min',
      registers: reloadRegisters,
    });
    this.reloads.inc({ result: 'success' }, 0);
    this.reloads.inc({ result: 'failure' }, 0);
    this.lastReload.set(Date.now() / 1000);
    this.lastReloadOk.set(1);
    // Process metrics under their usual names (process_cpu_seconds_total, nodejs_eventloop_lag_…,
    // nodejs_heap_…): every Node.js exporter uses them, so the usual dashboards and alerts apply.
    // The event-loop lag comes from perf_hooks.monitorEventLoopDelay (sampled every 10 ms).
    if (opts.process !== false) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
      // Left out: names `promtool check metrics` rejects (gauges ending in _total, a type in a
      // name). The gauges nodejs_active_handles, _requests and _resources (by type) stay.
      for (const name of LINT_FAILURES) this.registry.removeSingleMetric(name);
    }

    if (opts.reloads !== false) this.#on(configReload, (m) => this.#onReload(m as { ok: boolean }));
    // Whichever process fetches (a worker, or a supervisor that fetches for its workers) counts it.
    this.#on(authFetch, (m) => this.#onAuthFetch(m as AuthFetchEvent));
    // Parents' active checks run in the supervisor with workers: it counts their downs, once for the
    // machine; a worker counts its own passive ones and only sets the gauge for a flip passed on.
    this.#on(forwardParentState, (m) => {
      const e = m as ForwardParentEvent;
      this.parentUp.set({ listener: e.listener, parent: e.parent }, e.up ? 1 : 0);
      if (!e.up && e.peer !== true) this.parentDowns.inc({ listener: e.listener, parent: e.parent });
    });
    if (!traffic) return;
    this.#on(policyDecision, (m) => this.#onDecision(m as PolicyDecisionEvent));
    this.#on(cachePurge, (m) => {
      const e = m as CachePurgeEvent;
      this.cachePurges.inc({ policy: e.policy, kind: e.kind });
      this.cachePurgedObjects.inc({ policy: e.policy, kind: e.kind }, e.objects);
    });
    this.#on(requestEnd, (m) => this.#onRequest(m as AccessRecord));
    this.#on(endpointState, (m) => this.#onEndpointState(m as { upstream: string; endpoint: string; ejected: boolean; peer?: boolean }));
    this.#on(tlsHandshake, (m) => this.#onTls(m as TlsHandshakeEvent));
    this.#on(http2Event, (m) => this.#onHttp2(m as Http2Event));
    this.#on(layer4Connection, (m) => this.#onLayer4(m as Layer4ConnectionEvent));
    this.#on(udpSession, (m) => this.#onUdp(m as { listener: string; event: 'open' | 'close' }));
    this.#on(socksConnection, (m) => this.#onSocks(m as SocksConnectionEvent));
    this.#on(forwardRefusal, (m) => {
      const e = m as ForwardRefusalEvent;
      this.forwardRefusals.inc({ listener: e.listener, code: e.code, rule: e.rule });
    });
    this.#on(stateUnavailable, (m) => {
      const backend = (m as { backend: string }).backend;
      this.stateOutages.inc({ backend });
      this.stateUp.set({ backend }, 0);
    });
    this.#on(stateRestored, (m) => this.stateUp.set({ backend: (m as { backend: string }).backend }, 1));
  }

  /** Where connections, endpoints and their load are read at scrape time (the gateway, once it serves). */
  setSource(source: MetricsSource | undefined): void {
    this.#source = source;
  }

  #listeners(): Iterable<ListenerSnapshot> {
    return this.#source?.listenerSnapshots() ?? [];
  }

  #endpoints(): Iterable<EndpointSnapshot> {
    return this.#source?.endpointSnapshots() ?? [];
  }

  #caches(): Iterable<CacheStoreSnapshot> {
    return this.#source?.cacheSnapshots?.() ?? [];
  }

  #on(channel: diagnostics.Channel, fn: (message: unknown) => void): void {
    channel.subscribe(fn);
    this.#unsubscribe.push(() => channel.unsubscribe(fn));
  }

  /** Stops listening to the events (the gateway stopped); the registry keeps its last values. */
  close(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#source = undefined;
  }

  #onRequest(s: AccessRecord): void {
    const route = s.route ?? NONE;
    const upstream = s.upstream ?? NONE;
    const cls = statusClass(s.status);
    const code = errorLabel(s.error);
    const policy = s.policy;
    const key = `${s.listener}\0${route}\0${upstream}\0${cls}\0${code}\0${policy ?? ''}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = {
        requests: this.requests.cell({ listener: s.listener, route, upstream, status_class: cls, code }),
        route: this.#routeCells(s.listener, route),
        answer: policy === undefined ? undefined : this.#answerCell(policy, cls, code),
      };
      this.#series.set(key, series);
    }
    series.requests.value++;
    if (series.answer !== undefined) series.answer.value++;
    const cells = series.route;
    cells.duration.observe((performance.now() - s.startedAt) / 1000);
    cells.bytesIn.value += s.bytesIn;
    cells.bytesOut.value += s.bytesOut;
    if (s.upstream !== undefined) {
      if (s.upstreamLatency >= 0 && s.endpoint !== undefined) this.#endpointCell(s.upstream, s.endpoint).observe(s.upstreamLatency / 1000);
      if (s.tries > 1) this.retries.inc({ upstream: s.upstream }, s.tries - 1);
      if (s.error === 'UPSTREAM_OVERLOADED') this.breakerRefusals.inc({ upstream: s.upstream });
    }
    if (s.proxied !== undefined) this.#onForward(s, s.proxied, code);
  }

  /** A forward-proxy request or tunnel (forward/): by outcome, and a tunnel's bytes. */
  #onForward(s: AccessRecord, f: ForwardRecord, code: string): void {
    // Denied: an answer of ours refusing it (a 4xx, 508); a client that left (499) or a 5xx failed.
    const outcome = s.error === undefined ? 'allowed' : s.status === 508 || (s.status >= 400 && s.status < 500 && s.status !== 499) ? 'denied' : 'failed';
    this.forwardRequests.inc({ listener: s.listener, kind: f.kind, outcome, code });
    if (f.kind !== 'http' && s.status < 300 && s.status !== 0) {
      this.forwardTunnelBytes.inc({ listener: s.listener, kind: f.kind, direction: 'up' }, s.bytesIn);
      this.forwardTunnelBytes.inc({ listener: s.listener, kind: f.kind, direction: 'down' }, s.bytesOut);
    }
  }

  /** The cell of requests `policy` answered with (status class, code), shared by the series that name it. */
  #answerCell(policy: string, cls: string, code: string): CounterCell {
    const key = `${policy}\0${cls}\0${code}`;
    let cell = this.#answers.get(key);
    if (cell === undefined) {
      cell = this.policyAnswers.cell({ policy, status_class: cls, code });
      this.#answers.set(key, cell);
    }
    return cell;
  }

  #onDecision(e: PolicyDecisionEvent): void {
    let cells = this.#decisionCells.get(e);
    if (cells === undefined) {
      cells = this.#decisionCellsOf(e);
      this.#decisionCells.set(e, cells);
    }
    cells.decision.value++;
    if (cells.fallback !== undefined) cells.fallback.value++;
  }

  /** The cells of a decision: in its type's family; a fallback's in the state's too. By key, so that a reload's new messages find them. */
  #decisionCellsOf(e: PolicyDecisionEvent): DecisionCells {
    const { policy, type, result } = e;
    const key = `${type}\0${policy}\0${result}`;
    let cells = this.#decisions.get(key);
    if (cells !== undefined) return cells;
    let decision: CounterCell;
    if (type === 'rate-limit') decision = this.rateLimitDecisions.cell({ policy, result });
    else if (type === 'quota') decision = this.quotaDecisions.cell({ policy, result });
    else if (type === 'concurrency-limit') decision = this.concurrencyDecisions.cell({ policy, result });
    else if (type === 'cache') decision = this.cacheRequests.cell({ policy, result });
    else if (AUTH_TYPES.has(type) || type === 'authorize') decision = this.authDecisions.cell({ policy, type, result });
    else decision = this.policyDecisions.cell({ policy, type, result });
    const mode = result === 'failed_open' ? 'open' : result === 'failed_closed' ? 'closed' : undefined;
    cells = { decision, fallback: mode === undefined ? undefined : this.stateFallbacks.cell({ policy, type, mode }) };
    this.#decisions.set(key, cells);
    return cells;
  }

  #onAuthFetch(e: AuthFetchEvent): void {
    this.authFetchDuration.observe({ policy: e.policy, kind: e.kind, result: e.ok ? 'success' : 'failure' }, e.durationMs / 1000);
  }

  /** The cells of one (listener, route), shared by the series of that route. */
  #routeCells(listener: string, route: string): RouteCells {
    const key = `${listener}\0${route}`;
    let cells = this.#routes.get(key);
    if (cells === undefined) {
      const labels = { listener, route };
      cells = { duration: this.requestDuration.cell(labels), bytesIn: this.requestBytes.cell(labels), bytesOut: this.responseBytes.cell(labels) };
      this.#routes.set(key, cells);
    }
    return cells;
  }

  /** The upstream-latency cell of an endpoint: by its object, else by (upstream, origin) (a reload makes new objects). */
  #endpointCell(upstream: string, endpoint: { readonly origin: string }): HistogramCell {
    let cell = this.#endpointCells.get(endpoint);
    if (cell === undefined) {
      const key = `${upstream}\0${endpoint.origin}`;
      cell = this.#upstreamCells.get(key);
      if (cell === undefined) {
        cell = this.upstreamDuration.cell({ upstream, endpoint: endpoint.origin });
        this.#upstreamCells.set(key, cell);
      }
      this.#endpointCells.set(endpoint, cell);
    }
    return cell;
  }

  #onEndpointState(e: { upstream: string; endpoint: string; ejected: boolean; peer?: boolean }): void {
    const key = `${e.upstream}\0${e.endpoint}`;
    const was = this.#ejected.get(key) ?? false;
    this.#ejected.set(key, e.ejected);
    if (e.ejected && !was && e.peer !== true) this.ejections.inc({ upstream: e.upstream, endpoint: e.endpoint });
  }

  #onTls(e: TlsHandshakeEvent): void {
    if (e.ok) this.tlsHandshakes.inc({ listener: e.listener });
    else this.tlsFailures.inc({ listener: e.listener, reason: tlsFailureReason(e.error) });
  }

  #onHttp2(e: Http2Event): void {
    if (e.kind === 'reset') this.http2Resets.inc({ listener: e.listener });
    else this.http2GoAways.inc({ listener: e.listener, reason: e.reason ?? 'drain' });
  }

  #onLayer4(e: Layer4ConnectionEvent): void {
    if (e.event === 'open') {
      this.l4Connections.inc({ listener: e.listener, upstream: e.upstream, endpoint: e.endpoint });
      return;
    }
    this.l4Bytes.inc({ listener: e.listener, direction: 'in' }, e.bytesIn);
    this.l4Bytes.inc({ listener: e.listener, direction: 'out' }, e.bytesOut);
  }

  #onSocks(e: SocksConnectionEvent): void {
    this.socksConnections.inc({ listener: e.listener, outcome: e.outcome });
    if (e.bytesIn > 0) this.socksBytes.inc({ listener: e.listener, direction: 'in' }, e.bytesIn);
    if (e.bytesOut > 0) this.socksBytes.inc({ listener: e.listener, direction: 'out' }, e.bytesOut);
  }

  #onUdp(e: { listener: string; event: 'open' | 'close' }): void {
    if (e.event === 'open') {
      this.udpSessions.inc({ listener: e.listener });
      this.udpSessionsOpen.inc({ listener: e.listener });
    } else this.udpSessionsOpen.dec({ listener: e.listener });
  }

  #onReload(m: { ok: boolean }): void {
    this.reloads.inc({ result: m.ok ? 'success' : 'failure' });
    this.lastReloadOk.set(m.ok ? 1 : 0);
    if (m.ok) this.lastReload.set(Date.now() / 1000);
  }

  /** This process's metrics as JSON, for a supervisor to aggregate (aggregate.ts). */
  snapshot(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON() as Promise<unknown[]>;
  }

  render(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const type = wantsOpenMetrics(accept) ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE;
    const run = async (): Promise<{ contentType: string; body: string }> => {
      this.registry.setContentType(type);
      return { contentType: type, body: await this.registry.metrics() };
    };
    const next = this.#rendering.then(run, run);
    this.#rendering = next;
    return next;
  }
}
