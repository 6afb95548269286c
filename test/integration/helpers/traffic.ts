/**
 * Real traffic for balancing tests: a keep-alive undici Pool to the gateway, single requests, and
 * many requests with bounded concurrency. Each reply records who answered (`x-origin`).
 */
import { Pool } from 'undici';
import type { OriginHandler } from './origin.ts';

export interface Reply {
  status: number;
  /** The `x-origin` header of the answer, '' when absent (an error of the gateway's own). */
  origin: string;
  /** Every Set-Cookie header of the answer. */
  setCookie: string[];
}

export interface Outgoing {
  path?: string;
  headers?: Record<string, string>;
}

/** A small origin that names itself in `x-origin`, optionally after `delayMs` (its response time). */
export function named(name: string, delayMs = 0): OriginHandler {
  return (req, res) => {
    req.resume();
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': name });
      res.end(name);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  };
}

export class Traffic {
  readonly pool: Pool;

  constructor(url: string, connections = 64) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 10_000 });
  }

  async send(out: Outgoing = {}): Promise<Reply> {
    const res = await this.pool.request({ method: 'GET', path: out.path ?? '/', headers: out.headers });
    await res.body.dump();
    const origin = res.headers['x-origin'];
    const sc = res.headers['set-cookie'];
    return {
      status: res.statusCode,
      origin: typeof origin === 'string' ? origin : '',
      setCookie: sc === undefined ? [] : Array.isArray(sc) ? sc : [sc],
    };
  }

  /** Sends `n` requests, `concurrency` at a time; replies are in request order. */
  async many(n: number, concurrency: number, make: (i: number) => Outgoing = () => ({})): Promise<Reply[]> {
    const replies: Reply[] = new Array(n);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        replies[i] = await this.send(make(i));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    return replies;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** How many times each origin answered, for the names given (0 for those that never did). */
export function countByOrigin(answers: readonly (Reply | string)[], names: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = 0;
  for (const a of answers) {
    const origin = typeof a === 'string' ? a : a.origin;
    counts[origin] = (counts[origin] ?? 0) + 1;
  }
  return counts;
}
