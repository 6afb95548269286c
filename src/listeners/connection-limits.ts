/**
 * Connection caps for a listener (EDGE-CASES 27): at most `max` open connections in all, and at
 * most `perClient` from one client address, so that one greedy client (or thousands of idle
 * sockets) cannot starve the others. Counted per connection, never per request.
 */
import type { Socket } from 'node:net';

export class ConnectionLimits {
  #max: number;
  #perClient: number;
  #open = 0;
  readonly #byClient = new Map<string, number>();
  /** Resolved when no admitted connection is open any more (a draining worker waits for it). */
  #idle: Array<() => void> = [];

  constructor(max: number, perClient: number) {
    this.#max = max;
    this.#perClient = perClient;
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
    if (this.#max > 0 && this.#open >= this.#max) return false;
    const client = socket.remoteAddress ?? '';
    if (this.#perClient > 0) {
      const n = this.#byClient.get(client) ?? 0;
      if (n >= this.#perClient) return false;
      this.#byClient.set(client, n + 1);
    }
    this.#open++;
    socket.once('close', () => {
      this.#open--;
      if (this.#open === 0 && this.#idle.length > 0) {
        const waiting = this.#idle;
        this.#idle = [];
        for (const resolve of waiting) resolve();
      }
      const n = this.#byClient.get(client);
      if (n === undefined) return;
      if (n <= 1) this.#byClient.delete(client);
      else this.#byClient.set(client, n - 1);
    });
    return true;
  }
}
