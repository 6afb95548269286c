/**
 * The static-file step: the last step of a request on a route with `static:` instead of an
 * upstream (docs/static.md). The file goes out through the same sink as an upstream response (the
 * downstream, or the response filters before it: respond.ts), so the route's and the listener's
 * response phases apply to it, and our refusals (404, 405, 412, 416) go through `respond` as every
 * answer of our own does.
 *
 *   GET/HEAD? ─► 405 · path (static-site.ts) ─► 400/404 · open (O_NOFOLLOW|O_NONBLOCK) + fstat
 *   symlink check on the opened fd ─► 404 · directory ─► index / 301 to the slash / 404
 *   precompressed sibling (Accept-Encoding) · conditions ─► 304/412 · Range ─► 206/416
 *   head ─► sink · read loop (64 KiB, backpressure, sendTimeout) ─► end · close
 *
 * File descriptors: one `FileSend` owns at most one descriptor at a time, and closes it exactly
 * once, when the response ends, fails, is replaced by a filter, or the client leaves (it is the
 * session's `attempt`). A close never runs while a read or an open on that descriptor is in
 * flight (the number could be reused by another open before the read ran): it waits for it.
 */
import { close, constants, fstat, open, read, readlink, realpath, type Stats } from 'node:fs';
import { ProxyError } from '../errors.ts';
import type { Flow, ResponseSink } from '../transport/forward.ts';
import { errorReply } from './error-response.ts';
import { FilteredResponse, bodyUnread, respond } from './respond.ts';
import type { AttemptHandle, RequestSession } from './session.ts';
import { acceptedEncodings, etagOf, evaluateConditions, ifRangeHolds, parseRange, type Encoding } from './static-conditions.ts';
import { typeOf, type StaticSite } from './static-site.ts';

const CHUNK = 64 * 1024;
const NOFOLLOW = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;
const FOLLOW = constants.O_RDONLY | constants.O_NONBLOCK;
/** Linux names an open descriptor's real path in /proc: one readlink checks the whole path, on what was opened. */
const PROC_FD = process.platform === 'linux';
const ALLOW = { allow: 'GET, HEAD' };

/** One opened file: its descriptor and what fstat said. */
interface Opened {
  fd: number;
  stat: Stats;
}

function closeQuietly(fd: number): void {
  close(fd, () => undefined);
}

/** Opens `file`, and, unless links are followed, makes sure no component of it is a symbolic link (the real path is `file`). */
function openChecked(file: string, follow: boolean, done: (err: NodeJS.ErrnoException | null, o: Opened | undefined) => void): void {
  open(file, follow ? FOLLOW : NOFOLLOW, (err, fd) => {
    if (err !== null) return done(err, undefined);
    const stat = (): void =>
      fstat(fd, (e, st) => {
        if (e !== null) {
          closeQuietly(fd);
          return done(e, undefined);
        }
        done(null, { fd, stat: st });
      });
    if (follow) return stat();
    const check = (e: NodeJS.ErrnoException | null, real: string): void => {
      if (e !== null || real !== file) {
        closeQuietly(fd);
        const refused = new Error('a symbolic link in the path') as NodeJS.ErrnoException;
        refused.code = 'ELOOP';
        return done(refused, undefined);
      }
      stat();
    };
    if (PROC_FD) readlink(`/proc/self/fd/${fd}`, check);
    else realpath(file, check);
  });
}

/** Serves the routed request in `s` from `site`. */
export function serveStatic(s: RequestSession, site: StaticSite): void {
  const method = s.down.method;
  if (method !== 'GET' && method !== 'HEAD') {
    return respond(s, { status: 405, headers: ALLOW, error: { code: 'FILE_METHOD_NOT_ALLOWED', message: 'a static route answers GET and HEAD only' } }, Infinity);
  }
  const path = s.target.slice(0, s.target.length - s.query.length);
  const rel = site.resolve(path);
  if (rel === 400) return notServed(s, 'INVALID_FILE_PATH');
  if (rel === 404) return notServed(s, 'FILE_NOT_FOUND');
  const send = new FileSend(s, site, rel);
  s.attempt = send;
  send.start();
}

function notServed(s: RequestSession, code: 'INVALID_FILE_PATH' | 'FILE_NOT_FOUND'): void {
  s.error = code;
  respond(s, errorReply(code), Infinity);
}

/** One file on its way to the client: the session's attempt (its abort closes the file) and the sink's flow. */
class FileSend implements AttemptHandle, Flow {
  readonly s: RequestSession;
  readonly site: StaticSite;
  /** The path under the root, decoded. */
  rel: string;
  /** The descriptor owned, -1 when none. */
  fd = -1;
  /** An open or a read is in flight: a close waits for it. */
  busy = false;
  finished = false;
  sink: ResponseSink | undefined = undefined;
  pos = 0;
  /** One past the last byte to send. */
  end = 0;
  /** Waiting for the client to drain (or for an async filter: the flow's resume). */
  waiting = false;
  paused = false;
  stallTimer: NodeJS.Timeout | undefined = undefined;
  /** Candidate siblings still to try, best first. */
  encodings: Encoding[] = [];
  encoding: Encoding | undefined = undefined;
  /** The original file, while a sibling is looked for. */
  original: Opened | undefined = undefined;

  constructor(s: RequestSession, site: StaticSite, rel: string) {
    this.s = s;
    this.site = site;
    this.rel = rel;
  }

  start(): void {
    const rel = this.rel;
    if (rel.endsWith('/')) return this.#tryIndex(0);
    this.#open(this.site.root + rel, (o) => this.#opened(o));
  }

  /** Opens `file` as this request's; `then` gets it, or undefined when it is absent or refused. */
  #open(file: string, then: (o: Opened | undefined, err?: NodeJS.ErrnoException) => void): void {
    this.busy = true;
    openChecked(file, this.site.config.followSymlinks, (err, o) => {
      this.busy = false;
      if (this.finished) {
        if (o !== undefined) closeQuietly(o.fd);
        return this.#closeOriginal();
      }
      then(o, err ?? undefined);
    });
  }

  #tryIndex(i: number): void {
    const index = this.site.index;
    if (i >= index.length) return this.#fail('FILE_NOT_FOUND');
    this.#open(this.site.root + this.rel + index[i], (o) => {
      if (o === undefined || !o.stat.isFile()) {
        if (o !== undefined) closeQuietly(o.fd);
        return this.#tryIndex(i + 1);
      }
      this.rel += index[i];
      this.#opened(o);
    });
  }

  #opened(o: Opened | undefined): void {
    if (o === undefined) return this.#fail('FILE_NOT_FOUND');
    if (!o.stat.isFile()) {
      closeQuietly(o.fd);
      if (o.stat.isDirectory() && this.site.index.length > 0) return this.#redirectToSlash();
      return this.#fail('FILE_NOT_FOUND');
    }
    const s = this.s;
    if (this.site.config.precompressed && o.stat.size > 0) {
      const accepted = acceptedEncodings(s.down.headers['accept-encoding']);
      if (accepted.length > 0) {
        this.original = o;
        this.encodings = accepted;
        return this.#trySibling();
      }
    }
    this.#serve(o);
  }

  /** Tries the next accepted sibling (`a.css.br`): used when it is a regular file not older than the original. */
  #trySibling(): void {
    const e = this.encodings.shift();
    const original = this.original!;
    if (e === undefined) {
      this.original = undefined;
      return this.#serve(original);
    }
    this.#open(this.site.root + this.rel + e.suffix, (o) => {
      if (o === undefined) return this.#trySibling();
      if (!o.stat.isFile() || o.stat.mtimeMs < original.stat.mtimeMs) {
        closeQuietly(o.fd);
        return this.#trySibling();
      }
      this.original = undefined;
      closeQuietly(original.fd);
      this.encoding = e;
      this.#serve(o);
    });
  }

  #closeOriginal(): void {
    const o = this.original;
    if (o === undefined) return;
    this.original = undefined;
    closeQuietly(o.fd);
  }

  #redirectToSlash(): void {
    const s = this.s;
    const location = `${s.path}/${s.query}`;
    this.finished = true;
    respond(s, { status: 301, headers: { location, 'content-type': 'text/plain; charset=utf-8' }, body: `Moved to ${location}\n` }, Infinity);
  }

  #fail(code: 'FILE_NOT_FOUND' | 'FILE_READ_ERROR'): void {
    this.#release();
    this.s.error = code;
    respond(this.s, errorReply(code), Infinity);
  }

  /** The representation is chosen: conditions, range, head, then the body. */
  #serve(o: Opened): void {
    this.fd = o.fd;
    const s = this.s;
    const down = s.down;
    const st = o.stat;
    const site = this.site;
    const enc = this.encoding;
    const name = this.rel.slice(this.rel.lastIndexOf('/') + 1);
    const etag = etagOf(st.size, st.mtimeMs, enc?.coding);
    const lastModified = new Date(st.mtimeMs).toUTCString();
    const cacheControl = site.cacheControl(this.rel, name);
    const headers: string[] = ['etag', etag, 'last-modified', lastModified];
    if (cacheControl !== undefined) headers.push('cache-control', cacheControl);
    if (site.config.precompressed) headers.push('vary', 'Accept-Encoding');
    const headersIn = down.headers;
    const cond = evaluateConditions(headersIn, etag, st.mtimeMs);
    if (cond === 412) {
      this.#release();
      s.error = 'PRECONDITION_FAILED';
      return respond(s, errorReply('PRECONDITION_FAILED'), Infinity);
    }
    if (bodyUnread(s)) down.closeAfter();
    if (cond === 304) {
      this.#release();
      return this.#headOnly(304, headers);
    }
    headers.push('content-type', typeOf(name), 'accept-ranges', 'bytes', 'x-content-type-options', 'nosniff');
    if (enc !== undefined) headers.push('content-encoding', enc.coding);
    const size = st.size;
    let status = 200;
    let start = 0;
    let end = size;
    const rangeHeader = headersIn.range;
    if (rangeHeader !== undefined && down.method === 'GET' && ifRangeHolds(headersIn['if-range'] as string | undefined, etag, lastModified)) {
      const range = parseRange(rangeHeader, size);
      if (range === 'unsatisfiable') {
        this.#release();
        s.error = 'RANGE_NOT_SATISFIABLE';
        return respond(
          s,
          { status: 416, headers: { 'content-range': `bytes */${size}`, 'accept-ranges': 'bytes' }, error: errorReply('RANGE_NOT_SATISFIABLE').error },
          Infinity,
        );
      }
      if (range !== undefined) {
        status = 206;
        start = range.start;
        end = range.end + 1;
        headers.push('content-range', `bytes ${start}-${range.end}/${size}`);
      }
    }
    headers.push('content-length', String(end - start), 'x-request-id', s.requestId);
    if (down.method === 'HEAD' || end === start) {
      this.#release();
      return this.#headOnly(status, headers);
    }
    this.pos = start;
    this.end = end;
    const sink = s.chain.filtersResponse ? new FilteredResponse(s) : down;
    this.sink = sink;
    if (!sink.head(status, undefined, headers, this)) return this.stop();
    this.#read();
  }

  /** A response without a body (HEAD, 304, empty file): head and end through the sink. */
  #headOnly(status: number, headers: string[]): void {
    this.finished = true;
    const s = this.s;
    if (status === 304) headers.push('x-request-id', s.requestId);
    const sink = s.chain.filtersResponse ? new FilteredResponse(s) : s.down;
    if (sink.head(status, undefined, headers, undefined)) sink.end(undefined);
  }

  #read(): void {
    if (this.finished || this.paused || this.waiting || this.busy) return;
    const n = Math.min(CHUNK, this.end - this.pos);
    this.busy = true;
    read(this.fd, Buffer.allocUnsafe(n), 0, n, this.pos, this.#onRead);
  }

  readonly #onRead = (err: NodeJS.ErrnoException | null, bytes: number, buf: Buffer): void => {
    this.busy = false;
    if (this.finished) return this.#closeFd();
    const sink = this.sink!;
    if (err !== null || bytes === 0) {
      // Failed, or the file shrank under us: the response is cut, never ended short and clean.
      this.s.error = 'FILE_READ_ERROR';
      this.#release();
      return sink.abort(new ProxyError('FILE_READ_ERROR', err ?? undefined));
    }
    this.pos += bytes;
    const chunk = bytes === buf.length ? buf : buf.subarray(0, bytes);
    const last = this.pos >= this.end;
    if (last) this.#release();
    const more = sink.data(chunk);
    if (last) return sink.end(undefined);
    if (this.finished) return;
    if (more) return this.#read();
    this.waiting = true;
    sink.onDrain(this.#drained);
    const t = this.s.settings.sendTimeout;
    if (t > 0 && this.stallTimer === undefined) this.stallTimer = setTimeout(this.#stalled, t);
  };

  readonly #drained = (): void => {
    if (!this.waiting) return;
    this.waiting = false;
    if (this.stallTimer !== undefined) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
    this.#read();
  };

  readonly #stalled = (): void => {
    this.stallTimer = undefined;
    if (this.finished) return;
    this.s.error = 'SEND_TIMEOUT';
    this.#release();
    this.sink!.abort(new ProxyError('SEND_TIMEOUT'));
  };

  /** Flow: an async response filter holds the body. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (this.waiting) return this.#drained();
    this.#read();
  }

  /** Flow: a filter replaced the response; the file is not wanted. */
  stop(): void {
    this.#release();
  }

  /** AttemptHandle: the client left. */
  abort(_reason: Error): void {
    this.#release();
  }

  /** Done with the file: no more reads; the descriptor closed now, or when the operation in flight returns. */
  #release(): void {
    this.finished = true;
    if (this.stallTimer !== undefined) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
    if (!this.busy) {
      this.#closeFd();
      this.#closeOriginal();
    }
  }

  #closeFd(): void {
    const fd = this.fd;
    if (fd < 0) return;
    this.fd = -1;
    closeQuietly(fd);
  }
}
