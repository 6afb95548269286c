/**
 * OpenTelemetry traces at the proxy's boundaries (manual spans, no auto-instrumentation): a SERVER
 * span per request (WebSocket upgrades included, the span lasting the tunnel's life) and a CLIENT
 * span per upstream try, exported over OTLP/HTTP (JSON) by a BatchSpanProcessor. W3C Trace Context
 * (https://www.w3.org/TR/trace-context/): an incoming `traceparent`/`tracestate` from a trusted peer
 * is continued, one from anyone else dropped and a new trace started; each try carries a
 * `traceparent` naming its client span (or the server span when the trace is not sampled: the
 * trace id propagates either way, as Envoy does).
 *
 * Sampling is parent-based (the SDK's ParentBasedSampler): a trusted parent's sampled flag decides,
 * a new trace is sampled at `sampleRate`. That draw is made here, before the SDK is involved, so a
 * request that starts a trace and is not sampled (99 in 100 at 1 %) costs two random ids and one
 * string, with no span, context or attribute object (the SDK's root sampler is then AlwaysOn: only
 * sampled roots reach it).
 *
 * State: one `Tracing` per process (per worker with a supervisor): its provider, exporter and queue
 * of finished spans are the worker's own, so each worker exports its own spans; nothing is shared
 * across workers or instances, the collector joins them by trace id. A `RequestTrace` per request,
 * created only when the listener generation has tracing on: with tracing off no object, closure
 * or header parse happens per request (the pipeline tests one field per request).
 *
 * The SDK and the exporter are imported when tracing is first configured, never otherwise.
 */
import { randomFillSync } from 'node:crypto';
import { createTraceState, isValidSpanId, isValidTraceId, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '../config/types.ts';
import { AddressSet } from '../util/cidr.ts';

/** Span attributes of Switchboard's own (the semantic conventions have no word for them). */
export const ATTR_LISTENER = 'switchboard.listener';
export const ATTR_ROUTE = 'switchboard.route';
export const ATTR_UPSTREAM = 'switchboard.upstream';
export const ATTR_ENDPOINT = 'switchboard.endpoint';
export const ATTR_REQUEST_ID = 'switchboard.request_id';
/** The semantic conventions' `process.pid` (still in their incubating set): which worker exported a span. */
const ATTR_PROCESS_PID = 'process.pid';

/** What the tracing reads of a request when it starts (the HTTP layer's session provides it). */
export interface TracedRequest {
  readonly method: string;
  readonly peer: string;
  /** Whether the peer is one of the listener's trusted proxies (used when `tracing.trust` is absent). */
  readonly trustedPeer: boolean;
  readonly listener: string;
}

/** Request headers by lower-case name, as node:http gives them. */
type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What the tracing reads of a request when it is over. */
export interface FinishedRequest {
  readonly method: string;
  readonly requestId: string;
  readonly clientIp: string;
  readonly path: string;
  readonly status: number;
  readonly route: string | undefined;
  readonly upstream: string | undefined;
  readonly error: string | undefined;
}

/** How the process logger is reached (export failures are logged, at most once a minute). */
interface WarnLog {
  warn(obj: object, msg: string): void;
}

/** `00-<trace id>-<span id>-<flags>`, lower-case hex (W3C Trace Context §3.2). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? undefined : v;
}

/**
 * The parent context a trusted `traceparent` (and `tracestate`) names, or ROOT_CONTEXT when it is
 * absent or does not parse (then a new trace starts, as the spec says). A repeated traceparent is
 * invalid; version ff is invalid; version 00 has exactly four fields; later versions may add fields.
 */
export function parentContext(headers: RequestHeaders): Context {
  const text = single(headers.traceparent);
  if (text === undefined) return ROOT_CONTEXT;
  const m = TRACEPARENT.exec(text);
  if (m === null || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return ROOT_CONTEXT;
  const traceId = m[2];
  const spanId = m[3];
  if (!isValidTraceId(traceId) || !isValidSpanId(spanId)) return ROOT_CONTEXT;
  const state = headers.tracestate;
  const joined = Array.isArray(state) ? state.join(',') : state;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: Number.parseInt(m[4], 16) & 1,
    isRemote: true,
    traceState: joined === undefined || joined === '' ? undefined : createTraceState(joined),
  });
}

/** The `traceparent` value naming `span` (sampled flag as the span's). */
function traceparentOf(span: Span): string {
  const sc = span.spanContext();
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags & 1 ? '01' : '00'}`;
}

/** Random bytes for ids, drawn 4 KiB at a time (one system call per 170 unsampled requests). */
const idPool = Buffer.alloc(4096);
let idOffset = idPool.length;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** `bytes` random bytes as lower-case hex, never all zeros (W3C: an all-zero id is invalid). */
function randomId(bytes: number): string {
  for (;;) {
    if (idOffset + bytes > idPool.length) {
      randomFillSync(idPool);
      idOffset = 0;
    }
    const id = idPool.toString('hex', idOffset, idOffset + bytes);
    idOffset += bytes;
    if (id !== (bytes === 16 ? ZERO_TRACE_ID : ZERO_SPAN_ID)) return id;
  }
}

/** Host and port of an endpoint origin (`http://10.0.0.1:8080`). */
function hostPort(origin: string): { host: string; port: number } {
  const u = new URL(origin);
  return { host: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname, port: Number(u.port) || (u.protocol === 'https:' ? 443 : 80) };
}

/**
 * One request's spans: the server span from the start, one client span per try. Created by the
 * session (http/session.ts) only when its listener generation has tracing on; all calls come from
 * the request's own callbacks, in order: startTry, endTry, …, end.
 */
export class RequestTrace {
  readonly #tracing: Tracing;
  /** The server span; undefined for an unsampled new trace (no span is made at all). */
  readonly #server: Span | undefined;
  readonly #serverContext: Context;
  readonly #sampled: boolean;
  /** What each try sends when the trace is not sampled (the server span's ids, flags 00). */
  readonly #traceparent: string | undefined;
  /** The trace id: in the access log line. */
  readonly traceId: string;
  /** The tracestate to pass on (a trusted parent's), or undefined. */
  readonly tracestate: string | undefined;
  #client: Span | undefined = undefined;
  #ended = false;

  constructor(tracing: Tracing, r: TracedRequest, headers: RequestHeaders) {
    this.#tracing = tracing;
    const trusted = tracing.trust === undefined ? r.trustedPeer : tracing.trust.has(r.peer);
    const parent = trusted ? parentContext(headers) : ROOT_CONTEXT;
    if (parent === ROOT_CONTEXT && !(Math.random() < tracing.config.sampleRate)) {
      // A new trace, not sampled: ids to propagate, and nothing else.
      this.#server = undefined;
      this.#serverContext = ROOT_CONTEXT;
      this.#sampled = false;
      this.traceId = randomId(16);
      this.tracestate = undefined;
      this.#traceparent = `00-${this.traceId}-${randomId(8)}-00`;
      return;
    }
    const span = tracing.tracer.startSpan(r.method, { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: r.method, [ATTR_LISTENER]: r.listener } }, parent);
    this.#server = span;
    this.#serverContext = trace.setSpan(ROOT_CONTEXT, span);
    const sc = span.spanContext();
    this.#sampled = (sc.traceFlags & 1) === 1;
    this.traceId = sc.traceId;
    this.tracestate = sc.traceState?.serialize() || undefined;
    this.#traceparent = this.#sampled ? undefined : traceparentOf(span);
  }

  /**
   * A try is about to go to `endpoint` (`attempt` 1 for the first): starts its client span and
   * returns the `traceparent` to send with it (naming the client span, or the server span when
   * the trace is not sampled).
   */
  startTry(endpoint: string, attempt: number): string {
    this.#client?.end();
    if (!this.#sampled) return this.#traceparent!;
    const { host, port } = this.#tracing.endpointAddress(endpoint);
    const span = this.#tracing.tracer.startSpan(
      'proxy',
      {
        kind: SpanKind.CLIENT,
        attributes: { [ATTR_ENDPOINT]: endpoint, [ATTR_SERVER_ADDRESS]: host, [ATTR_SERVER_PORT]: port, [ATTR_HTTP_REQUEST_RESEND_COUNT]: attempt - 1 },
      },
      this.#serverContext,
    );
    this.#client = span;
    return traceparentOf(span);
  }

  /** The try in flight is over: the status the endpoint answered (0: none) and the error code, if it failed. */
  endTry(status: number, error: string | undefined): void {
    const span = this.#client;
    if (span === undefined) return;
    this.#client = undefined;
    if (status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (error !== undefined) span.setAttribute(ATTR_ERROR_TYPE, error);
    if (error !== undefined || status >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }

  /** The request is over (once): names the server span `<method> <route>`, sets its outcome and ends it. */
  end(r: FinishedRequest): void {
    if (this.#ended) return;
    this.#ended = true;
    this.endTry(0, this.#client === undefined ? undefined : (r.error ?? 'CLIENT_CLOSED'));
    const span = this.#server;
    if (!this.#sampled || span === undefined) return;
    span.updateName(r.route === undefined ? r.method : `${r.method} ${r.route}`);
    span.setAttribute(ATTR_URL_PATH, r.path);
    span.setAttribute(ATTR_CLIENT_ADDRESS, r.clientIp);
    span.setAttribute(ATTR_REQUEST_ID, r.requestId);
    if (r.status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, r.status);
    if (r.route !== undefined) span.setAttribute(ATTR_ROUTE, r.route);
    if (r.upstream !== undefined) span.setAttribute(ATTR_UPSTREAM, r.upstream);
    if (r.error !== undefined) span.setAttribute(ATTR_ERROR_TYPE, r.error);
    if (r.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }
}

/** What the tracing keeps of the SDK's BasicTracerProvider. */
interface Provider {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * The tracing of one process (a worker): the tracer provider with its batch processor and OTLP
 * exporter. Built from the `tracing` config; a reload that changes that config builds a new one
 * and shuts the old one down (flushing it) once the old generation's requests are over.
 */
export class Tracing {
  readonly config: TracingConfig;
  readonly tracer: Tracer;
  /** `tracing.trust`, or undefined to use each listener's trusted proxies. */
  readonly trust: AddressSet | undefined;
  readonly #provider: Provider;
  /** Host and port by endpoint origin; per process, bounded by the endpoints the configs name. */
  readonly #addresses = new Map<string, { host: string; port: number }>();

  private constructor(config: TracingConfig, tracer: Tracer, provider: Provider) {
    this.config = config;
    this.tracer = tracer;
    this.#provider = provider;
    this.trust = config.trust === undefined ? undefined : new AddressSet(config.trust);
  }

  /** Builds the tracing for `config` (loads the SDK and the exporter on first use). */
  static async create(config: TracingConfig, log: WarnLog): Promise<Tracing> {
    const [{ AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
    const exporter = new OTLPTraceExporter({ url: config.endpoint, headers: config.headers, timeoutMillis: config.timeout });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_PROCESS_PID]: process.pid }),
      // New traces are drawn at sampleRate by RequestTrace before the SDK: the ones that reach it are sampled.
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      spanProcessors: [new BatchSpanProcessor(reporting(exporter, config.endpoint, log), { exportTimeoutMillis: config.timeout })],
    });
    // The provider is not registered globally: Switchboard's spans are its own, a host application's stay apart.
    return new Tracing(config, provider.getTracer('switchboard'), provider);
  }

  /** Whether a new config may keep this tracing as it is. */
  sameAs(config: TracingConfig | undefined): boolean {
    return config !== undefined && JSON.stringify(config) === JSON.stringify(this.config);
  }

  /** Starts the spans of one request (its `traceparent` and `tracestate` read from `headers`). */
  start(r: TracedRequest, headers: RequestHeaders): RequestTrace {
    return new RequestTrace(this, r, headers);
  }

  /** Host and port of an endpoint origin, parsed once. */
  endpointAddress(origin: string): { host: string; port: number } {
    let a = this.#addresses.get(origin);
    if (a === undefined) {
      a = hostPort(origin);
      this.#addresses.set(origin, a);
    }
    return a;
  }

  /** Exports every finished span now. */
  flush(): Promise<void> {
    return this.#provider.forceFlush();
  }

  /** Exports what is left and stops (gateway stop, or replaced by a reload). */
  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }
}

/** The exporter, with failed exports logged (at most once a minute; the headers, which may hold a key, never). */
function reporting(exporter: SpanExporter, endpoint: string, log: WarnLog): SpanExporter {
  let lastWarned = -Infinity;
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code !== 0 && performance.now() - lastWarned > 60_000) {
          lastWarned = performance.now();
          log.warn({ endpoint, spans: spans.length, err: result.error?.message }, 'tracing: spans could not be exported to the OTLP endpoint');
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
