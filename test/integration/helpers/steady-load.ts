/**
 * A steady load for worker tests: loops of requests, each loop over keep-alive connections (an
 * undici Pool) or a new connection per request (node:http, no agent), until stopped or a count is
 * reached. Every outcome is recorded with its start time, so a test can tell which requests were
 * in flight when something happened.
 */
import http from 'node:http';
import { Pool } from 'undici';

export interface Outcome {
  startedAt: number;
  endedAt: number;
  ok: boolean;
  status: number;
  error?: string;
  /** The response's `x-origin`. */
  origin: string;
}

export class SteadyLoad {
  readonly outcomes: Outcome[] = [];
  readonly #pool: Pool;
  readonly #url: URL;
  #stopped = false;
  readonly #loops: Promise<void>[] = [];
  #waiters: Array<{ count: number; resolve: () => void }> = [];
  readonly #limit: number;

  /** `keepAlive` loops share a Pool; `fresh` loops open a connection per request. At most `limit` requests in all. */
  constructor(url: string, opts: { keepAlive: number; fresh: number; path?: string; limit?: number }) {
    this.#url = new URL(opts.path ?? '/', url);
    this.#pool = new Pool(url, { connections: Math.max(1, opts.keepAlive), pipelining: 1 });
    // A bound on the test's traffic, high enough that a fast machine does not reach it while a test
    // still waits for more (20,000 was reached before a worker's memory-limit replacement ended).
    const limit = opts.limit ?? 200_000;
    this.#limit = limit;
    for (let i = 0; i < opts.keepAlive; i++) this.#loops.push(this.#loop(() => this.#pooled(), limit));
    for (let i = 0; i < opts.fresh; i++) this.#loops.push(this.#loop(() => this.#fresh(), limit));
  }

  async #loop(send: () => Promise<{ status: number; origin: string; error?: string }>, limit: number): Promise<void> {
    while (!this.#stopped && this.outcomes.length < limit) {
      const startedAt = performance.now();
      try {
        const { status, origin, error } = await send();
        this.outcomes.push({ startedAt, endedAt: performance.now(), ok: status >= 200 && status < 300, status, origin, ...(error === undefined ? {} : { error }) });
      } catch (err) {
        this.outcomes.push({ startedAt, endedAt: performance.now(), ok: false, status: 0, origin: '', error: String((err as Error).cause ?? (err as Error).message) });
      }
      this.#waiters = this.#waiters.filter((w) => {
        if (this.outcomes.length < w.count) return true;
        w.resolve();
        return false;
      });
    }
  }

  async #pooled(): Promise<{ status: number; origin: string; error?: string }> {
    const res = await this.#pool.request({ method: 'GET', path: this.#url.pathname, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await res.body.text();
    return { status: res.statusCode, origin: String(res.headers['x-origin'] ?? ''), error: res.statusCode >= 300 ? text.slice(0, 200) : undefined };
  }

  #fresh(): Promise<{ status: number; origin: string; error?: string }> {
    return new Promise((resolve, reject) => {
      const req = http.get(this.#url, { agent: false, timeout: 10_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, origin: String(res.headers['x-origin'] ?? ''), error: (res.statusCode ?? 0) >= 300 ? text.slice(0, 200) : undefined }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  /** Resolves once `n` more requests have completed (or rejects after `ms`). */
  more(n: number, ms = 15_000): Promise<void> {
    const count = this.outcomes.length + n;
    if (count > this.#limit) return Promise.reject(new Error(`${n} more requests would pass the load's limit of ${this.#limit} (${this.outcomes.length} done)`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} more requests (${this.outcomes.length} done)`)), ms);
      this.#waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  failures(): Outcome[] {
    return this.outcomes.filter((o) => !o.ok);
  }

  /** Stops the loops (each finishes its request in flight) and closes the pool. Idempotent. */
  stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#done = Promise.all(this.#loops).then(() => this.#pool.close());
    }
    return this.#done!;
  }

  #done: Promise<void> | undefined;
}
