/**
 * The contract every cache store keeps (memory-store.ts, file-store.ts, tiered-store.ts), after
 * undici's cache store interface (`get`, a write, `delete`) with the index a shared cache needs.
 *
 * Called by the `cache` filter (index.ts): `varyOf` then `get` once per GET/HEAD lookup, `put` once
 * per stored response (after its whole body arrived, or after a 304 refresh) or `open` for a large
 * one (written as it arrives), the deletes on
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
  /** The body; empty when `file` holds it. */
  readonly body: Buffer;
  /** A large body left in its file (a file store's object), read as it is served; undefined: `body`. */
  readonly file?: StoredFile;
  /** Never served stale (`must-revalidate`, `proxy-revalidate`). */
  readonly mustRevalidate: boolean;
  readonly tags: readonly string[];
}

/**
 * Where a file store left a large body: `length` bytes at `offset` of `path`, the file whose inode
 * is `ino` (an object is never rewritten in place, so the same inode means the same bytes; a file
 * replaced or removed since is never read as this object).
 */
export interface StoredFile {
  readonly path: string;
  readonly ino: number;
  readonly offset: number;
  readonly length: number;
}

/**
 * Bodies up to this size are held whole in memory (collected, then `put`; read whole on a hit: the
 * fast path); larger ones are written as they arrive (`open`) and served from their file, by stores
 * that can (file stores).
 */
export const STREAM_ABOVE = 1024 * 1024;

/** The body's length, wherever it is. */
export function bodySize(e: StoredResponse): number {
  return e.file === undefined ? e.body.length : e.file.length;
}

/**
 * A store's write of one object whose body arrives in chunks (`CacheStore.open`): `write` each
 * chunk in order, then `end` (stored once the whole body is written; false when not) or `abort`
 * (nothing stored). `pending` is the bytes handed to `write` not yet written: the writer waits on
 * `drained` when it grows, so a slow disk slows the response instead of filling memory.
 */
export interface StoreWrite {
  write(chunk: Buffer): void;
  readonly pending: number;
  /** Resolves once `pending` is 0 (or the write failed). */
  drained(): Promise<void>;
  /** The body is complete: `e` (its `body` unused) is stored with it. Never rejects. */
  end(e: StoredResponse): Promise<boolean>;
  abort(): void;
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
  /**
   * Starts a write whose body arrives in chunks (file stores: a large object never held whole in
   * memory); undefined when the store has none (the caller collects the body and calls `put`).
   */
  open?(e: StoredResponse): StoreWrite | undefined;
  /** The object of `key` only (another instance replaced it); whether it was there. For front tiers (memory, file stores). */
  deleteKey?(key: string): MaybePromise<boolean>;
  /** Every variant of `url`; how many objects went. */
  deleteUrl(url: string): MaybePromise<number>;
  /** Every object whose URL starts with `prefix`; how many went. */
  deletePrefix(prefix: string): MaybePromise<number>;
  /** Every object tagged `tag`; how many went (a file store may count objects replaced since without the tag). */
  deleteTag(tag: string): MaybePromise<number>;
  stats(): StoreStats;
  /** Releases what the store holds open (a Redis store's connections): called once, when a reload replaced it. */
  close?(): void;
}
