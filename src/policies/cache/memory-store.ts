/**
 * The memory store: stored responses in an LRU bounded by bytes (lru-cache's `maxSize` with each
 * object's size), grouped by URL for `Vary` and purges, indexed by tag for purges.
 *
 * Shape after undici's cache store (`get`, a write once the body is complete, `delete`), with the
 * index a shared cache needs: one URL has one or more variants (its `Vary` fields and the key's
 * extra headers select one); the latest response's `Vary` names are the URL's, and a response with
 * other names replaces the URL's variants (as Varnish does).
 *
 * State: per process. Used for `memory:` in a lone process (no workers), and as the front tier of a
 * lone process's `memory` + `disk`; with workers, `memory:` is file-store.ts rooted in /dev/shm
 * instead (one copy per machine, shared by every worker; see index.ts `storeFor`).
 */
import { LRUCache } from 'lru-cache';
import type { CacheStore, StoredResponse, StoreStats } from './store.ts';

export type { StoredResponse } from './store.ts';

/** Bytes an object is counted for: its body, its headers, and a fixed overhead for the rest. */
function sizeOf(e: StoredResponse): number {
  let n = 256 + e.key.length + e.body.length;
  for (const name in e.headers) {
    const v = e.headers[name];
    n += name.length + (typeof v === 'string' ? v.length : v.reduce((a, s) => a + s.length + 4, 0));
  }
  return n;
}

export class MemoryStore implements CacheStore {
  readonly kind = 'memory';
  readonly maxSize: number;
  readonly #lru: LRUCache<string, StoredResponse>;
  /** URL → its Vary names and the keys of its variants. */
  readonly #urls = new Map<string, { vary: readonly string[] | undefined; keys: Set<string> }>();
  /** Tag → keys of the objects carrying it. */
  readonly #tags = new Map<string, Set<string>>();
  /** Objects evicted to stay within the budget (not purges, not replacements). */
  evictions = 0;

  constructor(maxSize: number) {
    this.maxSize = maxSize;
    this.#lru = new LRUCache<string, StoredResponse>({
      maxSize,
      sizeCalculation: sizeOf,
      dispose: (value, key, reason) => {
        if (reason === 'evict') this.evictions++;
        this.#unindexTags(value);
        if (reason === 'set') return;
        const url = this.#urls.get(value.url);
        if (url === undefined) return;
        url.keys.delete(key);
        if (url.keys.size === 0) this.#urls.delete(value.url);
      },
    });
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#lru.calculatedSize;
  }

  /** Objects held. */
  get size(): number {
    return this.#lru.size;
  }

  stats(): StoreStats {
    return { bytes: this.bytes, objects: this.size, evictions: this.evictions };
  }

  /** The Vary names of `url`'s variants; undefined when none are stored or they have no Vary. */
  varyOf(url: string): readonly string[] | undefined {
    return this.#urls.get(url)?.vary;
  }

  /** Whether anything is stored for `url`. */
  hasUrl(url: string): boolean {
    return this.#urls.has(url);
  }

  /** The object stored under `key` (marked recently used), or undefined. */
  get(key: string): StoredResponse | undefined {
    return this.#lru.get(key);
  }

  /** Stores `e` (replacing the object of its key); false when it is larger than the whole budget. */
  put(e: StoredResponse): boolean {
    // A body left in a file (a disk object) is not brought into memory.
    if (e.file !== undefined || sizeOf(e) > this.maxSize) return false;
    const url = this.#urls.get(e.url);
    if (url !== undefined && !sameNames(url.vary, e.vary)) this.deleteUrl(e.url);
    this.#lru.set(e.key, e);
    if (!this.#lru.has(e.key)) return false;
    let entry = this.#urls.get(e.url);
    if (entry === undefined) {
      entry = { vary: e.vary, keys: new Set() };
      this.#urls.set(e.url, entry);
    }
    entry.keys.add(e.key);
    for (const t of e.tags) {
      let keys = this.#tags.get(t);
      if (keys === undefined) {
        keys = new Set();
        this.#tags.set(t, keys);
      }
      keys.add(e.key);
    }
    return true;
  }

  /** Every variant of `url`; returns how many objects went. */
  deleteKey(key: string): boolean {
    // The LRU's dispose removes it from the URL's and tags' indexes.
    return this.#lru.delete(key);
  }

  deleteUrl(url: string): number {
    const entry = this.#urls.get(url);
    if (entry === undefined) return 0;
    const keys = [...entry.keys];
    for (const k of keys) this.#lru.delete(k);
    this.#urls.delete(url);
    return keys.length;
  }

  /** Every object whose URL starts with `prefix` (`https://example.com/static/`); returns how many went. */
  deletePrefix(prefix: string): number {
    let n = 0;
    for (const url of [...this.#urls.keys()]) if (url.startsWith(prefix)) n += this.deleteUrl(url);
    return n;
  }

  /** Every object tagged `tag` (`Surrogate-Key`, `Cache-Tag`); returns how many went. */
  deleteTag(tag: string): number {
    const keys = this.#tags.get(tag);
    if (keys === undefined) return 0;
    const all = [...keys];
    for (const k of all) this.#lru.delete(k);
    this.#tags.delete(tag);
    return all.length;
  }

  /** Everything. */
  clear(): void {
    this.#lru.clear();
    this.#urls.clear();
    this.#tags.clear();
  }

  #unindexTags(e: StoredResponse): void {
    for (const t of e.tags) {
      const keys = this.#tags.get(t);
      if (keys === undefined) continue;
      keys.delete(e.key);
      if (keys.size === 0) this.#tags.delete(t);
    }
  }
}

function sameNames(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
