/**
 * Parent proxies (issue 15 §3): some destinations reach the Internet through an upstream forward
 * proxy, an HTTP one asked with CONNECT or a SOCKS5 one, e.g. to see content as another region
 * sees it. `withParents` wraps a listener's DestinationGuard: `check` is unchanged; `connect`
 * goes direct unless the permit's host matches a parent entry's `domains` (the first entry that
 * matches wins; an entry without domains takes every destination).
 *
 * The parent is asked for the checked address, never the name (EDGE-CASES 49): the guard resolved
 * the name and checked every address, so a parent asked for the name would resolve it again, in
 * its own network, and could land on an address the guard never saw (an internal host of the
 * parent's network, or a DNS-rebinding answer). The price: the parent cannot use its own region's
 * DNS answer (a CDN that answers by the resolver's location sends the tunnel to an edge near us,
 * reached through the parent). Region checks by client address still see the parent's address,
 * which is what parent proxies are mostly for; an operator who needs the parent's DNS can give the
 * listener a resolver in that region (`forward.resolver.servers`).
 *
 * Several URLs in one entry are balanced with the upstream balancers (`balance`, the hash key is
 * the destination host) and checked passively: a parent whose connect or handshake fails is left
 * out of the set for `downTime` and the connection tries the next one. An entry with a
 * `healthCheck` is also checked actively (parent-health.ts: the checkers live there, across
 * generations, since a guard has no lifecycle): a parent its checks marked down is left out too,
 * so tunnels go to the others without a failed first try. When every parent of the entry is down
 * (either way) they are all tried anyway (as an upstream's panic mode), so a recovered parent is
 * found without waiting.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { ForwardParentConfig, ForwardParentProxy } from '../config/types.ts';
import { ProxyError } from '../errors.ts';
import { type ForwardParentEvent, forwardParentState } from '../observability/events.ts';
import type { ParentHealth, ParentHealthView } from './parent-health.ts';
import type { Balancer, BalancerEndpoint, PickContext } from '../upstream/balancers/balancer.ts';
import { balancers } from '../upstream/balancers/index.ts';
import type { DestinationGuard, Permit } from './destination-guard.ts';
import { DomainSet } from './domain-set.ts';
import { HandshakeReader } from './handshake-reader.ts';
import { httpConnect, proxyAuthorization } from './http-connect-client.ts';
import { ParentReplyError } from './parent-reply.ts';
import { socks5Connect, socksCredentials } from './socks5-client.ts';

/** Options of `withParents`; every one has a production default. */
export interface ParentDeps {
  /** The listener's name, for the parent-state events (metrics). Default `forward`. */
  listener?: string;
  /** How long (ms) a parent whose connect failed stays out of its entry's set. Default 10 s. */
  downTime?: number;
  /** Clock in ms (performance.now by default). */
  now?: () => number;
  /** Randomness for the random and power-of-two balancers. */
  random?: () => number;
  /** The parents' active health (entries with a healthCheck); absent: passive checks only. */
  health?: ParentHealth | undefined;
}

/** ParentDeps with the defaults applied (`health` stays optional). */
type FullDeps = Required<Omit<ParentDeps, 'health'>> & { health: ParentHealth | undefined };

/** A parent's reply head (HTTP) or replies (SOCKS) may not be longer than this. */
const REPLY_LIMIT = 16 * 1024;
const DOWN_TIME = 10_000;
const ignore = (): void => {};

/** A parent that failed: the connection fails with PARENT_PROXY_FAILED (502); `parent` says which one, for the log. */
export class ParentProxyError extends ProxyError {
  /** `protocol://host:port`, no credentials. */
  readonly parent: string;

  constructor(parent: string, cause: unknown, message: string) {
    super('PARENT_PROXY_FAILED', cause, message);
    this.parent = parent;
  }
}

/** One parent URL as the balancer sees it. State per worker: each worker learns a parent's failures from its own connects (a failed connect is cheap to learn again; sharing would add a round trip to each). */
class Parent implements BalancerEndpoint {
  readonly id: string;
  readonly weight = 1;
  inFlight = 0;
  readonly proxy: ForwardParentProxy;
  /** Built once: the Proxy-Authorization line (HTTP) or the RFC 1929 request (SOCKS5). */
  readonly authorization: string;
  readonly credentials: Buffer | undefined;
  up = true;
  /** While `now` is before this, the parent is left out of its entry's set. */
  downUntil = 0;
  /** Its active health (per machine: parent-health.ts), or undefined when its entry has no healthCheck. */
  readonly health: ParentHealthView | undefined;

  constructor(proxy: ForwardParentProxy, health: ParentHealthView | undefined) {
    this.id = proxy.label;
    this.proxy = proxy;
    this.health = health;
    this.authorization = proxyAuthorization(proxy);
    this.credentials = socksCredentials(proxy);
  }

  latencyCost(): number {
    return 0;
  }

  /** In the set: neither a recent failed connect (this worker's) nor failed active checks (the machine's). */
  usable(now: number): boolean {
    return this.downUntil <= now && this.health?.healthy !== false;
  }
}

/** One `forward.parent` entry: its domains, its parents and their balancer. */
class ParentEntry {
  /** Undefined: every destination. */
  readonly #domains: DomainSet | undefined;
  readonly #parents: Parent[];
  readonly #balancer: Balancer;
  readonly #ctx: PickContext = { hashKey: undefined, now: 0 };
  readonly #listener: string;
  readonly #downTime: number;
  readonly #now: () => number;

  constructor(config: ForwardParentConfig, index: number, deps: FullDeps) {
    this.#domains = config.domains.length === 0 ? undefined : new DomainSet(config.domains);
    this.#parents = config.proxies.map((p) => new Parent(p, config.healthCheck === undefined ? undefined : deps.health?.get(deps.listener, index, p.label)));
    this.#balancer = balancers[config.balance]({ random: deps.random, hashTable: 'ring' });
    this.#balancer.update(this.#parents);
    this.#listener = deps.listener;
    this.#downTime = deps.downTime;
    this.#now = deps.now;
  }

  /** Whether this entry's parents take destination `host` (lower case, as ForwardAsk.host). */
  takes(host: string): boolean {
    return this.#domains === undefined || this.#domains.has(host);
  }

  /** A tunnel to one of `permit`'s addresses through one of this entry's parents. */
  async connect(permit: Permit, timeout: number, signal: AbortSignal | undefined): Promise<Socket> {
    const deadline = this.#now() + timeout;
    const tried: Parent[] = [];
    let last: { parent: Parent; error: unknown } | undefined;
    for (;;) {
      const now = this.#now();
      let candidates = this.#parents.filter((p) => p.usable(now) && !tried.includes(p));
      if (candidates.length === 0 && this.#parents.every((p) => !p.usable(now))) candidates = this.#parents.filter((p) => !tried.includes(p));
      this.#ctx.hashKey = permit.host;
      this.#ctx.now = now;
      const parent = this.#balancer.pick(candidates, this.#ctx);
      if (parent === undefined) break;
      tried.push(parent);
      try {
        const socket = await this.#through(parent, permit, deadline, signal);
        this.#flip(parent, true, '');
        return socket;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (err instanceof ParentReplyError && err.failure !== 'broken') throw new ParentProxyError(parent.proxy.label, err, err.message);
        parent.downUntil = this.#now() + this.#downTime;
        this.#flip(parent, false, reasonOf(err));
        last = { parent, error: err };
        if (this.#now() >= deadline) break;
      }
    }
    const why = last === undefined ? 'no parent to try' : `${last.parent.proxy.label}: ${reasonOf(last.error)}`;
    throw new ParentProxyError(last?.parent.proxy.label ?? '', last?.error, `no parent proxy answered (${why})`);
  }

  /** Asks `parent` for each of the permit's addresses in turn, on a fresh connection each, until one opens. */
  async #through(parent: Parent, permit: Permit, deadline: number, signal: AbortSignal | undefined): Promise<Socket> {
    let unreachable: ParentReplyError | undefined;
    for (const address of permit.addresses) {
      try {
        return await this.#ask(parent, address, permit.port, deadline, signal);
      } catch (err) {
        if (!(err instanceof ParentReplyError && err.failure === 'unreachable')) throw err;
        unreachable = err;
      }
    }
    throw unreachable ?? new ParentReplyError('refused', 'the permit has no address to ask for');
  }

  /** One connection to `parent`, one handshake for `address:port`, bounded by `deadline` and `signal`. */
  async #ask(parent: Parent, address: string, port: number, deadline: number, signal: AbortSignal | undefined): Promise<Socket> {
    const remaining = deadline - this.#now();
    if (remaining <= 0) throw new ParentReplyError('broken', 'no time left to connect');
    // No Nagle: the handshakes are several small writes, each waiting on a reply (SOCKS5 with credentials, three).
    const socket = netConnect({ host: parent.proxy.host, port: parent.proxy.port, noDelay: true });
    const reader = new HandshakeReader(socket, REPLY_LIMIT);
    const timer = setTimeout(() => socket.destroy(new ParentReplyError('broken', `no answer within ${Math.round(remaining)} ms`)), remaining);
    const abort = (): void => {
      socket.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal?.addEventListener('abort', abort, { once: true });
    parent.inFlight++;
    try {
      if (signal?.aborted) abort();
      if (parent.proxy.protocol === 'http') await httpConnect(socket, reader, parent.authorization, address, port);
      else await socks5Connect(socket, reader, parent.credentials, address, port);
    } catch (err) {
      parent.inFlight--;
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    }
    socket.once('close', () => parent.inFlight--);
    // Until the caller adds its own: an error between here and then must not become an uncaught exception.
    socket.once('error', ignore);
    return reader.release();
  }

  /** The passive state's flips. An up while the active checks say down is not published: the checks decide when it is up. */
  #flip(parent: Parent, up: boolean, reason: string): void {
    if (parent.up === up) return;
    parent.up = up;
    if (up) parent.downUntil = 0;
    if (up && parent.health?.healthy === false) return;
    if (forwardParentState.hasSubscribers) {
      const event: ForwardParentEvent = { listener: this.#listener, parent: parent.proxy.label, up, reason };
      forwardParentState.publish(event);
    }
  }
}

/** A failure in one line for the log and the error message: a ParentReplyError's text, or a socket error's code. */
function reasonOf(err: unknown): string {
  if (err instanceof ParentReplyError) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * `guard` with `parents` in front of its connect (once per generation, by the forward and socks5
 * listeners). Without parents it returns `guard` itself: direct connections pay nothing.
 */
/**
 * What a guard with parents adds, for a caller that keeps pools per way out (the forward listener's
 * undici Agents, one per parent entry): which entry takes a host, and a tunnel through entry `i`.
 */
export interface ParentRouting {
  /** The number of parent entries. */
  readonly count: number;
  /** The index of the first entry that takes `host` (lower case, as ForwardAsk.host), or -1: direct. */
  entryFor(host: string): number;
  /** A tunnel to one of `permit`'s addresses through entry `i`'s parents. */
  connectVia(i: number, permit: Permit, timeout: number, signal?: AbortSignal): Promise<Socket>;
}

/** A guard from `withParents`: its `parents` is undefined when there are none. */
export type ParentedGuard = DestinationGuard & { readonly parents?: ParentRouting };

export function withParents(guard: DestinationGuard, parents: readonly ForwardParentConfig[], deps: ParentDeps = {}): ParentedGuard {
  if (parents.length === 0) return guard;
  const full: FullDeps = {
    listener: deps.listener ?? 'forward',
    downTime: deps.downTime ?? DOWN_TIME,
    now: deps.now ?? (() => performance.now()),
    random: deps.random ?? Math.random,
    health: deps.health,
  };
  const entries = parents.map((p, i) => new ParentEntry(p, i, full));
  // Permit.host is the host as the client wrote it: names are matched in lower case, as the rules match them.
  const entryFor = (host: string): number => {
    const name = host.toLowerCase();
    return entries.findIndex((entry) => entry.takes(name));
  };
  return {
    check: (ask) => guard.check(ask),
    decideNow: (ask) => guard.decideNow?.(ask),
    connect(permit, timeout, signal) {
      const i = entryFor(permit.host);
      return i < 0 ? guard.connect(permit, timeout, signal) : entries[i].connect(permit, timeout, signal);
    },
    parents: {
      count: entries.length,
      entryFor,
      connectVia: (i, permit, timeout, signal) => entries[i].connect(permit, timeout, signal),
    },
  };
}
