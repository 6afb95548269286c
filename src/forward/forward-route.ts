/**
 * A forward-proxy listener's one route (per listener, per config generation): it takes every
 * request in place of a router (pipeline.ts `forwardRoute`), and carries what the forward steps
 * (http-forward.ts, connect.ts, websocket.ts) need: the listener's `forward:` settings, its
 * destination guard, the pools to destinations, and a test for the gateway's own addresses.
 *
 * Pools: one H1Agent (transport/h1-client.ts) per route, so per listener, per generation and per
 * worker (a pool is a set of this process's sockets). It keeps a pool per origin, and every origin
 * is a checked `http://<ip>:<port>` (the Host header carries the name), so keep-alive connections
 * to a destination are reused by every client of the listener, and nothing is ever looked up twice
 * (EDGE-CASES 35). An origin's pool goes once its connections are idle-closed; the agent closes
 * with its generation. Parent entries keep undici Agents, whose connector tunnels through them.
 */
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import type { ForwardConfig, ListenerConfig, RouteConfig, Timeouts } from '../config/types.ts';
import { defaults } from '../config/defaults.ts';
import { compileChain, type NamedFilter } from '../http/chain.ts';
import type { ListenerRoute } from '../http/listener-generation.ts';
import type { buildConnector } from 'undici';
import type { DispatchTarget } from '../transport/forward.ts';
import { H1Agent } from '../transport/h1-client.ts';
import { Agent } from '../transport/undici-core.ts';
import { parseDuration } from '../util/units.ts';
import type { DestinationGuard, Permit } from './destination-guard.ts';
import type { ParentHealth } from './parent-health.ts';
import { withParents } from './parents.ts';
import { compileForwardRules } from './rules.ts';

/** An address a listener of this gateway is bound to (port 0 resolved). */
export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

/** The forward listener's route: a ListenerRoute with no upstream, plus the forward proxy's own parts. */
export interface ForwardRoute extends ListenerRoute {
  readonly forward: ForwardConfig;
  readonly guard: DestinationGuard;
  /** Pools by checked origin (`http://ip:port`), for destinations reached directly: the own HTTP/1.1 client. */
  readonly agent: H1Agent;
  /** The pools for destination `host` (lower case): `agent`, or those of the parent entry that takes it (undici Agents). */
  agentFor(host: string): DispatchTarget;
  /** This listener's address as `host:port` (port 0 resolved), for a PAC file asked for without a usable Host. */
  pacFallback(): string;
  /** Whether `address:port` is one of this gateway's own listening addresses (a loop: 508). */
  isOwn(address: string, port: number): boolean;
  /** Closes the pools (the generation retired). */
  close(): Promise<void>;
}

/** Keep-alive connections to destinations idle longer than this are closed (the Agent's pools). */
const DESTINATION_KEEPALIVE = 30_000;

function unspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; everything else as is. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * Builds the route of forward listener `l`. `filters`: its policies, in order. `bound`: every
 * listening address of the gateway now (asked per check: a reload can add listeners, and port 0
 * is known only once bound). `health`: the parents' active health (parent-health.ts).
 */
export function createForwardRoute(l: ListenerConfig, filters: readonly NamedFilter[], bound: () => readonly BoundAddress[], health?: ParentHealth): ForwardRoute {
  const forward = l.forward!;
  const upstreamTimeouts = defaults.upstream.timeouts;
  const timeouts: Timeouts = {
    connect: forward.connectTimeout,
    responseHeaders: parseDuration(upstreamTimeouts.responseHeaders),
    bodyIdle: parseDuration(upstreamTimeouts.bodyIdle),
    request: 0,
    tunnelIdle: forward.tunnelIdleTimeout,
  };
  const config: RouteConfig = {
    name: l.name,
    listeners: [l.name],
    match: { hosts: [], path: undefined, methods: undefined, headers: [], query: [] },
    upstream: undefined,
    policies: [],
    priority: 0,
    rewrite: undefined,
    timeouts: {},
    maxBodySize: 0,
    order: 0,
  };
  const agent = new H1Agent({ keepAliveTimeout: DESTINATION_KEEPALIVE, connectTimeout: forward.connectTimeout });
  const guard = withParents(compileForwardRules(forward), forward.parents, { listener: l.name, health });
  // One Agent per parent entry: its connections are tunnels through that entry's parents to the
  // checked `ip:port` of the origin (parents.ts), pooled like direct ones.
  const routing = guard.parents;
  const parentAgents =
    routing === undefined
      ? []
      : Array.from({ length: routing.count }, (_, i) => {
          const connectVia: buildConnector.connector = (opts, callback) => {
            // The origin is a checked `http://<ip>:<port>` (IPv6 in brackets); the permit's host was checked already.
            const ip = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
            const permit: Permit = { allowed: true, rule: 'parent', host: ip, port: Number(opts.port), addresses: [ip] };
            routing.connectVia(i, permit, forward.connectTimeout || 10_000).then(
              (socket) => callback(null, socket),
              (err: Error) => callback(err, null),
            );
          };
          return new Agent({ connections: null, keepAliveTimeout: DESTINATION_KEEPALIVE, connect: connectVia, strictContentLength: true });
        });
  // The machine's interface addresses, read once per generation and worker (they are the machine's, and
  // change rarely): a listener on 0.0.0.0 or :: is reached through any of them.
  let local: Set<string> | undefined;
  const isLocal = (address: string): boolean => {
    if (local === undefined) {
      local = new Set(['127.0.0.1', '::1']);
      for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) local.add(i.address);
    }
    return local.has(address) || address.startsWith('127.');
  };
  return {
    name: l.name,
    config,
    upstream: undefined,
    timeouts,
    maxBodySize: 0,
    // The listener's filters run before "routing" (the listener chain); this chain holds them for the later phases.
    chain: compileChain(filters, []),
    forward,
    guard,
    agent,
    agentFor(host: string): DispatchTarget {
      if (routing === undefined) return agent;
      const i = routing.entryFor(host);
      return i < 0 ? agent : parentAgents[i];
    },
    pacFallback(): string {
      // Only for a request without a usable Host (HTTP/1.0): with port 0, the first address bound on the listener's host.
      const want = l.address;
      const mine = want.port !== 0 ? want : bound().find((b) => b.host === want.host);
      const host = mine === undefined || unspecified(mine.host) ? '127.0.0.1' : mine.host;
      return `${host.includes(':') ? `[${host}]` : host}:${mine?.port ?? want.port}`;
    },
    isOwn(address: string, port: number): boolean {
      const a = plain(address);
      for (const b of bound()) {
        if (b.port !== port) continue;
        const host = plain(b.host);
        if (host === a || (unspecified(host) && isLocal(a))) return true;
      }
      return false;
    },
    close: () => Promise.all([agent, ...parentAgents].map((a) => a.close().catch(() => undefined))).then(() => undefined),
  };
}
