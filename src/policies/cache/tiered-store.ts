/**
 * Two stores, one in front of the other (`memory` in front of `disk`): a lookup tries the front,
 * then the back, and a hit in the back is promoted to the front (written in the background); a
 * write goes to both (the front refuses what exceeds its budget); a large object streamed in
 * (`open`) goes to the back only; deletes and purges go to both.
 *
 * The front must be shared as widely as the back is by this gateway's processes (a per-process front
 * in front of a per-machine back would miss other workers' purges): index.ts never builds that.
 *
 * State: none of its own; the front's and the back's (see their module comments).
 */
import type { StoredResponse } from './memory-store.ts';
import type { CacheStore, MaybePromise, StoreStats, StoreWrite } from './store.ts';

export class TieredStore implements CacheStore {
  readonly kind: string;
  readonly maxSize: number;
  readonly front: CacheStore;
  readonly back: CacheStore;

  constructor(front: CacheStore, back: CacheStore) {
    this.front = front;
    this.back = back;
    this.kind = `${front.kind}+${back.kind}`;
    this.maxSize = Math.max(front.maxSize, back.maxSize);
  }

  stats(): StoreStats {
    const f = this.front.stats();
    const b = this.back.stats();
    return { bytes: f.bytes + b.bytes, objects: f.objects + b.objects, evictions: f.evictions + b.evictions };
  }

  async varyOf(url: string): Promise<readonly string[] | undefined> {
    // Every write and delete goes to both, so a front that holds the URL knows its current Vary names.
    const f = await this.front.varyOf(url);
    if (f !== undefined) return f;
    const front = this.front as CacheStore & { hasUrl?(url: string): boolean };
    if (front.hasUrl?.(url)) return undefined;
    return this.back.varyOf(url);
  }

  async get(key: string): Promise<StoredResponse | undefined> {
    const hit = await this.front.get(key);
    if (hit !== undefined) return hit;
    const e = await this.back.get(key);
    if (e !== undefined) void Promise.resolve(this.front.put(e)).catch(() => undefined);
    return e;
  }

  async put(e: StoredResponse): Promise<boolean> {
    const [, b] = await Promise.all([this.front.put(e), this.back.put(e)]);
    return b;
  }

  /** A large object streamed in goes to the back only (the front holds objects up to STREAM_ABOVE, store.ts). */
  open(e: StoredResponse): StoreWrite | undefined {
    const w = this.back.open?.(e);
    if (w === undefined) return undefined;
    const front = this.front;
    return {
      write: (chunk) => w.write(chunk),
      get pending() {
        return w.pending;
      },
      drained: () => w.drained(),
      // The front's copy of the URL (an older, smaller object) goes once the new one is in the back.
      end: async (done) => (await w.end(done)) && (await front.deleteUrl(done.url)) >= 0,
      abort: () => w.abort(),
    };
  }

  close(): void {
    this.front.close?.();
    this.back.close?.();
  }

  deleteUrl(url: string): Promise<number> {
    return both(this.front.deleteUrl(url), this.back.deleteUrl(url));
  }

  deletePrefix(prefix: string): Promise<number> {
    return both(this.front.deletePrefix(prefix), this.back.deletePrefix(prefix));
  }

  deleteTag(tag: string): Promise<number> {
    return both(this.front.deleteTag(tag), this.back.deleteTag(tag));
  }
}

/** How many objects a delete removed: the larger count (the tiers hold copies of the same objects). */
async function both(a: MaybePromise<number>, b: MaybePromise<number>): Promise<number> {
  const [x, y] = await Promise.all([a, b]);
  return Math.max(x, y);
}
