/**
 * Connection caps for a listener (EDGE-CASES 27): at most `max` open connections in all, and at
 * most `perClient` from one client address, so that one greedy client (or thousands of idle
 * sockets) cannot starve the others. Counted per connection, never per request. The counts are
 * per listener and per worker process: each worker caps its own connections.
 */
import type { Socket } from 'node:net';

/**
 * On an admitted socket: the client address it is counted under per client, or null when it is
 * counted in the total only. A property rather than a closure per connection: an idle keep-alive
 * connection should cost as little as possible (bench/suites/memory.ts).
 */
const kClient = Symbol('switchboard.admittedClient');
type Admitted = Socket & { [kClient]?: string | null };

export class ConnectionLimits {
  #max: number;
  #perClient: number;
  #open = 0;
  /** Connections admitted and refused since this listener was created (read by metrics at scrape time). */
  accepted = 0;
  refused = 0;
  readonly #byClient = new Map<string, number>();
  /** Resolved when no admitted connection is open any more (a draining worker waits for it). */
  #idle: Array<() => void> = [];
  /** The one 'close' listener of every socket this instance admitted (`this` is the socket). */
  readonly #onClose: (this: Admitted) => void;

  constructor(max: number, perClient: number) {
    this.#max = max;
    this.#perClient = perClient;
    const limits = this;
    this.#onClose = function (this: Admitted): void {
      limits.#release(this[kClient] ?? null);
    };
  }

  /** New limits (reload); connections already open stay. */
  update(max: number, perClient: number): void {
    this.#max = max;
    this.#perClient = perClient;
  }

  /** Admitted connections open now. */
  get open(): number {
    return this.#open;
  }

  /** Resolves once every admitted connection has closed (at once when none is open). */
  whenIdle(): Promise<void> {
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Counts a new connection in, or returns false when a cap is reached (the caller refuses it).
   * An admitted connection is counted out when it closes.
   */
  admit(socket: Socket): boolean {
    if (this.#max > 0 && this.#open >= this.#max) {
      this.refused++;
      return false;
    }
    let client: string | null = null;
    if (this.#perClient > 0) {
      client = socket.remoteAddress ?? '';
      const n = this.#byClient.get(client) ?? 0;
      if (n >= this.#perClient) {
        this.refused++;
        return false;
      }
      this.#byClient.set(client, n + 1);
    }
    this.#open++;
    this.accepted++;
    if (client !== null) (socket as Admitted)[kClient] = client;
    // 'close' is emitted once: `on` spares the wrapper `once` would add per connection.
    socket.on('close', this.#onClose);
    return true;
  }

  #release(client: string | null): void {
    this.#open--;
    if (this.#open === 0 && this.#idle.length > 0) {
      const waiting = this.#idle;
      this.#idle = [];
      for (const resolve of waiting) resolve();
    }
    if (client === null) return;
    const n = this.#byClient.get(client);
    if (n === undefined) return;
    if (n <= 1) this.#byClient.delete(client);
    else this.#byClient.set(client, n - 1);
  }
}
