/**
 * The `cache` policy: an RFC 9111 shared cache in the request and response phases.
 *
 *   onRequest          GET/HEAD: look the key up; fresh → a Reply (hit, Age, Cache-Status), a
 *                      client conditional → 304, one byte range → 206 (416); stale within
 *                      stale-while-revalidate → a Reply, and one background revalidation
 *                      (PolicyDeps.fetch); stale → validate upstream; missing → lead, or
 *                      wait for the request that leads (collapsing); `only-if-cached` → 504
 *   onUpstreamRequest  a stale object's validators (If-None-Match / If-Modified-Since); Range and
 *                      If-Range removed (rangeFill)
 *   onResponse         304 for our validators → the stored body with the merged headers (Reply);
 *                      upstream failed or 5xx → the stale object within stale-if-error (Reply);
 *                      storable → copy the body; an unsafe method's success → invalidate
 *   onResponseBody     the copy, chunk by chunk (a large body written to a file store as it
 *                      arrives); stored only once the whole body arrived
 *   onLog              a copy never completed (aborted, failed mid-body) is dropped; waiters released
 *
 * Sources: RFC 9111 (decided by http-cache-semantics 4, see semantics.ts for the two corrections),
 * RFC 5861 (stale-while-revalidate, stale-if-error), RFC 9211 (Cache-Status), RFC 9110 §14
 * (ranges); the response-phase copy follows undici's `lib/handler/cache-handler.js`; a Range miss
 * fetches and stores the whole object and cuts the client's range from it (`rangeFill`, as nginx
 * and Varnish do by default).
 *
 * State: the store is per process (lone process, memory), per machine (workers' memory in
 * /dev/shm, disk), or per fleet (Redis): see `storeFor`. The collapsing map is per worker process, per policy; both outlive a
 * reload (kept per gateway beside its shared state; a reload that changes the store's budget or
 * the `state:` section starts empty; the replaced store is closed by the new filter's first
 * request: see `Kept`). Per request: a `Pending` in the session's locals.
 */
import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import CachePolicy from 'http-cache-semantics';
import { parseRange } from '../../util/byte-range.ts';
import { parseDuration, parseSize } from '../../util/units.ts';
import { cachePurge, Decisions } from '../events.ts';
import type { Filter, Headers, OwnResponse, PolicyDeps, PolicyState, PolicyType, PurgeQuery, Reply, ResolveContext, Session, StoreStats, Verdict } from '../filter.ts';
import { Collapser } from './collapse.ts';
import { config, type CacheConfig } from './config.ts';
import { FileStore, readStored, sharedMemoryRoot } from './file-store.ts';
import { MemoryStore, type StoredResponse } from './memory-store.ts';
import { RedisStore } from './redis-store.ts';
import { bodySize, type CacheStore, STREAM_ABOVE, type StoreWrite } from './store.ts';
import { TieredStore } from './tiered-store.ts';
import {
  cacheStatus,
  directiveSeconds,
  hasDirective,
  ifRangeHolds,
  mergeNotModified,
  NOT_MODIFIED_FIELDS,
  normalizeHost,
  notModified,
  policyHeaders,
  policyRequest,
  sameOriginKey,
  selectedBy304,
  storedHeaders,
  tagsOf,
  unsafeMethod,
  urlKey,
  variantPart,
  varyNames,
} from './semantics.ts';

/** The resolved config: bytes and milliseconds. */
export interface ResolvedCache {
  /** The memory store's budget; 0: none. */
  readonly memory: number;
  /** The disk store (an absolute path). */
  readonly disk: { readonly path: string; readonly size: number } | undefined;
  readonly name: string;
  readonly maxObjectSize: number;
  /** Seconds. */
  readonly defaultTtl: number;
  readonly storeSetCookie: boolean;
  /** Seconds. */
  readonly staleIfError: number;
  readonly collapse: boolean;
  readonly collapseTimeout: number;
  /** A Range miss fetches and stores the whole object, the range cut from it. */
  readonly rangeFill: boolean;
  /** Request headers in the key (lower case). */
  readonly keyHeaders: readonly string[];
  /** The Redis store (redis-store.ts): bytes; its key prefix, undefined for the default. */
  readonly redis?: { readonly maxObjectSize: number; readonly prefix: string | undefined };
}

export type { PurgeQuery } from '../filter.ts';

/** What the cache decided for one request (switchboard_cache_requests_total's `result`, the access log's `cache`). */
export type CacheResult = 'hit' | 'miss' | 'revalidated' | 'stale' | 'collapsed' | 'bypass';
const RESULTS: readonly CacheResult[] = ['hit', 'miss', 'revalidated', 'stale', 'collapsed', 'bypass'];

/** One request's cache state (in the session's locals). */
class Pending {
  readonly url: string;
  /** The URL and the key's extra parts: the collapsing key, the prefix of each variant's key. */
  readonly base: string;
  readonly host: string;
  /** An unsafe method: invalidate on success. */
  readonly invalidate: boolean;
  /** The request as http-cache-semantics sees it (with the stored variants' Vary names); made only when a plain fresh hit does not decide. */
  preq: ReturnType<typeof policyRequest> | undefined = undefined;
  /** The stored variants' Vary names for this URL (undefined: none stored). */
  vary: readonly string[] | undefined = undefined;
  /** A stored object that needs validation (stale, or the request asked for it). */
  entry: StoredResponse | undefined = undefined;
  /** Our validators for the upstream request. */
  conditional: Record<string, string> | undefined = undefined;
  /** This request leads the collapsed ones of `base`, until `settled`. */
  leader = false;
  settled = false;
  /** The waiters of a leader were served from the store. */
  collapsed = false;
  /** The copy of the response body being made, when the response is storable. */
  writer: Writer | undefined = undefined;
  /** The whole body arrived and the store is writing it: the collapsed requests are settled by the write. */
  storing = false;
  /** The client's Range, when the whole object is fetched instead (`rangeFill`); undefined otherwise. */
  range: string | undefined = undefined;
  /** The bytes of the full response the client gets (a range filled: 206), and how far the body is. */
  slice: { readonly start: number; readonly end: number; pos: number } | undefined = undefined;

  constructor(url: string, base: string, host: string, invalidate: boolean) {
    this.url = url;
    this.base = base;
    this.host = host;
    this.invalidate = invalidate;
  }
}

interface Writer {
  readonly key: string;
  readonly vary: readonly string[] | undefined;
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly policy: CachePolicy;
  readonly mustRevalidate: boolean;
  readonly length: number | undefined;
  /** The body so far, while it is small (up to STREAM_ABOVE, store.ts); then `stream` has it. */
  chunks: Buffer[];
  size: number;
  /** The store's streamed write, once the body is known to be large (a file store). */
  stream: StoreWrite | undefined;
}

/**
 * The store and collapsing map of one policy, kept across reloads: per gateway (its state object),
 * per policy name. `retired`: stores a reload replaced, closed by the first request through the
 * new filter (so a reload that fails after building its filters leaves the serving store open).
 */
interface Kept {
  readonly spec: string;
  readonly store: CacheStore;
  readonly collapser: Collapser;
  readonly retired: CacheStore[];
}
const kept = new WeakMap<PolicyState, Map<string, Kept>>();

/**
 * The store `c` asks for. State scope: `memory` in a lone process is an in-process LRU (per
 * process: there is no other process to share with); `memory` under workers is a file store in
 * /dev/shm named after the supervisor (per machine: one copy in RAM that every worker of this
 * gateway reads and writes, so a response stored by one worker is a hit in the others and a purge
 * in one reaches all); `disk` is per machine and outlives the process. Both: memory in front.
 */
function storeFor(deps: PolicyDeps, c: ResolvedCache): Kept {
  let byName = kept.get(deps.state);
  if (byName === undefined) {
    byName = new Map();
    kept.set(deps.state, byName);
  }
  const shared = cluster.isWorker;
  const r = c.redis;
  const spec = `${c.memory}:${shared}:${c.disk?.path}:${c.disk?.size}${r === undefined ? '' : `:${JSON.stringify([r, deps.redis])}`}`;
  const found = byName.get(deps.name);
  if (found !== undefined && found.spec === spec) return found;
  let memory: CacheStore | undefined;
  let frontId: string | undefined;
  if (c.memory > 0) {
    if (shared) {
      const root = sharedMemoryRoot(process.ppid, deps.name);
      // The machine's one front: its workers' Redis messages are its own (see RedisStoreOptions.frontId).
      frontId = createHash('sha256').update(`${hostname()}\0${root}`).digest('base64url').slice(0, 16);
      memory = new FileStore({ path: root, maxSize: c.memory, durable: false, kind: 'memory-shared' });
    } else memory = new MemoryStore(c.memory);
  }
  const disk = c.disk === undefined ? undefined : new FileStore({ path: c.disk.path, maxSize: c.disk.size, durable: true, kind: 'disk' });
  let back: CacheStore | undefined = disk;
  if (r !== undefined) {
    // Per fleet, see redis-store.ts; with memory in front, purges reach every instance's memory by Redis PUBLISH.
    const { url, connectTimeout, commandTimeout } = deps.redis;
    const prefix = r.prefix ?? `${deps.redis.prefix}cache:${deps.name}:`;
    back = new RedisStore({
      url,
      prefix,
      connectTimeout,
      commandTimeout,
      maxObjectSize: r.maxObjectSize,
      staleIfError: c.staleIfError,
      log: deps.log,
      front: memory,
      frontId,
    });
  }
  const store = memory !== undefined && back !== undefined ? new TieredStore(memory, back) : (memory ?? back);
  // The replaced store's connections (Redis) are closed once the new generation serves (see Kept).
  const made: Kept = { spec, store: store as CacheStore, collapser: new Collapser(), retired: found === undefined ? [] : [...found.retired.splice(0), found.store] };
  byName.set(deps.name, made);
  return made;
}

const EMPTY = Buffer.alloc(0);

function record(h: Headers): Record<string, string | string[]> {
  return storedHeaders((fn) => h.forEach(fn));
}

/** The `cache` filter; see the module comment. */
export class CacheFilter implements Filter {
  /** The bytes are the upstream's, or (rangeFill) the range whose Content-Length onResponse set. */
  readonly bodyUnchanged = true;
  readonly store: CacheStore;
  readonly #collapser: Collapser;
  readonly #c: ResolvedCache;
  readonly #decisions: Decisions<CacheResult>;
  readonly #name: string;
  readonly #fetch: PolicyDeps['fetch'];
  /**
   * Routes where this cache is the last policy: no filter after it shaped what it stored, so a
   * response fetched in the background (without filters) may be stored as it is.
   */
  readonly #storesOwnFetches = new Set<string>();
  /**
   * Stored objects whose background revalidation brought a new response that could not be stored
   * here (filters after the cache shape what it stores): the next request validates in the
   * foreground, through the filters. Per worker, per filter (a weak set: gone with the object).
   */
  readonly #foreground = new WeakSet<StoredResponse>();
  /** Stores a reload replaced, closed by this filter's first request (Kept.retired); undefined once done. */
  #retired: CacheStore[] | undefined;

  constructor(c: ResolvedCache, deps: PolicyDeps) {
    this.#c = c;
    const k = storeFor(deps, c);
    this.store = k.store;
    this.#collapser = k.collapser;
    if (k.retired.length > 0) this.#retired = k.retired;
    this.#decisions = new Decisions(deps.name, deps.type, RESULTS);
    this.#name = deps.name;
    this.#fetch = deps.fetch;
    for (const [route, chain] of deps.routes) if (chain.at(-1)?.name === deps.name) this.#storesOwnFetches.add(route);
  }

  /** This generation serves: the stores it replaced close (their requests still in flight miss). */
  #closeRetired(): void {
    for (const old of this.#retired!.splice(0)) old.close?.();
    this.#retired = undefined;
  }

  /** Records what the cache did for `s`: the metrics' decision, the access log's field. */
  #result(s: Session, r: CacheResult): void {
    s.cache = r;
    this.#decisions.publish(r);
  }

  onRequest(s: Session): Verdict {
    if (this.#retired !== undefined) this.#closeRetired();
    const req = s.request;
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') {
      if (unsafeMethod(method)) s.local(this, new Pending(urlKey(req.scheme, req.authority, req.path, req.query), '', '', true));
      return undefined;
    }
    if (req.upgrade) return undefined;
    const url = urlKey(req.scheme, req.authority, req.path, req.query);
    let base = url;
    const keyHeaders = this.#c.keyHeaders;
    if (keyHeaders.length > 0) base += `\n${variantPart(keyHeaders, req.headers)}`;
    const p = new Pending(url, base, normalizeHost(req.authority, req.scheme), false);
    const range = req.headers.range;
    if (method === 'GET' && typeof range === 'string' && this.#c.rangeFill) p.range = range;
    s.local(this, p);
    return this.#lookup(s, p, true);
  }

  /** Looks `p` up: a Reply for a hit (or a 504 for only-if-cached), a wait, or undefined to go upstream. */
  #lookup(s: Session, p: Pending, mayWait: boolean): Verdict {
    // The in-process store answers at once; a file store with promises.
    const vary = this.store.varyOf(p.url);
    if (vary instanceof Promise) return vary.then((v) => this.#lookupVariant(s, p, mayWait, v));
    return this.#lookupVariant(s, p, mayWait, vary);
  }

  #lookupVariant(s: Session, p: Pending, mayWait: boolean, vary: readonly string[] | undefined): Verdict {
    p.vary = vary;
    const entry = this.store.get(p.base + variantPart(vary, s.request.headers));
    if (entry instanceof Promise) return entry.then((e) => this.#decide(s, p, mayWait, e));
    return this.#decide(s, p, mayWait, entry);
  }

  #decide(s: Session, p: Pending, mayWait: boolean, entry: StoredResponse | undefined): Verdict {
    const headers = s.request.headers;
    if (
      entry !== undefined &&
      mayWait &&
      headers['cache-control'] === undefined &&
      headers.pragma === undefined &&
      !entry.policy.stale() &&
      (p.vary === undefined || !p.vary.includes('*'))
    ) {
      // The common hit, decided here: what http-cache-semantics' evaluateRequest would answer for a
      // request without Cache-Control or Pragma to a fresh object whose key (URL, host, the Vary
      // values) it matched (must-revalidate is never given to it: semantics.ts), without building
      // its request view and a copy of the stored headers for every hit.
      this.#result(s, 'hit');
      return this.#serve(s, entry, 'hit');
    }
    p.preq = policyRequest(p.url, p.host, headers, p.vary);
    if (entry !== undefined) {
      const ev = entry.policy.evaluateRequest(p.preq);
      const stale = entry.policy.stale();
      if (ev.response !== undefined && ev.revalidation?.synchronous === false && !entry.mustRevalidate && !this.#foreground.has(entry) && s.route !== undefined) {
        // stale-while-revalidate (RFC 5861 §3): the stale object now, one revalidation in the background.
        this.#revalidateInBackground(s, p, entry, s.route);
        this.#result(s, 'stale');
        return this.#serve(s, entry, 'fwd=stale; detail=stale-while-revalidate');
      }
      if (ev.response !== undefined && ev.revalidation === undefined && !(stale && entry.mustRevalidate)) {
        this.#result(s, mayWait ? 'hit' : 'collapsed');
        return this.#serve(s, entry, mayWait ? 'hit' : 'hit; collapsed');
      }
      p.entry = entry;
      const rh = entry.policy.revalidationHeaders(p.preq);
      const conditional: Record<string, string> = {};
      for (const n of ['if-none-match', 'if-modified-since']) {
        const v = rh[n];
        if (typeof v === 'string') conditional[n] = v;
      }
      p.conditional = conditional;
    }
    if (hasDirective(headers['cache-control'], 'only-if-cached')) {
      this.#result(s, 'miss');
      return {
        status: 504,
        headers: { 'cache-status': cacheStatus(this.#c.name, 'fwd=miss; detail=only-if-cached') },
        error: { code: 'NOT_CACHED', message: 'only-if-cached: nothing fresh is stored for this request' },
      };
    }
    if (s.request.method === 'GET' && this.#c.collapse) {
      if (this.#collapser.lead(p.base)) p.leader = true;
      else if (mayWait) return this.#wait(s, p);
    }
    if (mayWait) this.#result(s, p.entry === undefined ? 'miss' : 'revalidated');
    return undefined;
  }

  async #wait(s: Session, p: Pending): Promise<Reply | undefined> {
    this.#result(s, 'collapsed');
    const outcome = await this.#collapser.wait(p.base, this.#c.collapseTimeout);
    if (outcome !== 'filled') return undefined;
    p.entry = undefined;
    p.conditional = undefined;
    return this.#lookup(s, p, false);
  }

  /**
   * One background revalidation of `entry` (none when one is in flight for its key: the collapser
   * has a leader), with the stored validators and the request headers its variant was selected
   * by. A 304 updates the stored object; a new storable response replaces it; a failure leaves it.
   */
  #revalidateInBackground(s: Session, p: Pending, entry: StoredResponse, route: string): void {
    const key = entry.key;
    if (!this.#collapser.lead(key)) return;
    const req = s.request;
    const sent: Record<string, string> = {};
    const copy = (n: string): void => {
      const v = req.headers[n];
      if (v !== undefined) sent[n] = Array.isArray(v) ? v.join(', ') : v;
    };
    if (entry.vary !== undefined) for (const n of entry.vary) copy(n);
    for (const n of this.#c.keyHeaders) copy(n);
    copy('authorization');
    const preq = p.preq!;
    const rh = entry.policy.revalidationHeaders(preq);
    for (const n of ['if-none-match', 'if-modified-since']) {
      const v = rh[n];
      if (typeof v === 'string') sent[n] = v;
    }
    const target = req.path + req.query;
    // A background fetch is held whole in memory: a larger new body is not stored from here (the next request in the foreground streams it).
    this.#fetch(route, { method: 'GET', authority: req.authority, target, headers: sent }, Math.min(this.#c.maxObjectSize, 8 * STREAM_ABOVE))
      .then((r) => this.#revalidated(p, entry, preq, sent, r, route))
      .then(
        (outcome) => {
          if (outcome === 'filled') this.#decisions.publish('revalidated');
          this.#collapser.done(key, outcome);
        },
        () => this.#collapser.done(key, 'released'),
      );
  }

  /** What a background revalidation's response does to the store. */
  async #revalidated(
    p: Pending,
    entry: StoredResponse,
    preq: NonNullable<Pending['preq']>,
    sent: Record<string, string>,
    r: OwnResponse | undefined,
    route: string,
  ): Promise<'filled' | 'released'> {
    if (r === undefined || r.status >= 500) return 'released';
    // Purged or replaced meanwhile: not brought back. (A file store reads a new object each time:
    // the same response is told by its status, length and validators.)
    const current = await this.store.get(entry.key);
    if (current === undefined || !sameStored(current, entry)) return 'released';
    const h = r.headers;
    const fresh = storedHeaders((fn) => {
      for (const n in h) {
        const v = h[n];
        if (typeof v === 'string') fn(v, n);
        else for (const one of v) fn(one, n);
      }
    });
    const age = typeof h.age === 'string' ? h.age : undefined;
    if (r.status === 304) {
      if (!selectedBy304(entry.headers, fresh) || !entry.policy.revalidatedPolicy(preq, { status: 304, headers: fresh }).matches) return 'released';
      this.#refresh(entry, preq, fresh, age);
      return 'filled';
    }
    const w = this.#storable(sent, p, r.status, h['set-cookie'] !== undefined, h.vary, h['content-length'], fresh, age);
    const sameVariant = w !== undefined && w.key === entry.key;
    if (!this.#storesOwnFetches.has(route) || !sameVariant) {
      // The next request validates in the foreground, through the filters after the cache.
      this.#foreground.add(entry);
      return 'released';
    }
    const stored = await this.store.put({
      key: w.key,
      url: p.url,
      vary: w.vary,
      policy: w.policy,
      status: w.status,
      headers: w.headers,
      body: r.body,
      mustRevalidate: w.mustRevalidate,
      tags: tagsOf(w.headers),
    });
    return stored ? 'filled' : 'released';
  }

  /** A Reply from a stored object: 304 for a matching client conditional, else its status, headers and body (none for HEAD). */
  #serve(s: Session, e: StoredResponse, params: string): Reply {
    const age = e.policy.age();
    const status = cacheStatus(this.#c.name, params, e.policy.maxAge() - age);
    const ageValue = String(Math.floor(age));
    if (e.status === 200 && notModified(s.request.headers, e.headers)) {
      const headers: Record<string, string | string[]> = { age: ageValue, 'cache-status': status };
      for (const n of NOT_MODIFIED_FIELDS) if (e.headers[n] !== undefined) headers[n] = e.headers[n];
      return { status: 304, headers };
    }
    const range = s.request.method === 'GET' && e.status === 200 ? s.request.headers.range : undefined;
    const size = bodySize(e);
    if (typeof range === 'string' && ifRangeHolds(s.request.headers['if-range'], e.headers)) {
      // A single byte range from the stored full response (RFC 9110 §14); several ranges, or one
      // that does not parse: the whole response (§14.2 allows ignoring Range).
      const r = parseRange(range, size);
      if (r === 'unsatisfiable') return { status: 416, headers: { 'content-range': `bytes */${size}`, age: ageValue, 'cache-status': status } };
      if (r !== undefined) {
        const partial = {
          ...e.headers,
          'content-range': `bytes ${r.start}-${r.end}/${size}`,
          'content-length': String(r.end - r.start + 1),
          age: ageValue,
          'cache-status': status,
        };
        if (e.file !== undefined) return { status: 206, headers: partial, stream: readStored(e.file, r.start, r.end + 1) };
        return { status: 206, headers: partial, body: e.body.subarray(r.start, r.end + 1) };
      }
    }
    const headers: Record<string, string | string[]> = { ...e.headers, age: ageValue, 'cache-status': status };
    if (s.request.method === 'HEAD') {
      if (headers['content-length'] === undefined) headers['content-length'] = String(size);
      return { status: e.status, headers };
    }
    // A large object from its file, as the client takes it (bounded memory).
    if (e.file !== undefined) return { status: e.status, headers: { ...headers, 'content-length': String(size) }, stream: readStored(e.file, 0, size) };
    return { status: e.status, headers, body: e.body };
  }

  onUpstreamRequest(s: Session, head: { readonly headers: Headers }): void {
    const p = s.local<Pending>(this);
    if (p === undefined) return;
    if (p.range !== undefined) {
      // rangeFill: the whole object, to store; the client's range is cut from it (onResponse).
      head.headers.delete('range');
      head.headers.delete('if-range');
    }
    const c = p.conditional;
    if (c === undefined) return;
    for (const n in c) head.headers.set(n, c[n]);
  }

  onResponse(s: Session, head: { status: number; readonly headers: Headers; readonly fromUpstream: boolean }): Verdict {
    const p = s.local<Pending>(this);
    if (p === undefined) return undefined;
    const status = head.status;
    if (p.invalidate) {
      if (head.fromUpstream && status < 400) return this.#invalidate(p.url, head.headers);
      return undefined;
    }
    const name = this.#c.name;
    if (!head.fromUpstream || status >= 500) {
      this.#settle(p, 'released');
      const e = p.entry;
      if (e !== undefined && this.#staleIfError(e)) {
        this.#result(s, 'stale');
        return this.#serve(s, e, `fwd=stale; fwd-status=${status}; detail=stale-if-error`);
      }
      if (head.fromUpstream) head.headers.append('cache-status', cacheStatus(name, `fwd=${p.entry === undefined ? 'miss' : 'stale'}; fwd-status=${status}`));
      return undefined;
    }
    if (status === 304 && p.entry !== undefined && p.preq !== undefined) {
      const fresh = record(head.headers);
      if (selectedBy304(p.entry.headers, fresh) && p.entry.policy.revalidatedPolicy(p.preq, { status: 304, headers: fresh }).matches) {
        const e = this.#refresh(p.entry, p.preq, fresh, head.headers.get('age'));
        this.#settle(p, 'filled');
        return this.#serve(s, e, 'fwd=stale; fwd-status=304');
      }
    }
    const fwd = p.entry === undefined ? 'fwd=miss' : 'fwd=stale';
    const w = s.request.method === 'GET' ? this.#writerFor(s, p, status, head.headers) : undefined;
    if (w === undefined) {
      this.#settle(p, 'released');
      // Not stored (uncacheable, or larger than maxObjectSize): the client still gets its range.
      if (p.range !== undefined && status === 200 && s.request.method === 'GET') this.#fillRange(s, p, head);
      head.headers.append('cache-status', cacheStatus(name, `${fwd}; fwd-status=${status}`));
      return undefined;
    }
    p.writer = w;
    if (p.range !== undefined && status === 200) this.#fillRange(s, p, head);
    // RFC 9211 `stored` says the response was stored: claimed only when the length is known to fit
    // (the head goes out before the body). An unknown length may still be stored, unclaimed.
    const claim = w.length === undefined ? '' : '; stored';
    head.headers.append('cache-status', cacheStatus(name, `${fwd}; fwd-status=${status}${claim}`, w.policy.maxAge() - w.policy.age()));
    return undefined;
  }

  /**
   * rangeFill: the full 200 fetched for a client's Range becomes its 206 when the range can be cut
   * from it (a known length, one satisfiable range, If-Range holding against the new response);
   * otherwise the full 200 goes to the client, which RFC 9110 §14.2 allows.
   */
  #fillRange(s: Session, p: Pending, head: { status: number; readonly headers: Headers }): void {
    const h = head.headers;
    const cl = h.get('content-length');
    const size = cl === undefined ? Number.NaN : Number(cl);
    if (!Number.isSafeInteger(size) || !ifRangeHolds(s.request.headers['if-range'], record(h))) return;
    const r = parseRange(p.range!, size);
    if (r === undefined || r === 'unsatisfiable') return;
    p.slice = { start: r.start, end: r.end, pos: 0 };
    head.status = 206;
    h.set('content-range', `bytes ${r.start}-${r.end}/${size}`);
    h.set('content-length', String(r.end - r.start + 1));
  }

  /** The copy of a storable response about to be streamed, or undefined when it is not to be stored. */
  #writerFor(s: Session, p: Pending, status: number, h: Headers): Writer | undefined {
    return this.#storable(s.request.headers, p, status, h.has('set-cookie'), h.getAll('vary'), h.get('content-length'), record(h), h.get('age'));
  }

  /**
   * The copy of a storable response (a client's, or one fetched in the background), or undefined
   * when it is not to be stored. `stored` is the response's headers as they would be stored.
   */
  #storable(
    requestHeaders: Readonly<Record<string, string | string[] | undefined>>,
    p: Pending,
    status: number,
    setCookie: boolean,
    varyValue: string | string[] | undefined,
    cl: string | string[] | undefined,
    stored: Record<string, string | string[]>,
    age: string | undefined,
  ): Writer | undefined {
    const c = this.#c;
    // A partial response is never stored as the object (ranges are answered from a full one).
    if (status === 206) return undefined;
    if (!c.storeSetCookie && setCookie) return undefined;
    const vary = varyNames(varyValue);
    if (vary?.[0] === '*') return undefined;
    const length = typeof cl === 'string' ? Number(cl) : undefined;
    if (length !== undefined && !(length <= c.maxObjectSize)) return undefined;
    const preq = policyRequest(p.url, p.host, requestHeaders, vary);
    // Storability on the headers as sent (Authorization rules read must-revalidate), freshness on the corrected ones.
    if (!new CachePolicy(preq, { status, headers: stored }, { shared: true }).storable()) return undefined;
    const fresh = policyHeaders(stored, c.defaultTtl);
    if (!fresh.explicit) return undefined;
    const policy = new CachePolicy(preq, { status, headers: withAge(fresh.headers, age) }, { shared: true });
    if (!policy.storable()) return undefined;
    if (policy.timeToLive() <= 0 && stored.etag === undefined && stored['last-modified'] === undefined) return undefined;
    return {
      key: p.base + variantPart(vary, requestHeaders),
      vary,
      status,
      headers: stored,
      policy,
      mustRevalidate: fresh.mustRevalidate,
      length,
      chunks: [],
      size: 0,
      stream: undefined,
    };
  }

  onResponseBody(s: Session, chunk: Buffer, end: boolean): Buffer | undefined | Promise<Buffer | undefined> {
    const p = s.local<Pending>(this);
    if (p === undefined) return undefined;
    // rangeFill: the client gets its range of the full body (the store gets all of it).
    const out = p.slice === undefined ? undefined : cut(p.slice, chunk);
    const w = p.writer;
    if (w === undefined) return out;
    if (chunk.length > 0) {
      w.size += chunk.length;
      if (w.size > this.#c.maxObjectSize) {
        // Streamed past the cache from here on.
        p.writer = undefined;
        w.stream?.abort();
        this.#settle(p, 'released');
        return out;
      }
      if (w.stream === undefined && (w.size > STREAM_ABOVE || (w.length ?? 0) > STREAM_ABOVE)) {
        // A large body: written to the store as it arrives, when the store can (a file store).
        w.stream = this.store.open?.(this.#entry(p, w, EMPTY));
        if (w.stream !== undefined) for (const c of w.chunks.splice(0)) w.stream.write(c);
      }
      if (w.stream !== undefined) w.stream.write(chunk);
      else w.chunks.push(chunk);
    }
    if (end) {
      p.writer = undefined;
      const complete = w.length === undefined || w.length === w.size;
      let stored: boolean | Promise<boolean>;
      if (w.stream !== undefined) {
        if (complete) stored = w.stream.end(this.#entry(p, w, EMPTY));
        else {
          w.stream.abort();
          stored = false;
        }
      } else stored = complete && this.store.put(this.#entry(p, w, w.chunks.length === 1 ? w.chunks[0] : Buffer.concat(w.chunks, w.size)));
      if (stored instanceof Promise) {
        // Requests collapsed behind this one wait for the write (not released when this one is logged).
        p.storing = true;
        void stored.then((ok) => this.#settle(p, ok ? 'filled' : 'released'));
      } else this.#settle(p, stored ? 'filled' : 'released');
      return out;
    }
    // A store slower than the upstream holds the body back (bounded memory), not the other way round.
    if (w.stream !== undefined && w.stream.pending > STREAM_ABOVE) return w.stream.drained().then(() => out);
    return out;
  }

  /** The object `w` copies, with `body`. */
  #entry(p: Pending, w: Writer, body: Buffer): StoredResponse {
    return {
      key: w.key,
      url: p.url,
      vary: w.vary,
      policy: w.policy,
      status: w.status,
      headers: w.headers,
      body,
      mustRevalidate: w.mustRevalidate,
      tags: tagsOf(w.headers),
    };
  }

  onLog(s: Session): void {
    const p = s.local<Pending>(this);
    if (p === undefined) return;
    // A copy that never saw the body's end (aborted, failed mid-body, cut) is dropped here.
    p.writer?.stream?.abort();
    p.writer = undefined;
    if (!p.storing) this.#settle(p, 'released');
  }

  /** Removes stored objects: by URL (`https://host/path?query`), by URL prefix, or by tag. Returns how many went. */
  purge(q: PurgeQuery): number | Promise<number> {
    const kind = 'tag' in q ? 'tag' : 'prefix' in q ? 'prefix' : 'url';
    let n: number | Promise<number>;
    if ('tag' in q) n = this.store.deleteTag(q.tag);
    else if ('prefix' in q) n = this.store.deletePrefix(normalizeUrl(q.prefix) ?? q.prefix);
    else {
      const url = normalizeUrl(q.url);
      n = url === undefined ? 0 : this.store.deleteUrl(url);
    }
    const published = (objects: number): number => {
      if (cachePurge.hasSubscribers) cachePurge.publish({ policy: this.#name, kind, objects });
      return objects;
    };
    return typeof n === 'number' ? published(n) : n.then(published);
  }

  /** The store's size and evictions, for the metrics (read at scrape time). */
  storeStats(): readonly StoreStats[] {
    const st = this.store.stats();
    return [{ store: this.store.kind, bytes: st.bytes, objects: st.objects, evictions: st.evictions }];
  }

  #settle(p: Pending, outcome: 'filled' | 'released'): void {
    if (!p.leader || p.settled) return;
    p.settled = true;
    this.#collapser.done(p.base, outcome);
  }

  /** A stored object updated from a 304 (RFC 9111 §3.2): merged headers, a new policy; stored again. */
  #refresh(e: StoredResponse, preq: NonNullable<Pending['preq']>, fresh: Record<string, string | string[]>, age: string | undefined): StoredResponse {
    const headers = mergeNotModified(e.headers, fresh);
    const f = policyHeaders(headers, this.#c.defaultTtl);
    const request = policyRequest(preq.url, preq.headers.host as string, preq.headers, e.vary);
    const policy = new CachePolicy(request, { status: e.status, headers: withAge(f.headers, age) }, { shared: true });
    const updated: StoredResponse = { ...e, headers, policy, mustRevalidate: f.mustRevalidate, tags: tagsOf(headers) };
    void this.store.put(updated);
    return updated;
  }

  /** Whether `e` may be served because the upstream failed: its own stale-if-error, or the configured grace. */
  #staleIfError(e: StoredResponse): boolean {
    if (e.mustRevalidate) return false;
    const over = e.policy.age() - e.policy.maxAge();
    const allowed = Math.max(directiveSeconds(e.headers['cache-control'], 'stale-if-error') ?? 0, this.#c.staleIfError);
    // Without a grace, an object that needed validation (stale, no-cache, or refused by the
    // request's no-cache/max-age) is never served on an error: only a successful validation may.
    return allowed > 0 && over < allowed;
  }

  /** RFC 9111 §4.4: the target, and same-origin Location and Content-Location. */
  #invalidate(url: string, h: Headers): Promise<undefined> | undefined {
    const pending = [this.store.deleteUrl(url)];
    for (const n of ['location', 'content-location']) {
      const other = sameOriginKey(h.get(n), url);
      if (other !== undefined) pending.push(this.store.deleteUrl(other));
    }
    // A file store's deletes finish before the response goes on, so the next request misses.
    if (pending.some((d) => d instanceof Promise)) return Promise.all(pending).then(() => undefined);
    return undefined;
  }
}

/** The part of `chunk` inside `slice` (the body so far at `slice.pos`); advances it. */
function cut(slice: { readonly start: number; readonly end: number; pos: number }, chunk: Buffer): Buffer {
  const from = slice.pos;
  slice.pos += chunk.length;
  const a = Math.max(slice.start - from, 0);
  const b = Math.min(slice.end + 1 - from, chunk.length);
  return a >= b ? EMPTY : a === 0 && b === chunk.length ? chunk : chunk.subarray(a, b);
}

/**
 * The headers a policy is built from: `age` is not stored with the headers (each answer sends its
 * own), but the age the response arrived with counts in its freshness (RFC 9111 §4.2.3).
 */
function withAge(headers: Record<string, string | string[] | undefined>, age: string | undefined): Record<string, string | string[] | undefined> {
  return age === undefined ? headers : { ...headers, age };
}

/** A purge's URL in the key's form (host normalised, default port dropped); undefined when it does not parse. */
function normalizeUrl(value: string): string | undefined {
  try {
    const u = new URL(value);
    const scheme = u.protocol.slice(0, -1);
    return `${scheme}://${normalizeHost(u.host, scheme)}${u.pathname}${u.search}`;
  } catch {
    return undefined;
  }
}

function resolve(raw: CacheConfig, ctx: ResolveContext): ResolvedCache {
  const memory = raw.store.memory === undefined ? 0 : parseSize(raw.store.memory);
  if (raw.store.memory !== undefined && memory <= 0) ctx.problem({ path: ['store', 'memory'], expected: 'a size above 0', found: JSON.stringify(raw.store.memory) });
  let disk: ResolvedCache['disk'];
  if (raw.store.disk !== undefined) {
    disk = { path: resolvePath(ctx.baseDir, raw.store.disk.path), size: parseSize(raw.store.disk.size) };
    if (disk.size <= 0) ctx.problem({ path: ['store', 'disk', 'size'], expected: 'a size above 0', found: JSON.stringify(raw.store.disk.size) });
  }
  let redis: ResolvedCache['redis'];
  if (raw.store.redis !== undefined) {
    redis = { maxObjectSize: parseSize(raw.store.redis.maxObjectSize ?? '64KiB'), prefix: raw.store.redis.prefix };
    if (redis.maxObjectSize <= 0)
      ctx.problem({ path: ['store', 'redis', 'maxObjectSize'], expected: 'a size above 0', found: JSON.stringify(raw.store.redis.maxObjectSize) });
    if (disk !== undefined) ctx.problem({ path: ['store', 'redis'], expected: 'redis alone or with memory (not with disk)', found: 'redis with disk' });
  } else if (raw.store.memory === undefined && disk === undefined) ctx.problem({ path: ['store'], expected: 'memory, disk, both, or redis', found: '{}' });
  const budget = Math.max(memory, disk?.size ?? 0, redis?.maxObjectSize ?? 0);
  // Disk: large objects are streamed to and from their files, so the default follows nginx and
  // Varnish (no per-object limit of their own) up to an eighth of the budget, at most 1 GiB.
  const small = Math.min(8 * 1024 * 1024, budget);
  const defaultMax = disk === undefined ? small : Math.max(small, Math.min(1024 * 1024 * 1024, Math.floor(disk.size / 8)));
  const maxObjectSize = raw.maxObjectSize === undefined ? defaultMax : parseSize(raw.maxObjectSize);
  if (maxObjectSize > budget)
    ctx.problem({ path: ['maxObjectSize'], expected: `at most the store's budget (${budget} bytes)`, found: JSON.stringify(raw.maxObjectSize) });
  return {
    memory,
    disk,
    name: raw.name ?? 'Switchboard',
    maxObjectSize,
    defaultTtl: parseDuration(raw.defaultTtl ?? 0) / 1000,
    storeSetCookie: raw.storeSetCookie ?? false,
    staleIfError: parseDuration(raw.staleIfError ?? 0) / 1000,
    collapse: raw.collapse ?? true,
    rangeFill: raw.rangeFill ?? true,
    collapseTimeout: parseDuration(raw.collapseTimeout ?? '5s'),
    keyHeaders: (raw.key?.headers ?? []).map((h) => h.toLowerCase()),
    redis,
  };
}

/** The `cache` policy type. */
export const cachePolicy = {
  type: 'cache',
  description:
    'An RFC 9111 HTTP cache: stores responses (memory shared by a machine’s workers, disk), serves hits with Age and Cache-Status, validates, collapses misses.',
  config,
  resolve,
  create: (c: ResolvedCache, deps: PolicyDeps) => new CacheFilter(c, deps),
  onListeners: false,
} satisfies PolicyType<typeof config, ResolvedCache>;

/** Whether `a` and `b` are the same stored response (the same object, or read again from a file store). */
function sameStored(a: StoredResponse, b: StoredResponse): boolean {
  if (a === b) return true;
  const ha = a.headers;
  const hb = b.headers;
  return a.status === b.status && bodySize(a) === bodySize(b) && ha.etag === hb.etag && ha.date === hb.date && ha['last-modified'] === hb['last-modified'];
}
