/**
 * RFC 9113 §8.2.1 for HTTP/2 requests, checked before nghttp2 sees them (EDGE-CASES 19).
 *
 * nghttp2 finds a malformed field (CR, LF or NUL in a value, a space or colon in a name, ...) but
 * hands it to node's `on_invalid_header` callback, which answers "ignore" and has no option to do
 * otherwise: the field is dropped and the request is served without it. So the bytes of an HTTP/2
 * connection pass through a `CheckedTransport` first, whose `FrameReader` collects every header
 * block (HEADERS and CONTINUATION frames) and checks it (hpack-fields.ts):
 *   - a malformed field in a request's headers: that stream is reset with PROTOCOL_ERROR when
 *     node:http2 opens it (`takeMalformed`), and never forwarded;
 *   - a malformed field added to the HPACK table (later blocks could refer to it), or in trailers
 *     (the request is already under way): the connection ends with GOAWAY PROTOCOL_ERROR, before
 *     nghttp2 reads the block;
 *   - a header block larger than `maxBlock` (never legitimate: four times the header list limit)
 *     cannot be checked: GOAWAY ENHANCE_YOUR_CALM.
 * node:http2 reads and writes the transport as a JavaScript stream (its JSStreamSocket), not the
 * socket's native handle: that is the cost of seeing the bytes first.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { checkHeaderBlock } from './hpack-fields.ts';

const { NGHTTP2_PROTOCOL_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

const PREFACE_LENGTH = 24;
const FRAME_HEADER = 9;
/** SETTINGS_MAX_FRAME_SIZE: we keep the default, so nghttp2 refuses longer frames itself. */
const MAX_FRAME = 16_384;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/**
 * Reads a client's HTTP/2 byte stream frame by frame (RFC 9113 §4.1), collecting and checking
 * header blocks and skipping every other payload without copying it.
 */
export class FrameReader {
  /** Streams whose request header block holds a malformed field, in ascending order. */
  readonly malformed: number[] = [];
  readonly #maxBlock: number;
  #preface = PREFACE_LENGTH;
  readonly #head = Buffer.alloc(FRAME_HEADER);
  #headFill = 0;
  #type = 0;
  #flags = 0;
  #stream = 0;
  /** Payload bytes of the current frame still to come (0 while reading a frame header). */
  #left = 0;
  /** The payload of the current HEADERS or CONTINUATION frame, while it is collected. */
  #payload: Buffer | undefined;
  /** The header block under way (HEADERS without END_HEADERS, then CONTINUATION). */
  #block: Buffer[] = [];
  #blockSize = 0;
  #blockStream = 0;
  #blockTrailers = false;
  #maxStream = 0;

  constructor(maxBlock: number) {
    this.#maxBlock = maxBlock;
  }

  /** Reads the next bytes; returns 0, or the GOAWAY code when the connection must end now. */
  read(chunk: Buffer): number {
    let i = 0;
    const n = chunk.length;
    if (this.#preface > 0) {
      i = Math.min(this.#preface, n);
      this.#preface -= i;
    }
    while (i < n) {
      if (this.#left > 0) {
        // The rest of a payload: skipped, or copied into the header frame being collected.
        const take = Math.min(this.#left, n - i);
        if (this.#payload !== undefined) chunk.copy(this.#payload, this.#payload.length - this.#left, i, i + take);
        i += take;
        this.#left -= take;
        if (this.#left === 0 && this.#payload !== undefined) {
          const payload = this.#payload;
          this.#payload = undefined;
          const code = this.#fragment(payload);
          if (code !== 0) return code;
        }
        continue;
      }
      const take = Math.min(FRAME_HEADER - this.#headFill, n - i);
      chunk.copy(this.#head, this.#headFill, i, i + take);
      this.#headFill += take;
      i += take;
      if (this.#headFill < FRAME_HEADER) break;
      this.#headFill = 0;
      const h = this.#head;
      const length = h.readUIntBE(0, 3);
      this.#type = h[3];
      this.#flags = h[4];
      this.#stream = h.readUInt32BE(5) & 0x7fffffff;
      // Anything but CONTINUATION inside a header block is a connection error nghttp2 raises itself.
      if (this.#type !== CONTINUATION) this.#block.length = 0;
      if ((this.#type !== HEADERS && this.#type !== CONTINUATION) || length > MAX_FRAME) {
        this.#left = length;
      } else if (n - i >= length) {
        // The whole payload is in this chunk: checked in place.
        const code = this.#fragment(chunk.subarray(i, i + length));
        i += length;
        if (code !== 0) return code;
      } else {
        this.#payload = Buffer.allocUnsafe(length);
        this.#left = length;
      }
    }
    return 0;
  }

  #fragment(p: Buffer): number {
    const flags = this.#flags;
    if (this.#type === HEADERS) {
      let start = 0;
      let end = p.length;
      if (flags & PADDED) {
        if (p.length < 1) return 0;
        start = 1;
        end -= p[0];
      }
      if (flags & PRIORITY) start += 5;
      // Malformed frames (bad padding, stream 0) are nghttp2's to refuse.
      if (end < start || this.#stream === 0) return 0;
      this.#blockStream = this.#stream;
      this.#blockTrailers = this.#stream <= this.#maxStream;
      if (!this.#blockTrailers) this.#maxStream = this.#stream;
      this.#block = [p.subarray(start, end)];
      this.#blockSize = end - start;
    } else {
      if (this.#block.length === 0 || this.#stream !== this.#blockStream) return 0;
      this.#block.push(p);
      this.#blockSize += p.length;
    }
    if (this.#blockSize > this.#maxBlock) {
      this.#block.length = 0;
      return NGHTTP2_ENHANCE_YOUR_CALM;
    }
    if (!(flags & END_HEADERS)) return 0;
    const block = this.#block.length === 1 ? this.#block[0] : Buffer.concat(this.#block);
    this.#block = [];
    switch (checkHeaderBlock(block)) {
      case 'ok':
        return 0;
      case 'malformed':
        if (this.#blockTrailers) return NGHTTP2_PROTOCOL_ERROR;
        this.malformed.push(this.#blockStream);
        return 0;
      case 'malformed-indexed':
        return NGHTTP2_PROTOCOL_ERROR;
    }
  }

  /** Whether stream `id`'s header block was malformed; forgets it and every lower id. */
  takeMalformed(id: number): boolean {
    const m = this.malformed;
    let found = false;
    while (m.length > 0 && m[0] <= id) found = m.shift() === id || found;
    return found;
  }
}

/**
 * The stream node:http2 is given instead of the client's socket: the socket's bytes, read by a
 * FrameReader before they are passed on. Shaped as node's JSStreamSocket uses a stream ('data',
 * 'end', 'close', 'error'; pause, resume, cork, uncork, write, end, destroy).
 */
export class CheckedTransport extends EventEmitter {
  readonly socket: Socket;
  readonly reader: FrameReader;
  /** Called with a GOAWAY code when the connection must end (set by the session's owner). */
  onFatal: (code: number) => void;

  constructor(socket: Socket, maxBlock: number) {
    super();
    this.socket = socket;
    this.reader = new FrameReader(maxBlock);
    this.onFatal = () => socket.destroy();
    // node:http2 sets these on a socket it reads itself; here it sees only this object.
    socket.setNoDelay(true);
    (socket as Socket & { disableRenegotiation?: () => void }).disableRenegotiation?.();
    socket.on('data', (chunk: Buffer) => {
      const code = this.reader.read(chunk);
      if (code === 0) this.emit('data', chunk);
      else {
        socket.pause();
        this.onFatal(code);
      }
    });
    socket.on('end', () => this.emit('end'));
    socket.on('close', () => this.emit('close'));
    socket.on('error', (err: Error) => this.emit('error', err));
    socket.pause();
  }

  get readable(): boolean {
    return this.socket.readable;
  }

  get writable(): boolean {
    return this.socket.writable;
  }

  pause(): this {
    this.socket.pause();
    return this;
  }

  resume(): this {
    this.socket.resume();
    return this;
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  write(chunk: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    return this.socket.write(chunk, cb);
  }

  end(cb?: () => void): this {
    this.socket.end(cb);
    return this;
  }

  destroy(): this {
    this.socket.destroy();
    return this;
  }
}
