/**
 * The contract every cache store keeps (memory-store.ts, file-store.ts, tiered-store.ts), after
 * undici's cache store interface (`get`, a write, `delete`) with the index a shared cache needs.
 *
 * Called by the `cache` filter (index.ts): `varyOf` then `get` once per GET/HEAD lookup, `put` once
 * per stored response (after its whole body arrived, or after a 304 refresh), the deletes on
 * invalidations and purges. A method answers synchronously or with a promise (`MaybePromise`): the
 * in-process memory store stays synchronous, so a hit there never waits for a tick; a store that
 * reads files answers with promises. `undefined` from `varyOf`/`get` means "nothing stored".
 * No method throws: a store that cannot read or write answers a miss or `false`.
 */
import type CachePolicy from 'http-cache-semantics';

/** One stored response. */
export interface StoredResponse {
  /** The variant's key: URL, extra key parts, Vary values. */
  readonly key: string;
  /** The URL part of the key (`scheme://host/target`). */
  readonly url: string;
  /** The Vary names the variant was selected by (sorted, lower case), undefined without Vary. */
  readonly vary: readonly string[] | undefined;
  /** What http-cache-semantics decides freshness and revalidation on; replaced after a 304. */
  policy: CachePolicy;
  readonly status: number;
  /** The headers served with it (lower-case names); replaced after a 304. */
  headers: Record<string, string | string[]>;
  readonly body: Buffer;
  /** Never served stale (`must-revalidate`, `proxy-revalidate`). */
  readonly mustRevalidate: boolean;
  readonly tags: readonly string[];
}

/** A value now, or later. */
export type MaybePromise<T> = T | Promise<T>;

/** What a store reports for metrics (store bytes and evictions per store, issue 14). */
export interface StoreStats {
  /** Bytes held (approximate for a file store shared by several processes: see file-store.ts). */
  readonly bytes: number;
  /** Objects held (approximate likewise). */
  readonly objects: number;
  /** Objects evicted to stay within the budget (not purges, not replacements). */
  readonly evictions: number;
}

export interface CacheStore {
  /** What the store is, for metrics labels and logs: `memory`, `memory-shared`, `disk`, `memory+disk`. */
  readonly kind: string;
  /** The byte budget (the largest tier's, for a tiered store). */
  readonly maxSize: number;
  /** The Vary names of `url`'s variants; undefined when none are stored or they have no Vary. */
  varyOf(url: string): MaybePromise<readonly string[] | undefined>;
  /** The object stored under `key` (a variant's key: URL, extra key parts, Vary values), or undefined. */
  get(key: string): MaybePromise<StoredResponse | undefined>;
  /** Stores `e`, replacing the object of its key (and the URL's variants when its Vary names differ); false when not stored. */
  put(e: StoredResponse): MaybePromise<boolean>;
  /** Every variant of `url`; how many objects went. */
  deleteUrl(url: string): MaybePromise<number>;
  /** Every object whose URL starts with `prefix`; how many went. */
  deletePrefix(prefix: string): MaybePromise<number>;
  /** Every object tagged `tag`; how many went (a file store may count objects replaced since without the tag). */
  deleteTag(tag: string): MaybePromise<number>;
  stats(): StoreStats;
}
