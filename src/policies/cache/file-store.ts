/**
 * The file store: one file per stored response, under a root directory. Two uses (index.ts
 * `storeFor`): `disk: { path, size }` (survives restarts), and `memory:` when the gateway runs
 * workers, rooted in /dev/shm (tmpfs: RAM, one copy per machine, every worker reads and writes it).
 *
 * Layout (under `<root>/v1/`):
 *   o/<hu:2>/<hu>/meta        the URL and its Vary names (JSON), written to a temp file and renamed
 *   o/<hu:2>/<hu>/<hk>        one object per variant: `SBC1`, a 4-byte head length, the head (JSON:
 *                             key, URL, Vary names, status, headers, the http-cache-semantics policy
 *                             with its stored time and validators, must-revalidate, tags, body
 *                             length), then the body
 *   o/<hu:2>/<hu>/.tmp-<pid>-<n>   a write in progress
 *   t/<ht>/<hu>.<hk>          a tag marker (empty): the object <hk> of URL <hu> carries tag <ht>
 *   sweep.lock                held by the one process sweeping
 * (hu, hk, ht: SHA-256 of the URL, the variant's key and the tag, 32 hex digits.)
 *
 * Large objects (bodies above STREAM_ABOVE, store.ts): written as their chunks arrive (`open`:
 * the head first, with room for the body length filled in at the end), and looked up as their
 * head only, the body left in the file (`StoredResponse.file`) and read as it is served
 * (`readStored`); smaller ones are read whole, in one read.
 *
 * Crash safety: an object is written to a temp file in its own directory, fsync'd (for `disk`),
 * then renamed over its name: rename is atomic, so a lookup opens either the whole old object,
 * the whole new one, or nothing. A process killed mid-write leaves only `.tmp-<pid>-<n>`, which no
 * lookup opens; the sweep that runs when a store opens removes temp files whose process is gone
 * (and any older than an hour). A file whose length disagrees with its head is never served.
 *
 * Index: none kept in memory; the file system is the index. A lookup is two opens of hashed
 * paths (`meta` for the Vary names, then the variant), so a restart needs no rebuild. Purge by
 * URL removes the URL's directory (every variant and extra key part); by tag, reads the tag's
 * markers (a marker is written before its object, so a purge never misses a stored object; it may
 * remove an object replaced since without the tag: a miss, never a wrong hit); by prefix, reads
 * every URL's `meta` (cost: one small read per stored URL; correctness over speed).
 *
 * Budget: a sweep sums the objects' sizes and, past the budget, removes the least recently used
 * (by mtime: a hit touches its file when the mtime is more than 10 s old) down to 90% of it. A
 * sweep runs when the store opens and after each process wrote 1/16 of the budget since its last
 * sweep; one process sweeps at a time (`sweep.lock`). So the budget is approximate across
 * processes: it may be exceeded by what all processes write between sweeps (about workers × 1/16
 * of the budget) plus writes in flight, and LRU order is exact to 10 s.
 *
 * State: on the file system, per machine (every process that opens the same root shares it:
 * the workers of one gateway, and, for `disk`, the next run). `bytes`/`objects` are this
 * process's view as of its last sweep or recount (`stats`) plus its own writes since; `evictions`
 * counts its sweeps' (one process sweeps at a time, so the workers' evictions add up).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import CachePolicy from 'http-cache-semantics';
import type { StoredResponse } from './memory-store.ts';
import { type CacheStore, STREAM_ABOVE, type StoredFile, type StoreStats, type StoreWrite } from './store.ts';

const MAGIC = Buffer.from('SBC1');
const EMPTY = Buffer.alloc(0);
/** How much of a large object's file a lookup reads for its head (more when the head is longer). */
const HEAD_READ = 64 * 1024;
/** The read size when a large body is served from its file. */
const CHUNK = 64 * 1024;
/** Room left after a streamed object's head for its body length, written once the body ended (JSON allows trailing spaces). */
const LENGTH_ROOM = 16;
/** A hit refreshes its file's mtime (the LRU order) when it is older than this. */
const TOUCH_MS = 10_000;
/** Temp files older than this are removed by a sweep even when their process looks alive (pid reuse). */
const TEMP_MAX_AGE_MS = 3_600_000;
/** A sweep lock older than this was left by a process that died while sweeping. */
const LOCK_STALE_MS = 60_000;

export interface FileStoreOptions {
  /** The root directory (created when missing). */
  readonly path: string;
  /** The byte budget (object files: heads and bodies). */
  readonly maxSize: number;
  /** fsync each object before it is renamed into place (disk: yes; tmpfs: pointless). */
  readonly durable: boolean;
  /** `disk` or `memory-shared`. */
  readonly kind: string;
}

interface Head {
  key: string;
  url: string;
  vary: readonly string[] | null;
  status: number;
  headers: Record<string, string | string[]>;
  policy: CachePolicy.CachePolicyObject;
  mustRevalidate: boolean;
  tags: readonly string[];
  bodyLength: number;
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sameNames(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export class FileStore implements CacheStore {
  readonly kind: string;
  readonly maxSize: number;
  readonly #root: string;
  readonly #objects: string;
  readonly #tagsDir: string;
  readonly #durable: boolean;
  #tmp = 0;
  #sinceSweep = 0;
  #bytes = 0;
  #count = 0;
  #evictions = 0;
  /** The recount `stats` started, if running; when the next may start. Per process (its view of the machine's store). */
  #recounting: Promise<void> | undefined;
  #nextRecount = 0;
  #sweeping: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  /** The first sweep (temp files of dead writers removed, sizes summed); lookups do not wait for it. */
  readonly ready: Promise<void>;

  constructor(o: FileStoreOptions) {
    this.kind = o.kind;
    this.maxSize = o.maxSize;
    this.#durable = o.durable;
    this.#root = join(o.path, 'v1');
    this.#objects = join(this.#root, 'o');
    this.#tagsDir = join(this.#root, 't');
    this.ready = this.sweep();
  }

  /**
   * This process's view (see the module comment), and a recount from the file system started
   * behind it, so that the next scrape reads what every process wrote (the machine's metrics take
   * the largest worker's view of a shared store, observability/metrics.ts). A recount walks the
   * store; one at a time, and not again before ten times its own duration has passed (at most a
   * tenth of the time spent counting a large disk store).
   */
  stats(): StoreStats {
    if (this.#recounting === undefined && Date.now() >= this.#nextRecount) this.#recounting = this.#recount();
    return { bytes: this.#bytes, objects: this.#count, evictions: this.#evictions };
  }

  async #recount(): Promise<void> {
    const start = Date.now();
    let bytes = 0;
    let count = 0;
    try {
      for (const a of await entries(this.#objects))
        for (const h of await entries(join(this.#objects, a))) {
          const dir = join(this.#objects, a, h);
          for (const f of await entries(dir)) {
            if (f === 'meta' || f.startsWith('.tmp-')) continue;
            const st = await stat(join(dir, f)).catch(() => undefined);
            if (st === undefined) continue;
            count++;
            bytes += st.size;
          }
        }
      this.#bytes = bytes;
      this.#count = count;
    } finally {
      const now = Date.now();
      this.#nextRecount = now + 10 * (now - start);
      this.#recounting = undefined;
    }
  }

  #urlDir(url: string): string {
    const h = hash(url);
    return join(this.#objects, h.slice(0, 2), h);
  }

  async varyOf(url: string): Promise<readonly string[] | undefined> {
    const meta = await this.#meta(this.#urlDir(url));
    return meta?.vary ?? undefined;
  }

  async #meta(dir: string): Promise<{ url: string; vary: string[] | null } | undefined> {
    try {
      return JSON.parse(await readFile(join(dir, 'meta'), 'utf8'));
    } catch {
      return undefined;
    }
  }

  async get(key: string): Promise<StoredResponse | undefined> {
    // The key starts with the URL (then extra key parts and Vary values, each after a newline or NUL).
    const url = urlOfKey(key);
    const file = join(this.#urlDir(url), hash(key));
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const st = await fh.stat();
      let e: StoredResponse | undefined;
      if (st.size <= STREAM_ABOVE + HEAD_READ) {
        // The fast path: the whole object in one read.
        const buf = Buffer.allocUnsafe(st.size);
        const { bytesRead } = await fh.read(buf, 0, st.size, 0);
        e = decode(buf.subarray(0, bytesRead), key);
      } else e = await readLarge(fh, file, st.ino, st.size, key);
      if (e === undefined) return undefined;
      const now = Date.now();
      if (now - st.mtimeMs > TOUCH_MS) await fh.utimes(now / 1000, now / 1000).catch(() => undefined);
      return e;
    } catch {
      return undefined;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async put(e: StoredResponse): Promise<boolean> {
    // A large body still in its file (a 304 refresh): copied into the new object as a stream.
    if (e.file !== undefined) return copyInto(this.open(e), e, e.file);
    const data = encode(e);
    if (data.length > this.maxSize) return false;
    const dir = this.#urlDir(e.url);
    try {
      await mkdir(dir, { recursive: true });
      await this.#index(dir, e);
      await this.#atomicWrite(dir, hash(e.key), data);
    } catch {
      return false;
    }
    this.#wrote(data.length);
    return true;
  }

  /**
   * A write of `e`'s object whose body comes in chunks: into a temp file as they arrive (its head
   * first, with room for the body length), renamed into place by `end` once the body is whole and
   * the file fsync'd (for `disk`); `abort`, or any failure, removes the temp file. So a body cut or
   * failed mid-way leaves nothing servable, and a crash leaves only a temp file (as for `put`).
   */
  open(e: StoredResponse): StoreWrite {
    return new FileWrite(this, this.#urlDir(e.url), `.tmp-${process.pid}-${this.#tmp++}`, e, this.#durable);
  }

  /** Makes `dir` the object's place: the URL's `meta` (another Vary replaces its variants), then its tag markers. */
  async #index(dir: string, e: StoredResponse): Promise<void> {
    const meta = await this.#meta(dir);
    if (meta === undefined || !sameNames(meta.vary ?? undefined, e.vary)) {
      // Another Vary replaces the URL's variants (as the memory store does).
      if (meta !== undefined) for (const f of await entries(dir)) if (f !== 'meta' && !f.startsWith('.tmp-')) await unlink(join(dir, f)).catch(() => undefined);
      await this.#atomicWrite(dir, 'meta', Buffer.from(JSON.stringify({ url: e.url, vary: e.vary ?? null })));
    }
    // Tag markers before the object: a purge by tag that sees the object sees its marker.
    const hu = dir.slice(dir.length - 32);
    const hk = hash(e.key);
    for (const t of e.tags) {
      const td = join(this.#tagsDir, hash(t));
      await mkdir(td, { recursive: true });
      await writeFile(join(td, `${hu}.${hk}`), '');
    }
  }

  /** A streamed write's temp file `tmp` in `dir` is whole: indexed, renamed into place, counted. For FileWrite. */
  async commit(dir: string, tmp: string, e: StoredResponse, size: number): Promise<boolean> {
    if (size > this.maxSize) return false;
    try {
      await this.#index(dir, e);
      await rename(join(dir, tmp), join(dir, hash(e.key)));
    } catch {
      return false;
    }
    this.#wrote(size);
    return true;
  }

  #wrote(size: number): void {
    this.#bytes += size;
    this.#count++;
    this.#sinceSweep += size;
    if (this.#sinceSweep > this.maxSize / 16) void this.sweep();
  }

  /** Writes `name` in `dir` whole or not at all: a temp file, fsync'd when durable, renamed. */
  async #atomicWrite(dir: string, name: string, data: Buffer): Promise<void> {
    const tmp = join(dir, `.tmp-${process.pid}-${this.#tmp++}`);
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      if (this.#durable) await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, join(dir, name));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  async deleteKey(key: string): Promise<boolean> {
    try {
      await unlink(join(this.#urlDir(urlOfKey(key)), hash(key)));
      return true;
    } catch {
      return false;
    }
  }

  async deleteUrl(url: string): Promise<number> {
    const dir = this.#urlDir(url);
    // Counted by the unlinks that removed an object: a process purging the same URL at the same time counts none of them twice.
    let n = 0;
    for (const f of await entries(dir)) {
      if (f === 'meta' || f.startsWith('.tmp-')) continue;
      try {
        await unlink(join(dir, f));
        n++;
      } catch {
        // Removed by another process meanwhile.
      }
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    return n;
  }

  async deletePrefix(prefix: string): Promise<number> {
    let n = 0;
    for (const a of await entries(this.#objects)) {
      for (const h of await entries(join(this.#objects, a))) {
        const dir = join(this.#objects, a, h);
        const meta = await this.#meta(dir);
        if (meta?.url.startsWith(prefix)) n += await this.deleteUrl(meta.url);
      }
    }
    return n;
  }

  async deleteTag(tag: string): Promise<number> {
    const td = join(this.#tagsDir, hash(tag));
    let n = 0;
    for (const m of await entries(td)) {
      const [hu, hk] = m.split('.');
      if (hu === undefined || hk === undefined) continue;
      try {
        await unlink(join(this.#objects, hu.slice(0, 2), hu, hk));
        n++;
      } catch {
        // Gone already (evicted, purged, replaced under another Vary).
      }
      await unlink(join(td, m)).catch(() => undefined);
    }
    return n;
  }

  /**
   * Removes temp files of dead writers, tag markers of gone objects and, past the budget, the least
   * recently used objects down to 90% of it. One process at a time; concurrent calls share one run.
   */
  sweep(): Promise<void> {
    // A call during a run gets one more run after it (which sees what was written meanwhile).
    if (this.#sweeping !== undefined) {
      this.#next ??= this.#sweeping.then(() => {
        this.#next = undefined;
        return this.sweep();
      });
      return this.#next;
    }
    this.#sweeping = this.#sweep().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    this.#sinceSweep = 0;
    await mkdir(this.#objects, { recursive: true }).catch(() => undefined);
    const lock = join(this.#root, 'sweep.lock');
    if (!(await takeLock(lock))) return;
    try {
      const now = Date.now();
      const files: { path: string; size: number; mtime: number }[] = [];
      let total = 0;
      for (const a of await entries(this.#objects)) {
        for (const h of await entries(join(this.#objects, a))) {
          const dir = join(this.#objects, a, h);
          let objects = 0;
          for (const f of await entries(dir)) {
            const path = join(dir, f);
            if (f.startsWith('.tmp-')) {
              const pid = Number(f.split('-')[1]);
              const st = await stat(path).catch(() => undefined);
              if (st !== undefined && (!pidAlive(pid) || now - st.mtimeMs > TEMP_MAX_AGE_MS)) await unlink(path).catch(() => undefined);
              continue;
            }
            if (f === 'meta') continue;
            const st = await stat(path).catch(() => undefined);
            if (st === undefined) continue;
            objects++;
            files.push({ path, size: st.size, mtime: st.mtimeMs });
            total += st.size;
          }
          // A URL left with no object (all evicted or purged) for a while: its directory goes (a
          // fresh `meta` may belong to a write in progress in another process).
          if (objects === 0) {
            const st = (await stat(join(dir, 'meta')).catch(() => undefined)) ?? (await stat(dir).catch(() => undefined));
            if (st !== undefined && now - st.mtimeMs > LOCK_STALE_MS) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
          }
        }
      }
      let count = files.length;
      if (total > this.maxSize) {
        files.sort((x, y) => x.mtime - y.mtime);
        const target = this.maxSize * 0.9;
        for (const f of files) {
          if (total <= target) break;
          try {
            await unlink(f.path);
            this.#evictions++;
          } catch {
            // Purged meanwhile.
          }
          total -= f.size;
          count--;
        }
      }
      for (const t of await entries(this.#tagsDir)) {
        const td = join(this.#tagsDir, t);
        const markers = await entries(td);
        let left = markers.length;
        for (const m of markers) {
          const [hu, hk] = m.split('.');
          // A marker is written before its object: a young marker without one may be a write in progress.
          const gone =
            hu === undefined ||
            hk === undefined ||
            ((await stat(join(this.#objects, hu.slice(0, 2), hu, hk)).catch(() => undefined)) === undefined &&
              now - ((await stat(join(td, m)).catch(() => undefined))?.mtimeMs ?? 0) > LOCK_STALE_MS);
          if (gone) {
            await unlink(join(td, m)).catch(() => undefined);
            left--;
          }
        }
        if (left === 0) await rm(td, { recursive: true, force: true }).catch(() => undefined);
      }
      this.#bytes = total;
      this.#count = count;
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }
}

async function takeLock(lock: string): Promise<boolean> {
  for (let i = 0; i < 2; i++) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      const st = await stat(lock).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs < LOCK_STALE_MS) return false;
      await unlink(lock).catch(() => undefined);
    }
  }
  return false;
}

/** The URL part of a variant's key: up to the first newline (extra key parts) or NUL (Vary values). */
export function urlOfKey(key: string): string {
  let end = key.length;
  const nl = key.indexOf('\n');
  if (nl >= 0) end = nl;
  const nul = key.indexOf('\0');
  if (nul >= 0 && nul < end) end = nul;
  return key.slice(0, end);
}

export function encode(e: StoredResponse): Buffer {
  const json = headJson(e, e.body.length);
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([MAGIC, len, json, e.body]);
}

/** The head JSON of `e` with `bodyLength`. */
function headJson(e: StoredResponse, bodyLength: number): Buffer {
  const head: Head = {
    key: e.key,
    url: e.url,
    vary: e.vary ?? null,
    status: e.status,
    headers: e.headers,
    policy: e.policy.toObject(),
    mustRevalidate: e.mustRevalidate,
    tags: e.tags,
    bodyLength,
  };
  return Buffer.from(JSON.stringify(head));
}

/** The head of an object file of `total` bytes whose start is `buf`; undefined when it is not one whole object of `key`. */
function decodeHead(buf: Buffer, key: string, total: number): { head: Head; bodyOffset: number } | undefined {
  if (buf.length < 8 || !buf.subarray(0, 4).equals(MAGIC)) return undefined;
  const headLength = buf.readUInt32BE(4);
  if (8 + headLength > buf.length) return undefined;
  let head: Head;
  try {
    head = JSON.parse(buf.toString('utf8', 8, 8 + headLength));
  } catch {
    return undefined;
  }
  // A hash collision, or a file cut short or grown: never served.
  if (head.key !== key || 8 + headLength + head.bodyLength !== total) return undefined;
  return { head, bodyOffset: 8 + headLength };
}

function fromHead(head: Head, body: Buffer, file: StoredFile | undefined): StoredResponse {
  return {
    key: head.key,
    url: head.url,
    vary: head.vary ?? undefined,
    policy: CachePolicy.fromObject(head.policy),
    status: head.status,
    headers: head.headers,
    body,
    file,
    mustRevalidate: head.mustRevalidate,
    tags: head.tags,
  };
}

/** An object file's contents as a stored response; undefined when it is not one whole object of `key`. */
export function decode(buf: Buffer, key: string): StoredResponse | undefined {
  const d = decodeHead(buf, key, buf.length);
  return d === undefined ? undefined : fromHead(d.head, buf.subarray(d.bodyOffset), undefined);
}

/** A large object's head, its body left in the file (`file` of the result). */
async function readLarge(fh: FileHandle, path: string, ino: number, size: number, key: string): Promise<StoredResponse | undefined> {
  let buf = Buffer.allocUnsafe(HEAD_READ);
  let { bytesRead } = await fh.read(buf, 0, HEAD_READ, 0);
  if (bytesRead < 8) return undefined;
  const need = 8 + buf.readUInt32BE(4);
  if (need > bytesRead) {
    if (need > size) return undefined;
    buf = Buffer.allocUnsafe(need);
    ({ bytesRead } = await fh.read(buf, 0, need, 0));
  }
  const d = decodeHead(buf.subarray(0, bytesRead), key, size);
  if (d === undefined) return undefined;
  return fromHead(d.head, EMPTY, { path, ino, offset: d.bodyOffset, length: size - d.bodyOffset });
}

/**
 * The bytes `start` to `end` (exclusive) of a body left in its file, chunk by chunk: the file
 * opened on the first read, closed at the end or when the consumer stops (`return`). Throws when
 * the file was replaced or removed since it was looked up (its inode differs), or is short.
 */
export async function* readStored(f: StoredFile, start: number, end: number): AsyncGenerator<Buffer, void, undefined> {
  const fh = await open(f.path, 'r');
  try {
    if ((await fh.stat()).ino !== f.ino) throw new Error('the stored object was replaced while it was being served');
    let pos = start;
    while (pos < end) {
      const n = Math.min(CHUNK, end - pos);
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await fh.read(buf, 0, n, f.offset + pos);
      if (bytesRead === 0) throw new Error('the stored object is shorter than its head says');
      pos += bytesRead;
      yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Copies the body of `from` into `w` and ends it with `e`. */
async function copyInto(w: StoreWrite, e: StoredResponse, from: StoredFile): Promise<boolean> {
  try {
    for await (const chunk of readStored(from, 0, from.length)) {
      w.write(chunk);
      if (w.pending > STREAM_ABOVE) await w.drained();
    }
  } catch {
    w.abort();
    return false;
  }
  return w.end(e);
}

/**
 * One streamed write (FileStore.open): the temp file's head written first with room for the body
 * length, each chunk at its offset in order (one write at a time), then the head rewritten with the
 * length and the file handed to the store to be renamed into place. Per request, per process.
 */
class FileWrite implements StoreWrite {
  readonly #store: FileStore;
  readonly #dir: string;
  readonly #tmp: string;
  readonly #durable: boolean;
  #fh: FileHandle | undefined = undefined;
  /** The writes in order: each waits for the one before. */
  #chain: Promise<void>;
  #failed = false;
  #ended = false;
  /** The head's reserved length; the next write's offset; body bytes written. */
  #headLength = 0;
  #pos = 0;
  #size = 0;
  pending = 0;
  #waiters: (() => void)[] = [];

  constructor(store: FileStore, dir: string, tmp: string, e: StoredResponse, durable: boolean) {
    this.#store = store;
    this.#dir = dir;
    this.#tmp = tmp;
    this.#durable = durable;
    this.#chain = this.#start(e).catch(() => {
      this.#failed = true;
    });
  }

  async #start(e: StoredResponse): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    this.#fh = await open(join(this.#dir, this.#tmp), 'wx');
    const json = headJson(e, 0);
    this.#headLength = json.length + LENGTH_ROOM;
    const head = Buffer.alloc(8 + this.#headLength, 0x20);
    MAGIC.copy(head, 0);
    head.writeUInt32BE(this.#headLength, 4);
    json.copy(head, 8);
    await this.#fh.write(head, 0, head.length, 0);
    this.#pos = head.length;
  }

  write(chunk: Buffer): void {
    if (this.#failed || this.#ended) return;
    const n = chunk.length;
    this.pending += n;
    this.#chain = this.#chain.then(async () => {
      try {
        if (this.#failed) return;
        const { bytesWritten } = await this.#fh!.write(chunk, 0, n, this.#pos);
        if (bytesWritten !== n) throw new Error('short write');
        this.#pos += n;
        this.#size += n;
      } catch {
        this.#failed = true;
      } finally {
        this.pending -= n;
        if (this.pending === 0) for (const w of this.#waiters.splice(0)) w();
      }
    });
  }

  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  end(e: StoredResponse): Promise<boolean> {
    this.#ended = true;
    const done = this.#chain.then(async () => {
      const fh = this.#fh;
      if (this.#failed || fh === undefined) return false;
      try {
        const json = headJson(e, this.#size);
        if (json.length > this.#headLength) return false;
        const head = Buffer.alloc(this.#headLength, 0x20);
        json.copy(head, 0);
        await fh.write(head, 0, head.length, 8);
        if (this.#durable) await fh.sync();
        await fh.close();
        this.#fh = undefined;
      } catch {
        return false;
      }
      return this.#store.commit(this.#dir, this.#tmp, e, this.#pos);
    });
    return done.then(
      async (ok) => {
        if (!ok) await this.#remove();
        return ok;
      },
      async () => {
        await this.#remove();
        return false;
      },
    );
  }

  abort(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#failed = true;
    void this.#chain.then(() => this.#remove());
  }

  async #remove(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh !== undefined) await fh.close().catch(() => undefined);
    await unlink(join(this.#dir, this.#tmp)).catch(() => undefined);
  }
}

/** Where the tmpfs directories of machine-shared memory stores live (RAM); the OS temp dir where there is none. */
const SHM = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const SHM_PREFIX = 'switchboard-cache-';

/**
 * The root of a machine-shared memory store: `/dev/shm/switchboard-cache-<supervisor pid>/<policy>`,
 * one per gateway (its supervisor), so two gateways on one machine never share one by accident.
 * A supervisor removes its directory when it stops (`removeSharedMemory`, once its workers are
 * gone); directories of supervisors that died without stopping are removed here (a supervisor
 * killed leaves its RAM in tmpfs until the next gateway starts).
 */
export function sharedMemoryRoot(supervisor: number, policy: string): string {
  try {
    for (const d of readdirSync(SHM))
      if (d.startsWith(SHM_PREFIX) && !pidAlive(Number(d.slice(SHM_PREFIX.length)))) rmSync(join(SHM, d), { recursive: true, force: true });
  } catch {
    // Not ours to read: nothing to clean.
  }
  return join(SHM, `${SHM_PREFIX}${supervisor}`, encodeURIComponent(policy));
}

/**
 * Removes the machine-shared memory stores of `supervisor` (its tmpfs directory, every policy):
 * called by a supervisor that stops, after its workers exited. An upgrade's new supervisor has
 * another pid, so another directory: the old one goes with the old supervisor.
 */
export function removeSharedMemory(supervisor: number): void {
  try {
    rmSync(join(SHM, `${SHM_PREFIX}${supervisor}`), { recursive: true, force: true });
  } catch {
    // Not ours to remove: left for the next gateway's start.
  }
}
