/**
 * Tunnels: the two sockets of an upgraded connection (WebSocket), a CONNECT tunnel or a layer 4
 * connection, spliced together. Only bytes are moved, by splice.ts both ways (backpressure: a side
 * that cannot take more stops reads from the other), so nothing is done per message. Close frames
 * and codes are bytes like any other.
 *
 *   client ──pipe──► endpoint      a side's FIN is passed on (half-close); a side closing ends the
 *   client ◄──pipe── endpoint      other once its pending bytes are out; an error destroys both;
 *                                  `idle` ms without a byte either way destroys both.
 *
 * A listener keeps its open tunnels in a `Tunnels` registry: they outlive their config generation
 * (a reload does not wait for them) and are destroyed together at the listener's hard deadline.
 */
import type { Socket } from 'node:net';
import { splice } from './splice.ts';

/** Bytes read past the heads on either side, and the answer head for the client. */
export interface TunnelHeads {
  /** The 101 head, written to the client first. */
  readonly answer: Buffer;
  /** Bytes the endpoint sent after its 101 head. */
  readonly upstreamRest: Buffer;
  /** Bytes the client sent after its request head. */
  readonly clientRest: Buffer;
}

export class Tunnel {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly #inBase: number;
  readonly #outBase: number;
  readonly #onEnd: (tunnel: Tunnel) => void;
  #open = 2;

  /**
   * Splices `client` and `upstream` at once: `answer` and `upstreamRest` go to the client first,
   * `clientRest` to the endpoint. `idle`: ms without a byte either way (0 = no limit). `onEnd` is
   * called once, when both sockets have closed.
   */
  constructor(client: Socket, upstream: Socket, idle: number, heads: TunnelHeads, onEnd: (tunnel: Tunnel) => void) {
    this.client = client;
    this.upstream = upstream;
    this.#onEnd = onEnd;
    this.#inBase = client.bytesRead - client.readableLength - heads.clientRest.length;
    this.#outBase = client.bytesWritten + heads.answer.length;
    this.#link(client, upstream, idle);
    this.#link(upstream, client, idle);
    // Layer 4 tunnels have no answer head: no empty write (it would cost a syscall per connection).
    const first = heads.upstreamRest.length === 0 ? heads.answer : Buffer.concat([heads.answer, heads.upstreamRest]);
    if (first.length > 0) client.write(first);
    if (heads.clientRest.length > 0) upstream.write(heads.clientRest);
    splice(upstream, client);
    splice(client, upstream);
  }

  /** Bytes the client sent through the tunnel so far. */
  get bytesIn(): number {
    return this.client.bytesRead - this.client.readableLength - this.#inBase;
  }

  /** Bytes the client was sent through the tunnel so far (the 101 head not included). */
  get bytesOut(): number {
    return Math.max(0, this.client.bytesWritten - this.#outBase);
  }

  /** Cuts both sockets now (idle timeout, the listener's hard deadline). */
  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  #link(side: Socket, other: Socket, idle: number): void {
    side.setTimeout(idle);
    side.on('timeout', () => this.destroy());
    side.on('error', () => other.destroy());
    side.once('close', () => {
      endSoon(other);
      if (--this.#open === 0) this.#onEnd(this);
    });
  }
}

/** Ends `s` once what is queued for it is written, then destroys it; at once if already finished. */
function endSoon(s: Socket): void {
  if (s.destroyed) return;
  if (s.writableFinished) {
    s.destroy();
    return;
  }
  s.once('finish', () => s.destroy());
  s.end();
}

/** One listener's open tunnels. */
export class Tunnels {
  readonly #open = new Set<Tunnel>();
  #waiters: (() => void)[] = [];

  get size(): number {
    return this.#open.size;
  }

  /** Starts a tunnel (see `Tunnel`) and keeps it until both its sockets have closed. */
  open(client: Socket, upstream: Socket, idle: number, heads: TunnelHeads): Tunnel {
    const tunnel = new Tunnel(client, upstream, idle, heads, (t) => {
      this.#open.delete(t);
      if (this.#open.size === 0) this.#wake();
    });
    this.#open.add(tunnel);
    return tunnel;
  }

  /** Destroys every open tunnel (the hard deadline after a drain). */
  destroyAll(): void {
    for (const t of this.#open) t.destroy();
  }

  /** Resolves once no tunnel is open, or after `ms` (≤ 0: at once). Never rejects. */
  drained(ms: number): Promise<void> {
    if (this.#open.size === 0 || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#waiters.push(done);
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
