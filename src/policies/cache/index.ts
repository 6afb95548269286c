/**
 * The `cache` policy: an RFC 9111 shared cache in the request and response phases.
 *
 *   onRequest          GET/HEAD: look the key up; fresh → a Reply (hit, Age, Cache-Status), a
 *                      client conditional → 304; stale → validate upstream; missing → lead, or
 *                      wait for the request that leads (collapsing); `only-if-cached` → 504
 *   onUpstreamRequest  a stale object's validators (If-None-Match / If-Modified-Since)
 *   onResponse         304 for our validators → the stored body with the merged headers (Reply);
 *                      upstream failed or 5xx → the stale object within stale-if-error (Reply);
 *                      storable → copy the body; an unsafe method's success → invalidate
 *   onResponseBody     the copy, chunk by chunk; stored only once the whole body arrived
 *   onLog              a copy never completed (aborted, failed mid-body) is dropped; waiters released
 *
 * Sources: RFC 9111 (decided by http-cache-semantics 4, see semantics.ts for the two corrections),
 * RFC 5861 (stale-if-error), RFC 9211 (Cache-Status); the response-phase copy follows undici's
 * `lib/handler/cache-handler.js`. Not yet: stale-while-revalidate (served as stale → validate),
 * Range requests from a stored object, the Redis store.
 *
 * State: the store is per process (lone process, memory), or per machine (workers' memory in
 * /dev/shm, disk): see `storeFor`. The collapsing map is per worker process, per policy; both outlive a
 * reload (kept per gateway beside its shared state; a reload that changes the store's budget or
 * the `state:` section starts empty). Per request: a `Pending` in the session's locals.
 */
import cluster from 'node:cluster';
import { resolve as resolvePath } from 'node:path';
import CachePolicy from 'http-cache-semantics';
import { parseDuration, parseSize } from '../../util/units.ts';
import { Decisions } from '../events.ts';
import type { Filter, Headers, PolicyDeps, PolicyState, PolicyType, Reply, ResolveContext, Session, Verdict } from '../filter.ts';
import { Collapser } from './collapse.ts';
import { config, type CacheConfig } from './config.ts';
import { FileStore, sharedMemoryRoot } from './file-store.ts';
import { MemoryStore, type StoredResponse } from './memory-store.ts';
import type { CacheStore } from './store.ts';
import { TieredStore } from './tiered-store.ts';
import {
  cacheStatus,
  directiveSeconds,
  hasDirective,
  mergeNotModified,
  NOT_MODIFIED_FIELDS,
  normalizeHost,
  notModified,
  policyHeaders,
  policyRequest,
  sameOriginKey,
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
  /** Request headers in the key (lower case). */
  readonly keyHeaders: readonly string[];
}

/** What a purge removes: every variant of one URL, every URL under a prefix, or every object with a tag. */
export type PurgeQuery = { readonly url: string } | { readonly prefix: string } | { readonly tag: string };

/** What the cache decided for one request (a metrics label: switchboard_policy_decisions_total). */
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
  /** The request as http-cache-semantics sees it (with the stored variants' Vary names). */
  preq: ReturnType<typeof policyRequest> | undefined = undefined;
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
  readonly chunks: Buffer[];
  size: number;
}

/** The store and collapsing map of one policy, kept across reloads: per gateway (its state object), per policy name. */
const kept = new WeakMap<PolicyState, Map<string, { spec: string; store: CacheStore; collapser: Collapser }>>();

/**
 * The store `c` asks for. State scope: `memory` in a lone process is an in-process LRU (per
 * process: there is no other process to share with); `memory` under workers is a file store in
 * /dev/shm named after the supervisor (per machine: one copy in RAM that every worker of this
 * gateway reads and writes, so a response stored by one worker is a hit in the others and a purge
 * in one reaches all); `disk` is per machine and outlives the process. Both: memory in front.
 */
function storeFor(deps: PolicyDeps, c: ResolvedCache): { store: CacheStore; collapser: Collapser } {
  let byName = kept.get(deps.state);
  if (byName === undefined) {
    byName = new Map();
    kept.set(deps.state, byName);
  }
  const shared = cluster.isWorker;
  const spec = `${c.memory}:${shared}:${c.disk?.path}:${c.disk?.size}`;
  const found = byName.get(deps.name);
  if (found !== undefined && found.spec === spec) return found;
  let memory: CacheStore | undefined;
  if (c.memory > 0)
    memory = shared
      ? new FileStore({ path: sharedMemoryRoot(process.ppid, deps.name), maxSize: c.memory, durable: false, kind: 'memory-shared' })
      : new MemoryStore(c.memory);
  const disk = c.disk === undefined ? undefined : new FileStore({ path: c.disk.path, maxSize: c.disk.size, durable: true, kind: 'disk' });
  const store = memory !== undefined && disk !== undefined ? new TieredStore(memory, disk) : (memory ?? disk);
  const made = { spec, store: store as CacheStore, collapser: new Collapser() };
  byName.set(deps.name, made);
  return made;
}

function record(h: Headers): Record<string, string | string[]> {
  return storedHeaders((fn) => h.forEach(fn));
}

/** The `cache` filter; see the module comment. */
export class CacheFilter implements Filter {
  readonly bodyUnchanged = true;
  readonly store: CacheStore;
  readonly #collapser: Collapser;
  readonly #c: ResolvedCache;
  readonly #decisions: Decisions<CacheResult>;

  constructor(c: ResolvedCache, deps: PolicyDeps) {
    this.#c = c;
    const { store, collapser } = storeFor(deps, c);
    this.store = store;
    this.#collapser = collapser;
    this.#decisions = new Decisions(deps.name, deps.type, RESULTS);
  }

  onRequest(s: Session): Verdict {
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
    p.preq = policyRequest(p.url, p.host, s.request.headers, vary);
    const entry = this.store.get(p.base + variantPart(vary, s.request.headers));
    if (entry instanceof Promise) return entry.then((e) => this.#decide(s, p, mayWait, e));
    return this.#decide(s, p, mayWait, entry);
  }

  #decide(s: Session, p: Pending, mayWait: boolean, entry: StoredResponse | undefined): Verdict {
    const headers = s.request.headers;
    if (entry !== undefined) {
      const ev = entry.policy.evaluateRequest(p.preq!);
      const stale = entry.policy.stale();
      // A stale-while-revalidate answer (revalidation not synchronous) is validated first in this version.
      if (ev.response !== undefined && ev.revalidation === undefined && !(stale && entry.mustRevalidate)) {
        this.#decisions.publish(mayWait ? 'hit' : 'collapsed');
        return this.#serve(s, entry, mayWait ? 'hit' : 'hit; collapsed');
      }
      p.entry = entry;
      const rh = entry.policy.revalidationHeaders(p.preq!);
      const conditional: Record<string, string> = {};
      for (const n of ['if-none-match', 'if-modified-since']) {
        const v = rh[n];
        if (typeof v === 'string') conditional[n] = v;
      }
      p.conditional = conditional;
    }
    if (hasDirective(headers['cache-control'], 'only-if-cached')) {
      this.#decisions.publish('miss');
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
    if (mayWait) this.#decisions.publish(p.entry === undefined ? 'miss' : 'revalidated');
    return undefined;
  }

  async #wait(s: Session, p: Pending): Promise<Reply | undefined> {
    this.#decisions.publish('collapsed');
    const outcome = await this.#collapser.wait(p.base, this.#c.collapseTimeout);
    if (outcome !== 'filled') return undefined;
    p.entry = undefined;
    p.conditional = undefined;
    return this.#lookup(s, p, false);
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
    const headers: Record<string, string | string[]> = { ...e.headers, age: ageValue, 'cache-status': status };
    if (s.request.method === 'HEAD') {
      if (headers['content-length'] === undefined) headers['content-length'] = String(e.body.length);
      return { status: e.status, headers };
    }
    return { status: e.status, headers, body: e.body };
  }

  onUpstreamRequest(s: Session, head: { readonly headers: Headers }): void {
    const c = s.local<Pending>(this)?.conditional;
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
        this.#decisions.publish('stale');
        return this.#serve(s, e, `fwd=stale; fwd-status=${status}; detail=stale-if-error`);
      }
      if (head.fromUpstream) head.headers.append('cache-status', cacheStatus(name, `fwd=${p.entry === undefined ? 'miss' : 'stale'}; fwd-status=${status}`));
      return undefined;
    }
    if (status === 304 && p.entry !== undefined && p.preq !== undefined) {
      const fresh = record(head.headers);
      const r = p.entry.policy.revalidatedPolicy(p.preq, { status: 304, headers: fresh });
      if (r.matches) {
        const e = this.#refresh(p.entry, p.preq, fresh, head.headers.get('age'));
        this.#settle(p, 'filled');
        return this.#serve(s, e, 'fwd=stale; fwd-status=304');
      }
    }
    const fwd = p.entry === undefined ? 'fwd=miss' : 'fwd=stale';
    const w = s.request.method === 'GET' ? this.#writerFor(s, p, status, head.headers) : undefined;
    if (w === undefined) {
      this.#settle(p, 'released');
      head.headers.append('cache-status', cacheStatus(name, `${fwd}; fwd-status=${status}`));
      return undefined;
    }
    p.writer = w;
    head.headers.append('cache-status', cacheStatus(name, `${fwd}; fwd-status=${status}; stored`, w.policy.maxAge() - w.policy.age()));
    return undefined;
  }

  /** The copy of a storable response about to be streamed, or undefined when it is not to be stored. */
  #writerFor(s: Session, p: Pending, status: number, h: Headers): Writer | undefined {
    const c = this.#c;
    if (!c.storeSetCookie && h.has('set-cookie')) return undefined;
    const vary = varyNames(h.getAll('vary'));
    if (vary?.[0] === '*') return undefined;
    const cl = h.get('content-length');
    const length = cl === undefined ? undefined : Number(cl);
    if (length !== undefined && !(length <= c.maxObjectSize)) return undefined;
    const stored = record(h);
    const preq = policyRequest(p.url, p.host, s.request.headers, vary);
    // Storability on the headers as sent (Authorization rules read must-revalidate), freshness on the corrected ones.
    if (!new CachePolicy(preq, { status, headers: stored }, { shared: true }).storable()) return undefined;
    const fresh = policyHeaders(stored, c.defaultTtl);
    if (!fresh.explicit) return undefined;
    const policy = new CachePolicy(preq, { status, headers: withAge(fresh.headers, h.get('age')) }, { shared: true });
    if (!policy.storable()) return undefined;
    if (policy.timeToLive() <= 0 && stored.etag === undefined && stored['last-modified'] === undefined) return undefined;
    return {
      key: p.base + variantPart(vary, s.request.headers),
      vary,
      status,
      headers: stored,
      policy,
      mustRevalidate: fresh.mustRevalidate,
      length,
      chunks: [],
      size: 0,
    };
  }

  onResponseBody(s: Session, chunk: Buffer, end: boolean): Buffer | undefined {
    const p = s.local<Pending>(this);
    const w = p?.writer;
    if (w === undefined) return undefined;
    if (chunk.length > 0) {
      w.size += chunk.length;
      if (w.size > this.#c.maxObjectSize) {
        // Streamed past the cache from here on.
        p!.writer = undefined;
        this.#settle(p!, 'released');
        return undefined;
      }
      w.chunks.push(chunk);
    }
    if (end) {
      p!.writer = undefined;
      const complete = w.length === undefined || w.length === w.size;
      const stored =
        complete &&
        this.store.put({
          key: w.key,
          url: p!.url,
          vary: w.vary,
          policy: w.policy,
          status: w.status,
          headers: w.headers,
          body: w.chunks.length === 1 ? w.chunks[0] : Buffer.concat(w.chunks, w.size),
          mustRevalidate: w.mustRevalidate,
          tags: tagsOf(w.headers),
        });
      if (stored instanceof Promise) void stored.then((ok) => this.#settle(p!, ok ? 'filled' : 'released'));
      else this.#settle(p!, stored ? 'filled' : 'released');
    }
    return undefined;
  }

  onLog(s: Session): void {
    const p = s.local<Pending>(this);
    if (p === undefined) return;
    // A copy that never saw the body's end (aborted, failed mid-body, cut) is dropped here.
    p.writer = undefined;
    this.#settle(p, 'released');
  }

  /** Removes stored objects: by URL (`https://host/path?query`), by URL prefix, or by tag. Returns how many went. */
  purge(q: PurgeQuery): number | Promise<number> {
    if ('tag' in q) return this.store.deleteTag(q.tag);
    if ('prefix' in q) return this.store.deletePrefix(normalizeUrl(q.prefix) ?? q.prefix);
    const url = normalizeUrl(q.url);
    return url === undefined ? 0 : this.store.deleteUrl(url);
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
    return over < allowed;
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
  if (raw.store.memory === undefined && disk === undefined) ctx.problem({ path: ['store'], expected: 'memory, disk or both', found: '{}' });
  const budget = Math.max(memory, disk?.size ?? 0);
  const maxObjectSize = raw.maxObjectSize === undefined ? Math.min(8 * 1024 * 1024, budget) : parseSize(raw.maxObjectSize);
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
    collapseTimeout: parseDuration(raw.collapseTimeout ?? '5s'),
    keyHeaders: (raw.key?.headers ?? []).map((h) => h.toLowerCase()),
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
