/**
 * `RequestSession`: one request's state, shared by every phase, the proxy step and the access log.
 * One object per request, created by the pipeline; what only filters read (`request`, `client`)
 * is built on first use, so a route without filters allocates nothing for it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ProxyError } from '../errors.ts';
import type { CacheLogResult, Client, Identity, RequestView, Session } from '../policies/filter.ts';
import { requestEnd } from '../observability/events.ts';
import type { AccessRecord, ForwardRecord } from '../observability/access-log.ts';
import type { RequestTrace } from '../observability/tracing.ts';
import type { Tunnel } from '../transport/tunnel.ts';
import { clientAddress } from '../transport/headers.ts';
import { redactQuery } from '../util/request-values.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import type { Chain } from './chain.ts';
import type { Downstream, DownstreamOwner } from './downstream.ts';
import type { ListenerGeneration, ListenerRoute, ListenerSettings } from './listener-generation.ts';
import { RequestBody } from './request-body.ts';
import type { ForwardTarget } from './strict.ts';

/** What the session may do to the upstream exchange in flight. */
export interface AttemptHandle {
  abort(reason: Error): void;
  readonly finished: boolean;
}

/**
 * Request ids: 128 random bits drawn once per 4096 ids, the low bits counting up, formatted as a
 * UUID. Unique like randomUUID(), at a fraction of its cost per request.
 */
let idBase = '';
let idCounter = 4096;
export function nextRequestId(): string {
  if (idCounter >= 4096) {
    idBase = randomUUID().slice(0, 33);
    idCounter = 0;
  }
  return idBase + (idCounter++).toString(16).padStart(3, '0');
}

/** The client's X-Request-Id when it is sane (1-200 characters), else a fresh one. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && given.length > 0 && given.length <= 200 ? given : nextRequestId();
}

const noCount = (): void => undefined;

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

export class RequestSession implements Session, DownstreamOwner, AccessRecord {
  readonly down: Downstream;
  readonly gen: ListenerGeneration;
  readonly settings: ListenerSettings;
  readonly listener: string;
  readonly requestId: string;
  /** TCP peer address (or the PROXY header's source), no `::ffff:` prefix. */
  readonly peer: string;
  /** Client address after trusted-proxy resolution. */
  readonly clientIp: string;
  /** Whether the peer is a trusted proxy. */
  readonly trustedPeer: boolean;
  /** Host (or :authority) as received, '' when absent; on a forward listener the target's destination (pipeline.ts). */
  host: string;
  /** Forward listeners: the target's form (strict.ts `ForwardTarget`); `origin` everywhere else. */
  targetForm: ForwardTarget['form'] = 'origin';
  /** Forward listeners: the destination, the address connected to and the rule that decided (AccessRecord); undefined otherwise. */
  proxied: ForwardRecord | undefined = undefined;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** Whether the client waits for a 100 before sending its body. */
  readonly expectContinue: boolean;
  /** Normalised path (before rewrite), no query; set once the target is parsed. */
  path = '';
  /** Query string including its leading `?`, or ''. */
  query = '';
  /** Path plus query as it will be sent upstream (after rewrite). */
  target = '';
  /** The route that matched, once routing ran. */
  routed: ListenerRoute | undefined = undefined;
  /** The chain whose response and log phases apply: the listener's, then the route's. */
  chain: Chain;
  /** Position of the filter that answered (its response phase and those after it are skipped); Infinity otherwise. */
  answeredAt = Infinity;
  upstream: string | undefined = undefined;
  endpoint: Endpoint | undefined = undefined;
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** ms from dispatch to upstream response headers, -1 when no upstream answered. */
  upstreamLatency = -1;
  tries = 0;
  error: string | undefined = undefined;
  /** The policy whose Reply answered (or replaced the response), or whose hook failed or timed out (AccessRecord). */
  policy: string | undefined = undefined;
  /** The upstream exchange in flight, so that a client leaving early can abort it. */
  attempt: AttemptHandle | undefined = undefined;
  /** The 100 Continue was sent (or was not owed). */
  continued: boolean;
  /** Set once the exchange is over. */
  over = false;
  /** Still counted in its generation (an open tunnel no longer is). */
  #inGeneration = true;
  /** A WebSocket tunnel opened for this request: its byte counts are the request's. */
  tunnel: Tunnel | undefined = undefined;
  /** The last step of the pipeline for this kind of request (the proxy step, or the upgrade one). */
  readonly forward: (s: RequestSession, route: ListenerRoute) => void | Promise<void>;
  /** The request body, once something had to read it (body filters, replay for retries, a size limit). */
  body: RequestBody | undefined = undefined;
  /** The request's spans when its generation has tracing on; undefined (and never created) otherwise. */
  readonly trace: RequestTrace | undefined;
  #locals: Map<object, unknown> | undefined = undefined;
  /** Set by an authentication policy (Session.identify). */
  identity: Identity | undefined = undefined;
  /** Set by a cache policy (Session.cache, AccessRecord): what it did for this request. */
  cache: CacheLogResult | undefined = undefined;
  #request: RequestView | undefined = undefined;
  #client: Client | undefined = undefined;

  constructor(gen: ListenerGeneration, down: Downstream, startedAt: number, expectContinue: boolean, forward: RequestSession['forward']) {
    this.gen = gen;
    this.forward = forward;
    this.down = down;
    this.settings = gen.settings;
    this.listener = gen.name;
    this.startedAt = startedAt;
    this.expectContinue = expectContinue;
    this.continued = !expectContinue;
    const headers = down.headers;
    this.requestId = requestIdOf(headers);
    const peer = down.remoteAddress ?? '';
    this.peer = peer;
    const trusted = gen.trusted.has(peer);
    this.trustedPeer = trusted;
    this.clientIp = trusted ? clientAddress(peer, true, headerValue(headers['x-forwarded-for']), (a) => gen.trusted.has(a)) : peer;
    this.host = down.authority;
    this.chain = gen.chain;
    const tracing = gen.tracing;
    this.trace = tracing === undefined ? undefined : tracing.start(this, headers);
  }

  get traceId(): string | undefined {
    return this.trace?.traceId;
  }

  /** The identified consumer's name (AccessRecord): never a credential. */
  get consumer(): string | undefined {
    return this.identity?.consumer.name;
  }

  get id(): string {
    return this.requestId;
  }

  get route(): string | undefined {
    return this.routed?.name;
  }

  get draining(): boolean {
    return this.settings.draining;
  }

  get version(): string {
    return this.down.version;
  }

  get method(): string {
    return this.down.method;
  }

  /** The request target as the access log shows it: credentials in the query redacted (filters' `secretQueryParams`). */
  get url(): string {
    const secret = this.gen.secretQueryParams;
    return secret.size === 0 ? this.down.url : redactQuery(this.down.url, secret);
  }

  /** Read only by the access log formats that print it (combined, a template): nothing is copied per request. */
  get referer(): string | undefined {
    return headerValue(this.down.headers.referer);
  }

  get userAgent(): string | undefined {
    return headerValue(this.down.headers['user-agent']);
  }

  get request(): RequestView {
    this.#request ??= {
      method: this.down.method,
      authority: this.host,
      path: this.path,
      query: this.query,
      headers: this.down.headers,
      scheme: this.settings.scheme,
      upgrade: this.down.upgrade,
      hasBody: this.down.hasBody,
      proxyAuthentication: this.settings.forwardProxy === true,
    };
    return this.#request;
  }

  get client(): Client {
    this.#client ??= {
      ip: this.clientIp,
      peer: this.peer,
      tls: this.settings.scheme === 'https',
      certificate: this.down.clientCertificate,
    };
    return this.#client;
  }

  identify(identity: Identity): void {
    this.identity = identity;
  }

  local<T>(key: object, value?: T): T | undefined {
    if (value !== undefined) {
      this.#locals ??= new Map();
      this.#locals.set(key, value);
      return value;
    }
    return this.#locals?.get(key) as T | undefined;
  }

  /**
   * The request body, read through a RequestBody (created once): `keep` bytes kept for a replay;
   * a body without Content-Length counted into bytesIn and refused past `limit` (0: none).
   */
  readBody(keep: number, limit: number): RequestBody {
    if (this.body !== undefined) return this.body;
    const counted = this.down.headers['content-length'] === undefined;
    const count = counted
      ? (n: number): void => {
          this.bytesIn += n;
        }
      : noCount;
    this.body = new RequestBody(this.down.body(), keep, counted ? limit : 0, count, () => this.sendContinue());
    return this.body;
  }

  /** Sends the 100 Continue the client waits for, once, when its body is wanted. */
  sendContinue(): void {
    if (this.continued) return;
    this.continued = true;
    this.down.informational(100);
  }

  /** The request no longer holds its generation (an open tunnel lives on without it). */
  leaveGeneration(): void {
    if (!this.#inGeneration) return;
    this.#inGeneration = false;
    this.gen.generation.leave();
  }

  /** The exchange is over (the downstream adapter calls this once): abort what is left, log. */
  closed(complete: boolean): void {
    if (this.over) return;
    this.over = true;
    const tunnel = this.tunnel;
    if (tunnel !== undefined) {
      this.bytesIn = tunnel.bytesIn;
      this.bytesOut = tunnel.bytesOut;
    } else if (!complete) {
      const attempt = this.attempt;
      if (attempt !== undefined && !attempt.finished) attempt.abort(new ProxyError('CLIENT_CLOSED'));
      if (this.error === undefined) this.error = 'CLIENT_CLOSED';
      if (this.status === 0) this.status = 499;
    }
    this.leaveGeneration();
    const log = this.chain.log;
    for (let i = 0; i < log.length; i++) {
      try {
        log[i].filter.onLog!(this);
      } catch (err) {
        this.gen.onInternalError(this, err, log[i].policy);
      }
    }
    if (this.trace !== undefined) this.trace.end(this);
    this.gen.onRequestEnd(this);
    if (requestEnd.hasSubscribers) requestEnd.publish(this);
  }
}
