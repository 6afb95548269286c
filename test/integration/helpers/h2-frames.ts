/**
 * A tiny raw HTTP/2 client for tests (RFC 9113), over a plain socket with prior knowledge (h2c):
 * it writes exactly the frames a test builds, in the writes the test chooses, and records every
 * frame the server sends. For what a well-behaved client cannot send (rapid reset, forbidden
 * headers, a short body) and for reading GOAWAY / RST_STREAM codes; use node:http2 for the rest.
 *
 * Header blocks are HPACK literals without indexing, new name, no Huffman (RFC 7541 §6.2.2), so
 * the encoder keeps no state. Responses are not HPACK-decoded, except a leading `:status` in its
 * common static-table or plain-literal forms (`statusOf`).
 */
import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const ErrorCode = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;
export const Setting = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5, MAX_HEADER_LIST_SIZE: 6 } as const;

/** One frame as received. */
export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A whole frame: 9-byte header (length, type, flags, stream id) and payload. */
export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the bits above the prefix. */
function hpackInt(value: number, prefixBits: number, first = 0): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from(hpackInt(bytes.length, 7)), bytes]); // H bit 0: no Huffman
}

/** A header block: every field a literal without indexing, new name (names are sent as given). */
export function hpack(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  return Buffer.concat(parts);
}

/** HEADERS (split into CONTINUATION frames past 16 KiB), END_HEADERS on the last, END_STREAM if asked. */
export function headersFrame(stream: number, fields: ReadonlyArray<readonly [string, string]>, endStream = true): Buffer {
  const block = hpack(fields);
  const max = 16_384;
  const out: Buffer[] = [];
  for (let at = 0; at === 0 || at < block.length; at += max) {
    const last = at + max >= block.length;
    const flags = (last ? Flag.END_HEADERS : 0) | (at === 0 && endStream ? Flag.END_STREAM : 0);
    out.push(frame(at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, flags, stream, block.subarray(at, at + max)));
  }
  return Buffer.concat(out);
}

/** The request pseudo-headers of a GET (or `method`) to `path` at `authority`. */
export function request(authority: string, path = '/', method = 'GET'): Array<[string, string]> {
  return [
    [':method', method],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
  ];
}

export function dataFrame(stream: number, data: Buffer | string, endStream = false): Buffer {
  return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, stream, Buffer.from(data));
}

function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => {
    b.writeUInt32BE(v >>> 0, 4 * i);
  });
  return b;
}

export function rstStreamFrame(stream: number, code: number = ErrorCode.CANCEL): Buffer {
  return frame(FrameType.RST_STREAM, 0, stream, u32(code));
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]> = [], ack = false): Buffer {
  const b = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    b.writeUInt16BE(id, 6 * i);
    b.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(FrameType.SETTINGS, ack ? Flag.ACK : 0, 0, b);
}

export function windowUpdateFrame(stream: number, increment: number): Buffer {
  return frame(FrameType.WINDOW_UPDATE, 0, stream, u32(increment));
}

export function pingFrame(data: Buffer = Buffer.alloc(8), ack = false): Buffer {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

/** GOAWAY's last stream id and error code. */
export function goawayOf(f: Frame): { lastStream: number; code: number; debug: string } {
  return { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), debug: f.payload.subarray(8).toString() };
}

/** RST_STREAM's error code. */
export function rstCodeOf(f: Frame): number {
  return f.payload.readUInt32BE(0);
}

/**
 * `:status` of a response HEADERS frame when its block starts with it as a static-table entry
 * (200, 204, 206, 304, 400, 404, 500) or a literal with the static `:status` name and a plain
 * value; undefined otherwise (Huffman, dynamic table, padding or priority flags).
 */
export function statusOf(f: Frame): number | undefined {
  if (f.flags & 0x28) return undefined;
  const b = f.payload;
  const STATIC = [200, 204, 206, 304, 400, 404, 500];
  if (b[0] >= 0x88 && b[0] <= 0x8e) return STATIC[b[0] - 0x88];
  if ((b[0] & 0xe0) === 0x20) return undefined; // a dynamic table size update first
  const literalNameIndex = b[0] >= 0x40 ? b[0] & 0x3f : b[0] & 0x0f; // incremental (01), or without/never (000x)
  if (b[0] >= 0x80 || literalNameIndex < 8 || literalNameIndex > 14 || b[1] & 0x80) return undefined;
  return Number(b.subarray(2, 2 + b[1]).toString('latin1'));
}

/** A raw HTTP/2 connection: sends what it is given, records and parses what comes back. */
export class RawH2 {
  readonly socket: net.Socket;
  /** Every frame received so far, in order. */
  readonly frames: Frame[] = [];
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  isClosed = false;
  #buffer: Buffer = Buffer.alloc(0);
  #waiters = new Set<() => void>();
  readonly #ack: boolean;

  private constructor(socket: net.Socket, ack: boolean) {
    this.socket = socket;
    this.#ack = ack;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => undefined); // a reset by the server shows up as 'close'
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        for (const w of this.#waiters) w();
        resolve();
      }),
    );
  }

  /**
   * Connects, sends the preface and our SETTINGS (`settings`, default none). PINGs are answered,
   * and the server's SETTINGS acknowledged unless `ack` is false (until then the server must not
   * assume they apply: RFC 9113 §6.5.3).
   */
  static open(port: number, opts: { settings?: ReadonlyArray<readonly [number, number]>; ack?: boolean } = {}): Promise<RawH2> {
    const settings = opts.settings ?? [];
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.off('error', reject);
        const conn = new RawH2(socket, opts.ack ?? true);
        socket.write(Buffer.concat([PREFACE, settingsFrame(settings)]));
        resolve(conn);
      });
      socket.once('error', reject);
    });
  }

  /** Writes `bytes` in one socket write; resolves once it is handed to the kernel. */
  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * The first frame (received before or after the call) that matches; rejects if the socket
   * closes or `ms` passes without one (a failure guard, not synchronisation).
   */
  waitFor(match: (f: Frame) => boolean, what: string, ms = 2000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.frames.find(match);
        if (found === undefined && !this.isClosed) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        if (found !== undefined) resolve(found);
        else reject(new Error(`connection closed without ${what}; got ${this.summary()}`));
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${ms}ms waiting for ${what}; got ${this.summary()}`));
      }, ms).unref();
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves once the server's SETTINGS have arrived (and, by default, been acknowledged). */
  serverSettings(ms?: number): Promise<Frame> {
    return this.waitFor((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK), 'the server SETTINGS', ms);
  }

  async goaway(ms?: number): Promise<{ lastStream: number; code: number; debug: string }> {
    return goawayOf(await this.waitFor((f) => f.type === FrameType.GOAWAY, 'GOAWAY', ms));
  }

  async rst(stream: number, ms?: number): Promise<number> {
    return rstCodeOf(await this.waitFor((f) => f.type === FrameType.RST_STREAM && f.stream === stream, `RST_STREAM on stream ${stream}`, ms));
  }

  /** The first HEADERS frame on `stream` (the response head). */
  headers(stream: number, ms?: number): Promise<Frame> {
    return this.waitFor((f) => f.type === FrameType.HEADERS && f.stream === stream, `HEADERS on stream ${stream}`, ms);
  }

  /** Whichever comes first on `stream`: a response head or a reset (or a GOAWAY for the connection). */
  outcome(stream: number, ms?: number): Promise<Frame> {
    return this.waitFor(
      (f) => ((f.type === FrameType.HEADERS || f.type === FrameType.RST_STREAM) && f.stream === stream) || f.type === FrameType.GOAWAY,
      `a response, reset or GOAWAY for stream ${stream}`,
      ms,
    );
  }

  /** Received frames as short text, for failure messages. */
  summary(): string {
    const names = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));
    return this.frames
      .slice(0, 20)
      .map(
        (f) =>
          `${names[f.type] ?? f.type}(s${f.stream},f${f.flags}${f.type === FrameType.RST_STREAM || f.type === FrameType.GOAWAY ? `,code ${f.type === FrameType.GOAWAY ? goawayOf(f).code : rstCodeOf(f)}` : ''})`,
      )
      .join(' ');
  }

  close(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) break;
      const f: Frame = {
        type: this.#buffer[3],
        flags: this.#buffer[4],
        stream: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buffer.subarray(9, 9 + length),
      };
      this.#buffer = this.#buffer.subarray(9 + length);
      this.frames.push(f);
      if (f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK) && this.#ack && this.socket.writable) this.socket.write(settingsFrame([], true));
      if (f.type === FrameType.PING && !(f.flags & Flag.ACK) && this.socket.writable) this.socket.write(pingFrame(f.payload, true));
    }
    for (const w of this.#waiters) w();
  }
}
