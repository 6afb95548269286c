/**
 * The Router: chooses the route for a request. Compiled once per config and listener; matching
 * allocates nothing beyond what the caller passes in.
 *
 * Order ("most specific wins"): explicit `priority` (higher first), then host (exact with port,
 * exact, wildcard with port, wildcard — longer first, then none), then path (exact, regex, prefix —
 * longer first, then none), then the number of other conditions (methods, headers, query), then
 * the order in the config file. Routes are indexed by exact host name so that a request scans only
 * the routes that could match its host.
 */
import type { RouteConfig } from '../config/types.ts';
import { compileConditions, hostMatches, parseHostPattern, type HostPattern, type MatchInput, type Predicate } from './matchers.ts';

/** What the router needs of a route; the route object it returns carries more (http/listener-generation.ts). */
export interface Routable {
  readonly config: RouteConfig;
}

interface Entry<R> {
  route: R;
  hosts: HostPattern[];
  conditions: Predicate[];
  rank: number[];
}

function hostRank(p: HostPattern): number {
  return (p.wildcard ? 2 : 4) + (p.port !== undefined ? 1 : 0);
}

function rankOf(config: RouteConfig, hosts: HostPattern[]): number[] {
  const bestHost = hosts.reduce((best, h) => Math.max(best, hostRank(h) * 1000 + h.name.length), 0);
  const p = config.match.path;
  const pathRank = !p ? 0 : p.kind === 'exact' ? 3 : p.kind === 'regex' ? 2 : 1;
  const others = (config.match.methods ? 1 : 0) + config.match.headers.length + config.match.query.length;
  return [config.priority, bestHost, pathRank, p && p.kind !== 'regex' ? p.value.length : 0, others, -config.order];
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return b[i] - a[i];
  return 0;
}

export class Router<R extends Routable> {
  /** Routes that could match a given exact host name, in precedence order. */
  readonly #byHost = new Map<string, Entry<R>[]>();
  /** Routes with a wildcard host or none, for host names not in #byHost. */
  readonly #fallback: Entry<R>[];
  readonly routes: readonly R[];

  constructor(routes: readonly R[]) {
    this.routes = routes;
    const entries: Entry<R>[] = routes
      .map((route) => {
        const hosts = route.config.match.hosts.map(parseHostPattern);
        return { route, hosts, conditions: compileConditions(route.config.match), rank: rankOf(route.config, hosts) };
      })
      .sort((a, b) => compare(a.rank, b.rank));
    this.#fallback = entries.filter((e) => e.hosts.length === 0 || e.hosts.some((h) => h.wildcard));
    const names = new Set(entries.flatMap((e) => e.hosts.filter((h) => !h.wildcard).map((h) => h.name)));
    for (const name of names) {
      this.#byHost.set(
        name,
        entries.filter((e) => e.hosts.length === 0 || e.hosts.some((h) => (h.wildcard ? hostMatches({ ...h, port: undefined }, name, '') : h.name === name))),
      );
    }
  }

  /** The route for this request, or undefined (→ 404). */
  match(input: MatchInput): R | undefined {
    const list = this.#byHost.get(input.hostname) ?? this.#fallback;
    outer: for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e.hosts.length !== 0) {
        let ok = false;
        for (const h of e.hosts) {
          if (hostMatches(h, input.hostname, input.port)) {
            ok = true;
            break;
          }
        }
        if (!ok) continue;
      }
      for (const c of e.conditions) if (!c(input)) continue outer;
      return e.route;
    }
    return undefined;
  }
}
