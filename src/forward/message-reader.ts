/**
 * Reads the handshake messages of a SOCKS5 connection from its socket, whatever the TCP
 * segmentation: bytes are gathered until a parser (forward/socks5.ts) finds a whole message, and
 * bytes past it stay for the next one (a client may send its greeting, credentials and request at
 * once). One reader per connection, for its handshake only; `detach` hands the socket and the
 * bytes read past the last message on to the tunnel.
 */
import type { Socket } from 'node:net';
import { isFault, type Parsed } from './socks5.ts';

const EMPTY: Buffer = Buffer.alloc(0);
/** Bytes held past the last message before the socket is paused (no handshake message is longer than 513). */
const HOLD = 16 * 1024;

/** Why a handshake message never came: the bytes could not be one (`reply`: the REP to answer), or the client left. */
export class HandshakeError extends Error {
  readonly reply: number | undefined;
  readonly closed: boolean;
  constructor(message: string, reply: number | undefined, closed: boolean) {
    super(message);
    this.reply = reply;
    this.closed = closed;
  }
}

interface Waiting {
  parse: (b: Buffer) => Parsed<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: HandshakeError) => void;
}

/** The handshake reader of one connection (created at accept, detached when the tunnel starts or the connection is refused). */
export class MessageReader {
  readonly #socket: Socket;
  #buffer: Buffer = EMPTY;
  #waiting: Waiting | undefined;
  #closed = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.once('close', this.#onClose);
    // A client that half-closes mid-handshake can never finish it.
    socket.once('end', this.#onClose);
  }

  /** The next message, as `parse` reads it. Rejects with a HandshakeError on bytes no message can start with, or when the client closes first. */
  next<T>(parse: (b: Buffer) => Parsed<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting = { parse, resolve: resolve as (v: unknown) => void, reject };
      this.#try();
      if (this.#waiting !== undefined) this.#socket.resume();
    });
  }

  /** Whether the client has closed or half-closed (sent its FIN): nothing more will come. */
  get ended(): boolean {
    return this.#closed;
  }

  /** Stops reading: the socket is left paused, and the bytes past the last message are returned. */
  detach(): Buffer {
    this.#socket.off('data', this.#onData);
    this.#socket.off('close', this.#onClose);
    this.#socket.off('end', this.#onClose);
    this.#socket.pause();
    const rest = this.#buffer;
    this.#buffer = EMPTY;
    return rest;
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#try();
    // Nobody reads while a password or a destination is checked: what comes meanwhile waits in the kernel.
    if (this.#waiting === undefined && this.#buffer.length >= HOLD) this.#socket.pause();
  };

  readonly #onClose = (): void => {
    this.#closed = true;
    this.#try();
  };

  #try(): void {
    const w = this.#waiting;
    if (w === undefined) return;
    const parsed = w.parse(this.#buffer);
    if (parsed === undefined) {
      if (this.#closed) {
        this.#waiting = undefined;
        w.reject(new HandshakeError('the client closed the connection mid-handshake', undefined, true));
      }
      return;
    }
    this.#waiting = undefined;
    if (isFault(parsed)) return w.reject(new HandshakeError(parsed.fault, parsed.reply, false));
    this.#buffer = this.#buffer.subarray(parsed.length);
    w.resolve(parsed.value);
  }
}
