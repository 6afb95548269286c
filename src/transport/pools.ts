/**
 * Connection pools to endpoints, shared across config generations: a reload that keeps an endpoint
 * (same origin, same pool settings) keeps its pool and its warm keep-alive connections. Pools are
 * reference-counted by generation and closed gracefully when the last generation using them retires.
 *
 * HTTP/1.1 endpoints (http:// and https://) get Switchboard's own client (`h1-client.ts` `H1Agent`
 * for one origin): it speaks undici's dispatch API and costs less CPU per request. HTTP/2 and h2c
 * endpoints get undici's Pool.
 *
 * State: per worker (a pool is this process's sockets), shared by the generations that use it.
 */
import type { ConnectionOptions } from 'node:tls';
import type { DispatchTarget } from './forward.ts';
import { H1Agent } from './h1-client.ts';
import { Pool } from './undici-core.ts';

/** An endpoint's pool: undici's Pool or the own HTTP/1.1 client, both driven through `dispatch`. */
export interface UpstreamPool extends DispatchTarget {
  close(): Promise<void>;
  readonly closed: boolean;
}

/** Streams one HTTP/2 connection to an endpoint carries at once before the pool opens another. */
export const H2_STREAMS_PER_CONNECTION = 100;

/** The pool settings that make two endpoint pools interchangeable. */
export interface PoolOptions {
  connections: number;
  keepAliveTimeout: number;
  connectTimeout: number;
  /** Wire protocol to the endpoint. */
  protocol: 'http1' | 'h2' | 'h2c';
  /** TLS options for an https:// endpoint. */
  tls: ConnectionOptions | undefined;
  /** Digest of protocol and TLS settings (`connectionKey`): pools with different ones never mix. */
  settingsKey: string;
}

interface Entry {
  key: string;
  pool: UpstreamPool;
  refs: number;
}

/** A new pool: the own client for HTTP/1.1, undici's Pool for HTTP/2 (h2 over TLS, or h2c). */
function newPool(origin: string, opts: PoolOptions): UpstreamPool {
  if (opts.protocol === 'http1') {
    return new H1Agent({ origin, connections: opts.connections, keepAliveTimeout: opts.keepAliveTimeout, connectTimeout: opts.connectTimeout, tls: opts.tls });
  }
  const h2c = opts.protocol === 'h2c';
  // undici's Pool builds the connector its Clients share from a top-level `useH2c` (untyped);
  // `h2Options.useH2c` alone never reaches it, and the h2c connection would be parsed as HTTP/1.1.
  const options: Pool.Options & { useH2c?: boolean } = {
    connections: opts.connections,
    keepAliveTimeout: opts.keepAliveTimeout,
    keepAliveMaxTimeout: Math.max(opts.keepAliveTimeout, 600_000),
    connect: { timeout: opts.connectTimeout || undefined, ...opts.tls },
    pipelining: H2_STREAMS_PER_CONNECTION,
    strictContentLength: true,
    allowH2: true,
    useH2c: h2c,
    h2Options: { useH2c: h2c, maxConcurrentStreams: H2_STREAMS_PER_CONNECTION },
  };
  return new Pool(origin, options);
}

export class PoolRegistry {
  readonly #pools = new Map<string, Entry>();
  readonly #byPool = new Map<UpstreamPool, Entry>();

  /** Returns the pool for this origin and settings, creating it on first use; adds one reference. */
  acquire(origin: string, opts: PoolOptions): UpstreamPool {
    const key = `${origin}|${opts.connections}|${opts.keepAliveTimeout}|${opts.connectTimeout}|${opts.settingsKey}`;
    let entry = this.#pools.get(key);
    if (!entry) {
      const pool = newPool(origin, opts);
      entry = { key, pool, refs: 0 };
      this.#pools.set(key, entry);
      this.#byPool.set(pool, entry);
    }
    entry.refs++;
    return entry.pool;
  }

  /** Drops one reference to each pool; pools nobody holds are closed (in-flight requests finish). */
  release(pools: Iterable<UpstreamPool>): void {
    for (const pool of pools) {
      const entry = this.#byPool.get(pool);
      if (entry === undefined || --entry.refs > 0) continue;
      this.#pools.delete(entry.key);
      this.#byPool.delete(pool);
      entry.pool.close().catch(() => undefined);
    }
  }

  /** Number of live pools (for tests and metrics). */
  get size(): number {
    return this.#pools.size;
  }

  /** Closes every pool, waiting for in-flight requests. */
  async closeAll(): Promise<void> {
    const all = [...this.#pools.values()].map((e) => e.pool.close().catch(() => undefined));
    this.#pools.clear();
    this.#byPool.clear();
    await Promise.all(all);
  }
}
