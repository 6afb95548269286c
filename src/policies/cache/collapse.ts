/**
 * Request collapsing: the first miss for a key goes upstream (the leader); concurrent misses for
 * the same key wait for its outcome, at most `timeout`, then go upstream themselves. The leader
 * says `filled` once its response is stored (the waiters look again), or `released` as soon as it
 * knows it will store nothing (uncacheable, failed, aborted): the waiters go upstream at once.
 *
 * State: per worker process and per policy (requests of one worker wait for that worker's leader).
 */

export type Outcome = 'filled' | 'released' | 'timeout';

type Waiter = (outcome: Outcome) => void;

export class Collapser {
  readonly #inflight = new Map<string, Waiter[]>();

  /** Whether a leader is in flight for `key`. */
  leading(key: string): boolean {
    return this.#inflight.has(key);
  }

  /** Makes the caller the leader for `key` (true), unless one is in flight already (false). */
  lead(key: string): boolean {
    if (this.#inflight.has(key)) return false;
    this.#inflight.set(key, []);
    return true;
  }

  /** Waits for the leader of `key` (there must be one), at most `timeout` ms. */
  wait(key: string, timeout: number): Promise<Outcome> {
    const waiters = this.#inflight.get(key);
    if (waiters === undefined) return Promise.resolve('released');
    return new Promise<Outcome>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = (outcome) => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(outcome);
      };
      waiters.push(waiter);
      if (timeout > 0)
        timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          resolve('timeout');
        }, timeout);
    });
  }

  /** The leader of `key` is done: every waiter learns `outcome`. */
  done(key: string, outcome: 'filled' | 'released'): void {
    const waiters = this.#inflight.get(key);
    if (waiters === undefined) return;
    this.#inflight.delete(key);
    for (const w of waiters) w(outcome);
  }
}
