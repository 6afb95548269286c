/**
 * The `compress` policy: gzip, Brotli or zstd (node:zlib) for responses whose client accepts it.
 *
 *   squeeze: { type: compress, encodings: [zstd, br, gzip], minSize: 1KiB, level: { br: 4 } }
 *
 * Sources: RFC 9110 §8.4 (Content-Encoding), §12.5.3 (Accept-Encoding, q-values), §8.8.3 (a strong
 * ETag differs per coding), RFC 9111 §5.2.2.6 (`no-transform`); nginx `gzip` (types, min length,
 * ETags weakened, `gzip_vary`), Caddy `encode` (preference order, minimum length), Envoy's
 * compressor filter (skip HEAD, 206, Content-Range, already-encoded responses).
 *
 * onResponse decides, once per response, from its head:
 *   skipped    HEAD; 1xx, 204, 206, 304; Content-Range; a Content-Encoding already; Cache-Control
 *              `no-transform`; a Content-Type not in `types` (or none; never text/event-stream);
 *              Content-Length below `minSize` (unknown length: compressed)
 *   eligible   `Vary: Accept-Encoding` is added (merged, once), whatever the client accepts, so a
 *              cache keeps the variants apart; then nothing more for a Range request or a client
 *              that accepts no offered coding
 *   compressed Content-Encoding set; Content-Length, Accept-Ranges removed (the body is streamed:
 *              chunked on HTTP/1.1, DATA frames on HTTP/2); a strong ETag weakened (`W/"x"`: the
 *              origin still answers If-None-Match with 304, as weak comparison allows, while no
 *              strong comparison can mistake the compressed bytes for the origin's)
 * onResponseBody streams each chunk through one zlib stream per response and returns what it has
 * produced so far (a promise: zlib works on the thread pool; the pipeline pauses the upstream
 * meanwhile, so memory per response is one chunk plus the coder's window). The last call ends the
 * stream and returns the rest. A response it leaves alone keeps its Content-Length
 * (`bodyUnchanged` answers per response).
 *
 * With the `cache` policy, list `compress` after it (`policies: [edge-cache, compress]`): response
 * hooks run in reverse order, so compress works first and the cache stores the compressed bytes
 * under `Vary: Accept-Encoding`; a hit is answered by the cache before compress, so each variant is
 * compressed once and then served as stored.
 */
import zlib from 'node:zlib';
import type { Filter, Headers, PolicyType, ResolveContext, ResponseHead, Session } from '../filter.ts';
import { parseSize } from '../../util/units.ts';
import { CODINGS, config, DEFAULT_LEVELS, DEFAULT_TYPES, type Coding, type CompressConfig } from './config.ts';
import { EVENT_STREAM, MediaTypes } from './media-types.ts';
import { Negotiator } from './negotiate.ts';

/** The resolved `compress` config. */
export interface ResolvedCompress {
  readonly encodings: readonly Coding[];
  /** Bytes. */
  readonly minSize: number;
  readonly types: MediaTypes;
  readonly level: Readonly<Record<Coding, number>>;
}

const EMPTY = Buffer.alloc(0);

/** Whether a Cache-Control value has the `no-transform` directive (case-insensitive, as a whole token). */
export function hasNoTransform(cacheControl: string): boolean {
  const v = cacheControl.toLowerCase();
  let at = v.indexOf('no-transform');
  while (at !== -1) {
    const before = at === 0 ? 44 : v.charCodeAt(at - 1);
    const after = at + 12 >= v.length ? 44 : v.charCodeAt(at + 12);
    if ((before === 44 || before === 32 || before === 9) && (after === 44 || after === 32 || after === 9 || after === 61)) return true;
    at = v.indexOf('no-transform', at + 12);
  }
  return false;
}

/** Adds `Accept-Encoding` to Vary unless it (or `*`) is there already; one field, values kept. */
export function addVary(headers: Headers): void {
  const vary = headers.get('vary');
  if (vary === undefined || vary.trim() === '') {
    headers.set('vary', 'Accept-Encoding');
    return;
  }
  for (const part of vary.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '*' || name === 'accept-encoding') return;
  }
  headers.set('vary', `${vary}, Accept-Encoding`);
}

/**
 * One response's coder: a zlib stream whose output is collected as it comes and handed out by
 * `push`. Per request (it lives in the session and is destroyed by onLog).
 */
class Compression {
  readonly #stream: zlib.Gzip | zlib.BrotliCompress | zlib.ZstdCompress;
  #out: Buffer[] = [];
  #error: Error | undefined = undefined;
  #closed = false;

  constructor(coding: Coding, level: number, sizeHint: number) {
    const c = zlib.constants;
    if (coding === 'gzip') this.#stream = zlib.createGzip({ level });
    else if (coding === 'br') {
      const params: Record<number, number> = { [c.BROTLI_PARAM_QUALITY]: level, [c.BROTLI_PARAM_MODE]: c.BROTLI_MODE_TEXT, [c.BROTLI_PARAM_LGWIN]: 19 };
      if (sizeHint > 0) params[c.BROTLI_PARAM_SIZE_HINT] = Math.min(sizeHint, 1 << 30);
      this.#stream = zlib.createBrotliCompress({ params });
    } else this.#stream = zlib.createZstdCompress({ params: { [c.ZSTD_c_compressionLevel]: level } });
    this.#stream.on('data', (b: Buffer) => this.#out.push(b));
    // A coder error fails only its request (the pipeline cuts the response); never an unhandled 'error'.
    this.#stream.on('error', (err: Error) => {
      this.#error = err;
    });
  }

  #take(): Buffer {
    const out = this.#out;
    if (out.length === 0) return EMPTY;
    this.#out = [];
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** Compresses `chunk`; resolves to the compressed bytes produced so far (everything, once `end`). */
  push(chunk: Buffer, end: boolean): Buffer | Promise<Buffer> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (!end && chunk.length === 0) return EMPTY;
    return new Promise((resolve, reject) => {
      const settle = (err?: Error | null): void => {
        // Destroyed by onLog (the request is over): nothing is waiting for these bytes.
        if (this.#closed) resolve(EMPTY);
        else if (err) reject(err);
        else resolve(this.#take());
      };
      if (!end) {
        this.#stream.write(chunk, settle);
        return;
      }
      this.#stream.once('end', settle);
      this.#stream.once('error', settle);
      this.#stream.end(chunk.length > 0 ? chunk : undefined);
    });
  }

  close(): void {
    this.#closed = true;
    this.#stream.destroy();
  }
}

/** Built once per generation; per request it reads the head and, when compressing, keeps a Compression. */
class CompressFilter implements Filter {
  readonly #c: ResolvedCompress;
  readonly #negotiator: Negotiator;

  constructor(c: ResolvedCompress) {
    this.#c = c;
    this.#negotiator = new Negotiator(c.encodings);
  }

  onResponse(s: Session, head: ResponseHead): undefined {
    const status = head.status;
    if (s.request.method === 'HEAD' || status < 200 || status === 204 || status === 206 || status === 304) return undefined;
    const h = head.headers;
    if (h.has('content-range')) return undefined;
    const encoding = h.get('content-encoding');
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return undefined;
    const cacheControl = h.get('cache-control');
    if (cacheControl !== undefined && hasNoTransform(cacheControl)) return undefined;
    const type = h.get('content-type');
    if (type === undefined || !this.#c.types.matches(type)) return undefined;
    const length = h.get('content-length');
    const size = length === undefined ? -1 : Number(length);
    if (size >= 0 && (size < this.#c.minSize || size === 0)) return undefined;
    addVary(h);
    if (s.request.headers.range !== undefined) return undefined;
    const coding = this.#negotiator.choose(s.request.headers['accept-encoding'] as string | undefined);
    if (coding === undefined) return undefined;
    h.set('content-encoding', coding);
    h.delete('content-length');
    h.delete('accept-ranges');
    const etag = h.get('etag');
    if (etag !== undefined && !etag.startsWith('W/')) h.set('etag', `W/${etag}`);
    s.local(this, new Compression(coding, this.#c.level[coding], Math.max(size, 0)));
    return undefined;
  }

  /** A response it does not compress keeps its Content-Length. */
  readonly bodyUnchanged = (s: Session): boolean => s.local<Compression>(this) === undefined;

  onResponseBody(s: Session, chunk: Buffer, end: boolean): Buffer | Promise<Buffer> | undefined {
    return s.local<Compression>(this)?.push(chunk, end);
  }

  onLog(s: Session): void {
    s.local<Compression>(this)?.close();
  }
}

function resolveCompress(raw: CompressConfig, ctx: ResolveContext): ResolvedCompress {
  const encodings = raw.encodings ?? CODINGS;
  encodings.forEach((coding, i) => {
    if (encodings.indexOf(coding) !== i) ctx.problem({ path: ['encodings', i], expected: 'each coding once', found: JSON.stringify(coding) });
  });
  const types = new MediaTypes();
  if (raw.types === undefined) for (const t of DEFAULT_TYPES) types.add(t);
  else {
    raw.types.forEach((t, i) => {
      if (t.trim().toLowerCase() === EVENT_STREAM) {
        ctx.problem({
          path: ['types', i],
          expected: 'a media type other than text/event-stream (events must reach the client at once: never compressed)',
          found: JSON.stringify(t),
        });
      } else if (!types.add(t)) {
        ctx.problem({ path: ['types', i], expected: 'a media type `type/subtype`, `type/*`, `type/*+suffix` or `*/*`', found: JSON.stringify(t) });
      }
    });
  }
  return {
    encodings,
    minSize: raw.minSize === undefined ? 1024 : parseSize(raw.minSize),
    types,
    level: { ...DEFAULT_LEVELS, ...raw.level },
  };
}

export const compressPolicy = {
  type: 'compress',
  description: 'Compresses responses with gzip, Brotli or zstd as the client accepts (Accept-Encoding q-values), for compressible types above a minimum size, streaming.',
  config,
  resolve: resolveCompress,
  create: (c: ResolvedCompress): Filter => new CompressFilter(c),
} satisfies PolicyType<typeof config, ResolvedCompress>;
