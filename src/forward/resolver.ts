/**
 * How the destination guard turns a name into addresses: once per check, A and AAAA, through the
 * system resolver (getaddrinfo, as every other program on the machine) or through the DNS servers
 * the listener names (`resolver.servers`, node:dns `Resolver` on c-ares: that is what lets a test,
 * or an operator who wants answers the machine's resolver does not give, control DNS).
 *
 * Answers are kept in a small cache, bounded in entries and in time (the record's TTL, at most
 * `maxTtl`; getaddrinfo gives no TTL, so its answers live `maxTtl`), and concurrent lookups of one
 * name share one query. The cache never weakens the guard: the guard checks the cached addresses on
 * every ask, and connects only to the ones it checked. It holds answers, not decisions.
 */
import { lookup, Resolver } from 'node:dns/promises';
import { canonicalAddress } from './host-address.ts';

/** What the listener's config says about resolving. */
export interface ResolverOptions {
  /** DNS servers (`ip` or `ip:port`); empty = the system resolver. */
  readonly servers: readonly string[];
  /** ms a lookup may take, both families together. */
  readonly timeout: number;
  /** ms an answer may be reused at most; 0 = no cache. */
  readonly maxTtl: number;
  /** Most names held (default 1,000); the oldest goes first. */
  readonly cacheSize?: number;
  /** The clock, in ms (tests inject one). */
  readonly now?: () => number;
}

/** The addresses of a name (canonical text, in the order to try them), or why there are none (`ENOTFOUND`, …). */
export type Resolution = { readonly ok: true; readonly addresses: readonly string[] } | { readonly ok: false; readonly reason: string };

interface Answer {
  readonly resolution: Resolution;
  readonly expires: number;
}

const DEFAULT_CACHE_SIZE = 1000;

/**
 * One listener's resolver, per generation and per worker: the cache is per worker (a lookup is cheap
 * to repeat, answers expire by their TTL, and sharing them across workers would add a round trip to
 * every lookup) and goes with its generation on reload (new servers, new answers).
 */
export class DestinationResolver {
  readonly #dns: Resolver | undefined;
  readonly #timeout: number;
  readonly #maxTtl: number;
  readonly #size: number;
  readonly #now: () => number;
  readonly #answers = new Map<string, Answer>();
  readonly #pending = new Map<string, Promise<Resolution>>();

  constructor(options: ResolverOptions) {
    this.#timeout = options.timeout;
    this.#maxTtl = options.maxTtl;
    this.#size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.#now = options.now ?? Date.now;
    if (options.servers.length > 0) {
      // c-ares retries once within the overall timeout (its second try waits twice as long).
      this.#dns = new Resolver({ timeout: Math.max(1, Math.floor(options.timeout / 3)), tries: 2 });
      this.#dns.setServers(options.servers as string[]);
    }
  }

  /** Resolves `name` (a host name, lower case); never rejects. */
  resolve(name: string): Promise<Resolution> {
    const cached = this.#answers.get(name);
    if (cached !== undefined) {
      if (cached.expires > this.#now()) return Promise.resolve(cached.resolution);
      this.#answers.delete(name);
    }
    let pending = this.#pending.get(name);
    if (pending === undefined) {
      pending = this.#lookup(name);
      this.#pending.set(name, pending);
    }
    return pending;
  }

  /** How many answers the cache holds (for tests). */
  get cached(): number {
    return this.#answers.size;
  }

  async #lookup(name: string): Promise<Resolution> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<[Resolution, number]>((resolve) => {
      timer = setTimeout(() => resolve([{ ok: false, reason: `no answer within ${this.#timeout} ms` }, 0]), this.#timeout);
    });
    try {
      const [resolution, ttl] = await Promise.race([this.#dns ? this.#query(this.#dns, name) : this.#system(name), timeout]);
      const keep = Math.min(ttl * 1000, this.#maxTtl);
      if (resolution.ok && keep > 0) {
        if (this.#answers.size >= this.#size) this.#answers.delete(this.#answers.keys().next().value as string);
        this.#answers.set(name, { resolution, expires: this.#now() + keep });
      }
      return resolution;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(name);
    }
  }

  /** getaddrinfo: its order (RFC 6724), no TTL (kept `maxTtl`). */
  async #system(name: string): Promise<[Resolution, number]> {
    try {
      const found = await lookup(name, { all: true, order: 'verbatim' });
      return [addresses(found.map((a) => a.address)), Number.POSITIVE_INFINITY];
    } catch (err) {
      return [{ ok: false, reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, 0];
    }
  }

  /** A and AAAA from the configured servers, at once; IPv4 first; kept for the shortest TTL. */
  async #query(dns: Resolver, name: string): Promise<[Resolution, number]> {
    const [a, aaaa] = await Promise.allSettled([dns.resolve4(name, { ttl: true }), dns.resolve6(name, { ttl: true })]);
    const records = [...(a.status === 'fulfilled' ? a.value : []), ...(aaaa.status === 'fulfilled' ? aaaa.value : [])];
    if (records.length === 0) {
      const failed = a.status === 'rejected' ? a : aaaa.status === 'rejected' ? aaaa : undefined;
      const code = failed ? ((failed.reason as NodeJS.ErrnoException).code ?? String(failed.reason)) : 'no addresses';
      return [{ ok: false, reason: code }, 0];
    }
    let ttl = Number.POSITIVE_INFINITY;
    for (const r of records) ttl = Math.min(ttl, r.ttl);
    return [addresses(records.map((r) => r.address)), ttl];
  }
}

function addresses(list: string[]): Resolution {
  const out: string[] = [];
  for (const text of list) {
    const c = canonicalAddress(text);
    if (c !== undefined && !out.includes(c)) out.push(c);
  }
  return out.length > 0 ? { ok: true, addresses: out } : { ok: false, reason: 'no addresses' };
}
