/**
 * The filter contract: what a policy type builds, and what the request pipeline (src/http/) hands
 * it at each phase. This file is the only thing policy modules and the pipeline share; it imports
 * nothing of the gateway (only zod's types), so policies depend on no layer of the gateway and the
 * gateway on no policy.
 *
 * Phases, in the order a request meets them (after Pingora's phase chart and Envoy's filter chain):
 *
 *   onRequest          listener filters (before routing), then route filters (after routing)
 *   requestBody        a capped prefix of the request body, once every onRequest has passed
 *   onUpstreamRequest  each try: the head about to go to the endpoint (after header hygiene)
 *   onResponse         the response head, in reverse filter order; may replace the response
 *   onResponseBody     each chunk of the response body, in reverse filter order
 *   onLog              once the request is over, whatever happened
 *
 * A request phase may answer by itself (a `Reply`): no upstream is contacted, and the response
 * phases of the filters *before* the answering one still run (in reverse order), so a CORS or
 * header policy also applies to a 401 or a 429. A hook that throws or rejects fails only its own
 * request: 500 with the JSON error body and code `POLICY_ERROR`, the policy named in the log.
 *
 * Hooks are optional and a route pays only for the phases its filters use: the pipeline compiles
 * one array per phase per generation, and with no response-phase filter the transport writes
 * straight to the client.
 */

import type { z, ZodObject } from 'zod';

/** A header list: case-insensitive names, repeated names kept in order (Set-Cookie). */
export interface Headers {
  /** The value, several values joined with `, `; undefined when absent. */
  get(name: string): string | undefined;
  /** Every value of `name`, in order (empty when absent). */
  getAll(name: string): string[];
  has(name: string): boolean;
  /** Replaces every value of `name` with `value`. */
  set(name: string, value: string): void;
  /** Adds one more value of `name`, keeping the ones there. */
  append(name: string, value: string): void;
  /** Removes every value of `name`; returns whether there was one. */
  delete(name: string): boolean;
  /** Renames `from` to `to`, keeping values and order; nothing when absent. */
  rename(from: string, to: string): void;
  /** Calls `fn` for each field, names as stored. */
  forEach(fn: (value: string, name: string) => void): void;
}

/** A verified client certificate (downstream mutual TLS). */
export interface ClientCertificate {
  /** Subject DN, `C=DE,O=Example,CN=client-1`. */
  readonly subject: string;
  /** SHA-256 of the DER certificate, lower-case hex. */
  readonly fingerprint: string;
}

/** The client side of a request, as the pipeline resolved it. */
export interface Client {
  /**
   * Client address after trusted-proxy resolution (no `::ffff:` prefix). From a trusted proxy's
   * X-Forwarded-For it is that header's text: a policy parsing it must refuse what does not parse.
   */
  readonly ip: string;
  /** TCP peer address (or the PROXY header's source). */
  readonly peer: string;
  /** Whether the connection is TLS (https listeners). */
  readonly tls: boolean;
  /** The verified client certificate, when the listener asks for one and the client sent it. */
  readonly certificate: ClientCertificate | undefined;
}

/** The request as filters see it: read-only; request headers are changed in onUpstreamRequest. */
export interface RequestView {
  /** Upper-case method. */
  readonly method: string;
  /** Host (HTTP/1.1) or :authority (HTTP/2), as sent; '' when absent. */
  readonly authority: string;
  /** The normalised path (before any rewrite), no query. */
  readonly path: string;
  /** The query string with its leading `?`, or ''. */
  readonly query: string;
  /**
   * Request headers by lower-case name (HTTP/2 pseudo-headers excluded). Repeated fields are joined
   * with `, ` (as node:http does), except Set-Cookie, which is an array.
   */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** `http` or `https`. */
  readonly scheme: string;
  /** Whether this request opens a WebSocket (an HTTP/1.1 Upgrade). */
  readonly upgrade: boolean;
  /** Whether the request has a body to come. */
  readonly hasBody: boolean;
  /**
   * True on a forward-proxy listener: credentials for this gateway travel in `Proxy-Authorization`
   * and are challenged with 407 and `Proxy-Authenticate` (RFC 9110 §11.7), while `Authorization`
   * belongs to the destination. Set by the listener; undefined (false) everywhere else.
   */
  readonly proxyAuthentication?: boolean;
}

/**
 * One request's state shared by every phase. Created by the pipeline, once per request. Filters
 * read it and may keep their own per-request data with `local`.
 */
export interface Session {
  readonly request: RequestView;
  readonly client: Client;
  /** X-Request-Id (the client's when it sent a sane one, else generated). */
  readonly id: string;
  /** The listener's name. */
  readonly listener: string;
  /** The matched route's name; undefined before routing (listener filters) and when none matched. */
  readonly route: string | undefined;
  /** The upstream the route forwards to, if any. */
  readonly upstream: string | undefined;
  /** Status sent to the client (0 until the head is out). */
  readonly status: number;
  /** Error code of the answer when Switchboard answered for itself or the exchange failed. */
  readonly error: string | undefined;
  /**
   * Per-request data of one filter (keyed by the filter object, or any object the filter owns).
   * `local(key)` reads, `local(key, value)` writes. The map is created on first write only.
   */
  local<T>(key: object, value?: T): T | undefined;
  /**
   * Who is calling, once an authentication policy has identified them (undefined before, and on
   * routes without authentication). Set with `identify`; later policies (authorize, rate limits,
   * headers to the upstream, the access log) read it.
   */
  readonly identity: Identity | undefined;
  /** Records who is calling (an authentication policy, once it verified a credential). */
  identify(identity: Identity): void;
  /** What a cache policy did for this request (the access log's `cache`); undefined on routes without one. */
  cache: CacheLogResult | undefined;
}

/** A named consumer of the API (`consumers.<name>` in the config). */
export interface Consumer {
  readonly name: string;
  readonly groups: readonly string[];
  /** Free-form, from the config: usable in templates and logs. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** What an authentication policy established about a request. */
export interface Identity {
  /** The consumer the credential belongs to (or the route's anonymous consumer). */
  readonly consumer: Consumer;
  /**
   * A stable id of the credential used that reveals nothing of it (`alice/api-key/0`, a token's
   * subject): a rate-limit key and a log field. Never the secret itself.
   */
  readonly credential: string;
  /** The policy that identified the request (`policies.<name>`). */
  readonly policy: string;
  /** Scopes of a verified token (jwt, introspection), for `authorize`. */
  readonly scopes?: readonly string[];
  /** Claims of a verified token, for `authorize` and claim headers. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** A Basic credential's password hash, parsed once at config load. */
export type PasswordHash =
  | { readonly kind: 'bcrypt'; readonly hash: string }
  | {
      readonly kind: 'argon2';
      readonly algorithm: 'argon2id' | 'argon2i' | 'argon2d';
      /** KiB. */
      readonly memory: number;
      readonly passes: number;
      readonly parallelism: number;
      readonly salt: Buffer;
      readonly tag: Buffer;
    };

/** What a credential lookup finds: its consumer, and the credential's id (`alice/api-key/0`). */
export interface CredentialMatch {
  readonly consumer: Consumer;
  /** Stable and reveals nothing of the secret: `<consumer>/<type>/<index in its credentials list>`. */
  readonly credential: string;
}

/** A Basic credential: the match, and the hash the presented password must verify against. */
export interface PasswordCredential extends CredentialMatch {
  readonly password: PasswordHash;
}

/**
 * The consumers of the config and their credentials (built by src/policies/consumers.ts from the
 * `consumers` section, once per config load): what authentication policies look credentials up in.
 */
export interface ConsumerDirectory {
  /** The consumer named `name` (an `anonymous:` option), or undefined. */
  consumer(name: string): Consumer | undefined;
  /** The credential of an API key a client presented (compared as SHA-256 hashes), or undefined. */
  apiKey(presented: string): CredentialMatch | undefined;
  /** The Basic credential of a username, or undefined. */
  basic(username: string): PasswordCredential | undefined;
  /** The jwt credential of a verified token's issuer and subject, or undefined. */
  subject(issuer: string, subject: string): CredentialMatch | undefined;
  /**
   * The consumers' own limits for the policy named `policy` (consumer name → override), or
   * undefined when no consumer has one. A counting policy asks once per generation, so a policy
   * without overrides pays nothing per request.
   */
  limits(policy: string): ReadonlyMap<string, LimitOverride> | undefined;
  /**
   * The Basic credentials of the htpasswd file at `file` (an absolute path, as a basic-auth policy
   * names it), username → credential; undefined when no policy of the config names that file.
   */
  htpasswd(file: string): ReadonlyMap<string, PasswordCredential> | undefined;
}

/**
 * A consumer's own limit for one counting policy (`consumers.NAME.limits.<policy>`), resolved when
 * the config is loaded. `limit: 'unlimited'` lets the consumer's requests through that policy
 * uncounted (and without response fields).
 */
export interface LimitOverride {
  readonly limit: number | 'unlimited';
  /** ms; rate-limit only; undefined: the policy's window. */
  readonly window?: number;
  /** rate-limit only; undefined: the override's limit (as a policy's burst defaults to its limit). */
  readonly burst?: number;
}

/**
 * An answer made by a filter instead of the upstream's. Reply objects built once (a `respond`
 * policy) may be returned for every request: the pipeline never changes them.
 */
export interface Reply {
  readonly status: number;
  /** Lower-case names (HTTP/2 requires it). */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  readonly body?: string | Uint8Array;
  /**
   * A body read as it is sent, instead of `body` (a cache's large object, read from its file):
   * pulled one chunk at a time as the client takes them; `return()` is called when the response
   * stops early; a rejection cuts the response. `headers` must carry its Content-Length. Made per
   * request, never shared.
   */
  readonly stream?: AsyncIterator<Buffer>;
  /**
   * Switchboard's JSON error body instead of `body`:
   * `{"error":{"code","status","message","requestId"}}` (as for the gateway's own errors).
   */
  readonly error?: { readonly code: string; readonly message: string };
}

/** The head of the request about to go to an endpoint, once per try. Filters may change it. */
export interface UpstreamRequestHead {
  readonly method: string;
  /** Path and query as sent upstream (after the route's rewrite). */
  target: string;
  /** Request headers after hop-by-hop removal and the forwarding headers. */
  readonly headers: Headers;
  /** The endpoint of this try, `http://10.0.0.1:8080`. */
  readonly endpoint: string;
  /** 1 for the first try, 2 for the first retry, … */
  readonly attempt: number;
}

/** The response head on its way to the client: the upstream's, or a Reply's. Filters may change it. */
export interface ResponseHead {
  status: number;
  readonly headers: Headers;
  /** Whether it came from the endpoint (false: a Reply, or one of Switchboard's own errors). */
  readonly fromUpstream: boolean;
}

/** What a request phase hook may return: a Reply answers, undefined goes on. */
export type Verdict = Reply | undefined | Promise<Reply | undefined>;

/**
 * What a policy type builds from one policy's config: hooks, one per phase, each optional. Built
 * once per config generation; hooks run per request, so they must not compile anything.
 */
export interface Filter {
  /** The request phase. Listener filters run before routing (`s.route` undefined), route filters after. */
  onRequest?(s: Session): Verdict;
  /**
   * The request body phase: `onBody` gets the first `maxBytes` of the body (fewer when it is
   * shorter; `complete` says the whole body is in `prefix`). The body is then forwarded whole,
   * prefix included, in order. Not called for requests without a body.
   */
  requestBody?: { readonly maxBytes: number; onBody(s: Session, prefix: Buffer, complete: boolean): Verdict };
  /** Each try, just before the request head goes to the endpoint. */
  onUpstreamRequest?(s: Session, head: UpstreamRequestHead): void;
  /**
   * The response head, before it goes to the client. A Reply replaces the response (the
   * upstream's body is discarded); filters before this one then see the Reply's head.
   */
  onResponse?(s: Session, head: ResponseHead): Verdict;
  /**
   * Each chunk of the response body; `end` is true for the last call (its chunk may be empty).
   * Returns the bytes to send instead (possibly empty, to hold them back), or undefined to pass
   * `chunk` unchanged. It may return a promise of them (a transform that works off the main
   * thread, as node:zlib does): the body is held back meanwhile (the upstream paused, later chunks
   * and the end wait their turn, order kept); a rejection is treated as a throw. Throwing a
   * `ResponseCut` cuts the response on purpose, with its error code (content-filter's `maxSize`).
   */
  onResponseBody?(s: Session, chunk: Buffer, end: boolean): Buffer | undefined | Promise<Buffer | undefined>;
  /**
   * Set when `onResponseBody` never changes the bytes (it looks, counts or copies, as a cache
   * does), or changes them only to the length its `onResponse` set (a cache answering a Range
   * with its part of a full response): the response keeps its Content-Length. Otherwise a response with a body hook is sent
   * without one (chunked, or HTTP/2 framing), since the length may change. A function decides per
   * response, once its head passed every onResponse hook (compress: true for a response it leaves
   * alone).
   */
  readonly bodyUnchanged?: boolean | ((s: Session) => boolean);
  /**
   * Query parameters that carry credentials this filter reads (an api-key's `query`): the access
   * log shows their values as `[REDACTED]`. Collected once per generation.
   */
  readonly secretQueryParams?: readonly string[];
  /** Once the request is over (answered, failed or aborted). Must not throw; must be cheap. */
  onLog?(s: Session): void;
  /**
   * What a counting policy (quota) has counted for one key, for the programmatic API
   * (`Gateway.usage(policy, who)`); not called by the pipeline.
   */
  usage?(who: UsageQuery): Promise<Usage>;
  /**
   * Removes stored responses (a cache): every variant of one URL, every URL under a prefix, or
   * every object carrying a tag; returns how many objects went. For the programmatic API
   * (`Gateway.purge`) and the admin API; not called by the pipeline.
   */
  purge?(q: PurgeQuery): number | Promise<number>;
  /** What a cache's stores hold now, one entry per store; read at metrics scrape time only. */
  storeStats?(): readonly StoreStats[];
  /**
   * A username and password presented outside HTTP (a socks5 listener's RFC 1929 sub-negotiation),
   * checked against the credentials this policy accepts: the match, or undefined when they are
   * not accepted. Never rejects. Not called by the pipeline (basic-auth has it).
   */
  checkPassword?(user: string, password: string): Promise<CredentialMatch | undefined>;
}

/**
 * Thrown by an `onResponseBody` hook to cut the response on purpose (a content-filter's body past
 * its `maxSize`): the head already went out, so the response is aborted as for a failing hook
 * (HTTP/1.1: the connection closes before the body's end; HTTP/2: RST_STREAM), but the request's
 * error code is `code` (one of src/errors.ts; an unknown code counts as `POLICY_ERROR`) and it is
 * not logged as the policy's failure. Built only when a response is cut, never per chunk.
 */
export class ResponseCut extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'ResponseCut';
    this.code = code;
  }
}

/** What `Filter.purge` removes: every variant of one URL, every URL under a prefix, or every object with a tag. */
export type PurgeQuery = { readonly url: string } | { readonly prefix: string } | { readonly tag: string };

/** One store of a cache policy, as the metrics read it. */
export interface StoreStats {
  /** The store's kind (`memory`, `disk`, …): a metrics label. */
  readonly store: string;
  readonly bytes: number;
  readonly objects: number;
  /** Objects evicted to stay within the budget since the store was made (not purges or replacements). */
  readonly evictions: number;
}

/** What a cache policy did for one request, as the access log shows it (`Session.cache`). */
export type CacheLogResult = 'hit' | 'miss' | 'stale' | 'revalidated' | 'collapsed' | 'bypass';

/** Whose count `Filter.usage` reads: the parts of the policy's `key` (a missing part reads as absent). */
export interface UsageQuery {
  readonly consumer?: string;
  readonly credential?: string;
  readonly ip?: string;
  readonly path?: string;
  readonly route?: string;
  /** Request headers, for `header:NAME` keys (any case). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A count as `Filter.usage` reports it. */
export interface Usage {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** When the count starts again (ms since the epoch). */
  readonly resetAt: number;
  /** The current period (`2026-12-05`, `2026-12`). */
  readonly period: string;
}

/** One problem in a policy's config, reported like every other config error (file:line:column). */
export interface PolicyProblem {
  /** Key path inside the policy's config, e.g. `['allow', 3]`. */
  path: ReadonlyArray<string | number>;
  expected: string;
  found: string;
  /** A "did you mean" candidate. */
  hint?: string;
  /** Point at the key itself (a map key that is wrong) rather than its value. */
  atKey?: boolean;
}

/** What a policy type gets when its config is resolved (once per config load). */
export interface ResolveContext {
  /** The directory of the config file: relative file paths in a policy's config are read from it. */
  readonly baseDir: string;
  /** Environment for `${env.NAME}` templates. */
  readonly env: Readonly<Record<string, string | undefined>>;
  problem(p: PolicyProblem): void;
}

/** A request a policy makes by itself, outside any client request (`PolicyDeps.fetch`). */
export interface OwnRequest {
  readonly method: 'GET' | 'HEAD';
  /** Host as a client would send it ('' : the endpoint's, as with `hostHeader: endpoint`). */
  readonly authority: string;
  /** Path and query as a client would send them: the route's rewrite is applied. */
  readonly target: string;
  /** Request headers, lower-case names; hop-by-hop and forwarding headers are dropped. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The response to an `OwnRequest`, body read whole. */
export interface OwnResponse {
  readonly status: number;
  /** Lower-case names, hop-by-hop removed. */
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
}

/** What a policy type gets when its filter is built (once per config generation). */
export interface PolicyDeps {
  /** The policy's name in the config (`policies.<name>`). */
  readonly name: string;
  /** Its type (`type:`), as the metrics label its decisions (src/policies/events.ts). */
  readonly type: string;
  /** Logs through the gateway's process logger. */
  readonly log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /**
   * The gateway's shared state (per machine with `state.backend: memory`, per fleet with `redis`):
   * what rate limits, quotas and in-flight limits count in. The state of the generation's config: a
   * reload that changes `state:` builds new filters with the new one.
   */
  readonly state: PolicyState;
  /** The config's consumers and their credentials (empty without a `consumers` section), for authentication policies. */
  readonly consumers: ConsumerDirectory;
  /**
   * The routes that list this policy, each with its whole policy list (names and types, in order):
   * for a policy whose behaviour depends on its neighbours (authentication policies combine any-of).
   */
  readonly routes: ReadonlyMap<string, ReadonlyArray<{ readonly name: string; readonly type: string }>>;
  /**
   * Sends a request of the policy's own (a cache's background revalidation) to the upstream of
   * `route`, as a client's request on that route would go (circuit breaker, balancer, retries,
   * timeouts, header hygiene), but with no session and no filters. The body is read whole, at
   * most `maxBodySize` bytes. Undefined when it could not be made or failed (no endpoint, a
   * timeout, a larger body, a route without upstream, a retired generation); never rejects.
   */
  fetch(route: string, request: OwnRequest, maxBodySize: number): Promise<OwnResponse | undefined>;
  /**
   * The config's `state.redis` connection settings (defaults applied; durations in ms), for a
   * policy that keeps data of its own in Redis (the cache's Redis store opens its own connection
   * with them: binary values and its own failure handling). The URL may hold credentials: never log it.
   */
  readonly redis: PolicyRedis;
}

/** How to reach the config's Redis (`state.redis`). */
export interface PolicyRedis {
  readonly url: string;
  readonly prefix: string;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
}

/**
 * The shared state as policies see it: src/state/'s `StateGuard`, by its shape (policies import no
 * layer of the gateway). `user(mode)` is a view whose operations answer per `mode` while the
 * backend cannot be reached: `failOpen` allows, `failClosed` refuses, `local` counts in the process.
 */
export interface PolicyState {
  user(mode: 'failOpen' | 'failClosed' | 'local'): PolicyStateView;
  /** Whether the last operation tried on the backend succeeded (false: answers come from the fallback). */
  readonly available: boolean;
  /**
   * The state of this machine alone (the supervisor's with workers, else the process's), for what
   * should not leave the machine, such as the keys that verify tokens. Undefined when this state
   * is the machine's already (`state.backend: memory`); with `redis`, a second state beside it.
   */
  readonly machine?: PolicyState;
}

/** A JSON value, as records store it (src/state/state.ts's `JsonValue`, by its shape). */
export type StateValue = string | number | boolean | null | StateValue[] | { [key: string]: StateValue };

/** The operations of the shared state that policies use; each one atomic step (see src/state/state.ts). */
export interface PolicyStateView {
  /** Adds `delta` to a counter, which expires `ttlMs` after it was created (a fixed window); returns the new value. */
  increment(key: string, delta: number, ttlMs: number): Promise<number>;
  /** A counter's value; 0 when absent. */
  get(key: string): Promise<number>;
  /** Token bucket: takes `tokens` when the bucket holds them, else nothing. */
  take(key: string, tokens: number, capacity: number, refillPerSecond: number): Promise<{ allowed: boolean; remaining: number; retryAfterMs: number }>;
  /** A lease of a counting semaphore, or undefined when `limit` leases are held; each lease expires after `ttlMs`. */
  acquire(key: string, limit: number, ttlMs: number): Promise<string | undefined>;
  /** Returns a lease. */
  release(key: string, lease: string): Promise<void>;
  /** Stores a small JSON record under `key` (replacing what was there), expiring `ttlMs` after this call. */
  put(key: string, value: StateValue, ttlMs: number): Promise<void>;
  /** The record under `key` (a copy); undefined when absent or expired. */
  read(key: string): Promise<StateValue | undefined>;
}

/**
 * A policy type: its name in `type:`, its config schema, and its filter factory.
 * `resolve` checks what the schema cannot (addresses, files, regexes) and converts units, reporting
 * problems through `ctx.problem`; `create` then builds the filter and must not fail.
 */
export interface PolicyType<Schema extends ZodObject = ZodObject, Resolved = z.infer<Schema>> {
  readonly type: string;
  /** One line for docs/config.md and `switchboard schema`. */
  readonly description: string;
  /**
   * The strict zod object of the policy's keys (`type` excluded: the config schema adds it). Its
   * `.meta({ description })` on each key is what docs/config.md shows. Only its shape is used
   * (the schema spreads it beside `type`): checks across keys belong in `resolve`.
   */
  readonly config: Schema;
  /**
   * Called once per config load with the policy's keys as zod parsed them (`type` removed), only
   * when they passed the schema. Report problems through `ctx`; the return value is what `create`
   * gets (kept in this process: it may hold compiled objects). Without `resolve`, `create` gets the
   * parsed keys.
   */
  resolve?(raw: z.infer<Schema>, ctx: ResolveContext): Resolved;
  create(config: Resolved, deps: PolicyDeps): Filter;
  /** Whether this policy may be attached to a listener (before routing) as well as to routes; default true. Forward listeners (no routes) take every type. */
  readonly onListeners?: boolean;
  /**
   * The keys a consumer's override of a policy of this type may set (`consumers.NAME.limits.<policy>`;
   * `limit` is always one of them). Absent: policies of this type take no per-consumer overrides,
   * and naming one under a consumer's `limits` is a config error. The filter reads the overrides
   * from `deps.consumers.limits(name)`.
   */
  readonly overrideKeys?: ReadonlyArray<keyof LimitOverride>;
}
