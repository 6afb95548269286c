/**
 * Reads the replies of a client handshake (HTTP CONNECT to a parent, SOCKS5) off a fresh socket,
 * then hands the socket back as it found it: paused in no mode, with every byte that arrived after
 * the last reply put back in front (`unshift`), so the tunnel's first bytes are never lost.
 * One reader per handshake; it never reads more than `limit` bytes before a reply is complete.
 */
import type { Socket } from 'node:net';

/** Reads one reply from the bytes so far: undefined = needs more, else the value and the bytes it used. Throws on a malformed reply. */
export type ReplyParser<T> = (bytes: Buffer) => { value: T; used: number } | undefined;

const EMPTY = Buffer.alloc(0);

export class HandshakeReader {
  readonly #socket: Socket;
  readonly #limit: number;
  #bytes: Buffer = EMPTY;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #onReadable = (): void => {
    for (let chunk = this.#socket.read() as Buffer | null; chunk !== null; chunk = this.#socket.read() as Buffer | null) {
      this.#bytes = this.#bytes.length === 0 ? chunk : Buffer.concat([this.#bytes, chunk]);
    }
    this.#wake?.();
  };
  readonly #onEnd = (): void => this.#fail(new Error('the parent closed the connection during the handshake'));
  readonly #onError = (err: Error): void => this.#fail(err);

  constructor(socket: Socket, limit: number) {
    this.#socket = socket;
    this.#limit = limit;
    socket.on('readable', this.#onReadable);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#wake?.();
  }

  /** The next reply, once its bytes are there; rejects when the socket fails or closes first, or the reply is malformed or too long. */
  async read<T>(parse: ReplyParser<T>): Promise<T> {
    for (;;) {
      if (this.#bytes.length > 0) {
        const reply = parse(this.#bytes);
        if (reply !== undefined) {
          this.#bytes = this.#bytes.subarray(reply.used);
          return reply.value;
        }
        if (this.#bytes.length >= this.#limit) throw new Error(`the parent's reply is longer than ${this.#limit} bytes`);
      }
      if (this.#failure !== undefined) throw this.#failure;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }

  /** Stops reading and puts back the bytes that followed the last reply. The socket keeps a silent 'error' listener until the caller adds its own. */
  release(): Socket {
    const socket = this.#socket;
    socket.off('readable', this.#onReadable);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onEnd);
    socket.off('error', this.#onError);
    if (this.#bytes.length > 0) socket.unshift(this.#bytes);
    this.#bytes = EMPTY;
    return socket;
  }
}
