/**
 * One direction of a tunnel: every byte `from` reads is written to `to`, with backpressure (a write
 * the kernel did not take at once stops reads from `from` until it is out) and `from`'s FIN passed
 * on as `to.end()` (half-close). Nothing is done per message.
 *
 * Plain TCP sockets read into a buffer of the splice's own, reused for every read: Node's default
 * reads allocate a fresh 64 KiB buffer each (then the garbage collector frees it), and copying
 * through fresh memory is what a bulk transfer spent most of its CPU on (about 2.4 CPU s/GiB with
 * pipe(), 1.1 with a reused buffer: bench suite `forward`, docs/forward-proxy.md). The buffer is
 * written with no copy, so it is read into again only once the write is done: a write the kernel
 * took whole returns with nothing pending and the next read goes ahead; one it did not take holds
 * the buffer, reads stop, and the write's callback starts them again. A splice's buffer starts at
 * 2 KiB, from Buffer's shared pool (an idle WebSocket or a short tunnel costs no allocation of its
 * own), and grows once to 64 KiB at the first read that fills it.
 *
 * Node gives a reused read buffer to sockets it creates (`net.connect({ onread })`), not to accepted
 * ones; the same mechanism is reached through the socket's own symbols (`kBuffer`, `kBufferCb`,
 * `kBufferGen`, looked up by description) and its handle's `useUserBuffer`. When any of them is
 * missing (TLS sockets, another Node), the splice is `pipe()`, as before.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

const SMALL = 2 * 1024;
const LARGE = 64 * 1024;

/** The socket symbols of Node's `onread` mechanism; looked up once per worker (they are per process). */
let symbols: { buffer: symbol; callback: symbol; generator: symbol } | null | undefined;

function symbolsOf(s: Socket): typeof symbols {
  if (symbols !== undefined) return symbols;
  const own = Object.getOwnPropertySymbols(s);
  const find = (name: string) => own.find((x) => x.description === name);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const generator = find('kBufferGen');
  symbols = buffer && callback && generator ? { buffer, callback, generator } : null;
  return symbols;
}

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

function handleOf(s: Socket): UserBufferHandle | undefined {
  const handle = (s as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  return handle != null && typeof handle.useUserBuffer === 'function' ? (handle as UserBufferHandle) : undefined;
}

/** Splices `from` into `to` (see the file comment). Call once per direction, both sockets connected. */
export function splice(from: Socket, to: Socket): void {
  const handle = from instanceof TLSSocket ? undefined : handleOf(from);
  const sym = handle === undefined ? null : symbolsOf(from);
  if (handle === undefined || sym == null) {
    from.pipe(to);
    return;
  }
  new Splice(from, to, handle, sym);
}

class Splice {
  readonly from: Socket;
  readonly to: Socket;
  buffer: Buffer;
  /** A write still holds `buffer`: reads are stopped until its callback. */
  held = false;
  readonly written = (): void => {
    if (!this.held) return;
    this.held = false;
    // Socket#_read starts the handle reading again (nothing when it is gone).
    if (!this.from.destroyed) this.from._read(0);
  };

  constructor(from: Socket, to: Socket, handle: UserBufferHandle, sym: NonNullable<typeof symbols>) {
    this.from = from;
    this.to = to;
    this.buffer = Buffer.allocUnsafe(SMALL);
    // Bytes the stream machinery read before the switch go first.
    for (let chunk: Buffer | null = from.read(); chunk !== null; chunk = from.read()) to.write(chunk);
    const target = from as unknown as Record<symbol, unknown>;
    target[sym.buffer] = this.buffer;
    target[sym.callback] = (n: number, buf: Buffer) => this.#read(n, buf);
    target[sym.generator] = () => this.buffer;
    handle.useUserBuffer(this.buffer);
    from.once('end', () => to.end());
    from.resume();
  }

  /** `from` read `n` bytes into `buf`; false stops its reads (its handle's readStop). */
  #read(n: number, buf: Buffer): boolean {
    const to = this.to;
    if (to.destroyed) return false;
    to.write(n === buf.length ? buf : buf.subarray(0, n), this.written);
    if (n === buf.length && buf.length < LARGE) this.buffer = Buffer.allocUnsafe(LARGE);
    else if (to.writableLength !== 0) {
      this.held = true;
      return false;
    }
    return true;
  }
}
