/**
 * The routes section of resolve: host, path, header and query conditions (regexes compiled once to
 * check them), path rewrites, timeout overrides and body size, and the names a route refers to: its
 * upstream (one with http(s) endpoints) and its listeners (http or https ones).
 */
import { statSync } from 'node:fs';
import { parseDuration, parseSize } from '../util/units.ts';
import { defaults } from './defaults.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { RawPathMatch, RawStaticSite, RawStringMatch } from './route-schema.ts';
import type { RawConfig } from './schema.ts';
import { suggest } from './suggest.ts';
import { configPath } from './tls-files.ts';
import type { ListenerConfig, MatchConfig, PathMatchConfig, RewriteConfig, RouteConfig, StaticConfig, StringMatchConfig, Timeouts, UpstreamConfig } from './types.ts';
import type { RawTimeouts } from './upstream-schema.ts';

function partialTimeouts(raw: RawTimeouts | undefined): Partial<Timeouts> {
  const out: Partial<Timeouts> = {};
  if (!raw) return out;
  for (const key of ['connect', 'responseHeaders', 'bodyIdle', 'request', 'tunnelIdle'] as const) {
    const v = raw[key];
    if (v !== undefined) out[key] = parseDuration(v);
  }
  return out;
}

function checkRegex(source: string, path: KeyPath, problems: Problem[]): void {
  try {
    new RegExp(source);
  } catch (err) {
    problems.push({ path, expected: 'a valid regular expression', found: `${JSON.stringify(source)} (${(err as Error).message})` });
  }
}

function stringMatch(raw: RawStringMatch, path: KeyPath, problems: Problem[]): StringMatchConfig {
  if (typeof raw === 'string') return { kind: 'exact', value: raw };
  if ('exact' in raw) return { kind: 'exact', value: raw.exact };
  if ('regex' in raw) {
    checkRegex(raw.regex, [...path, 'regex'], problems);
    return { kind: 'regex', value: raw.regex };
  }
  return { kind: 'present', value: raw.present };
}

function pathMatch(raw: RawPathMatch, path: KeyPath, problems: Problem[]): PathMatchConfig {
  if (typeof raw === 'string') {
    if (!raw.startsWith('/')) problems.push({ path, expected: 'a path starting with "/"', found: show(raw) });
    return { kind: 'prefix', value: raw };
  }
  if ('regex' in raw) {
    checkRegex(raw.regex, [...path, 'regex'], problems);
    return { kind: 'regex', value: raw.regex };
  }
  const kind = 'prefix' in raw ? 'prefix' : 'exact';
  const value = 'prefix' in raw ? raw.prefix : raw.exact;
  if (!value.startsWith('/')) problems.push({ path: [...path, kind], expected: 'a path starting with "/"', found: show(value) });
  return { kind, value };
}

/** A route's `static` section: its root must be a directory now (relative to the config file's directory). */
function staticSite(raw: RawStaticSite, at: KeyPath, baseDir: string, problems: Problem[]): StaticConfig {
  const d = defaults.route.static;
  const root = configPath(baseDir, raw.root);
  try {
    if (!statSync(root).isDirectory()) problems.push({ path: [...at, 'root'], expected: 'a directory', found: `${show(raw.root)} (${root}: not a directory)` });
  } catch (err) {
    problems.push({
      path: [...at, 'root'],
      expected: 'an existing directory',
      found: `${show(raw.root)} (${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    });
  }
  return {
    root,
    index: raw.index === false ? [] : [...(raw.index ?? d.index)],
    stripPrefix: raw.stripPrefix ?? d.stripPrefix,
    precompressed: raw.precompressed ?? d.precompressed,
    followSymlinks: raw.followSymlinks ?? d.followSymlinks,
    dotfiles: raw.dotfiles ?? d.dotfiles,
    cacheControl: (raw.cacheControl ?? []).map((c) => ({ match: c.match, value: c.value })),
  };
}

const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/;

/**
 * The routes, in the order written (`order` counts them), each with its defaults applied. Checks
 * the names each route refers to against the resolved `listeners` and `upstreams`.
 */
export function resolveRoutes(
  raw: RawConfig,
  listeners: readonly ListenerConfig[],
  upstreams: ReadonlyMap<string, UpstreamConfig>,
  problems: Problem[],
  baseDir = process.cwd(),
): RouteConfig[] {
  const tcpListeners = new Set(
    listeners.filter((l) => l.protocol === 'tcp' || l.protocol === 'tls' || l.protocol === 'tls-passthrough' || l.protocol === 'udp').map((l) => l.name),
  );
  const listenerNames = Object.keys(raw.listeners);
  const upstreamNames = [...upstreams.keys()];
  const routes: RouteConfig[] = [];
  let order = 0;
  for (const [name, r] of Object.entries(raw.routes ?? {})) {
    const at = ['routes', name];
    if (r.static !== undefined && r.upstream !== undefined) {
      problems.push({ path: [...at, 'static'], atKey: true, expected: 'either "upstream" or "static" on a route, not both', found: 'both' });
    }
    if (r.upstream === undefined) {
      if (r.static === undefined && (r.policies === undefined || r.policies.length === 0)) {
        problems.push({ path: at, atKey: true, expected: 'key "upstream" or "static" (or policies that answer every request, such as respond)', found: 'it missing' });
      }
    } else if (!upstreams.has(r.upstream)) {
      problems.push({
        path: [...at, 'upstream'],
        expected: upstreamNames.length ? `the name of an upstream (one of: ${upstreamNames.join(', ')})` : 'the name of an upstream (none are defined)',
        found: show(r.upstream),
        hint: suggest(r.upstream, upstreamNames),
      });
    }
    const routed = r.upstream === undefined ? undefined : upstreams.get(r.upstream);
    const l4 = routed?.endpoints.find((e) => e.scheme === 'tcp' || e.scheme === 'udp')?.scheme;
    if (l4 !== undefined) {
      problems.push({
        path: [...at, 'upstream'],
        expected: `an upstream with http(s) endpoints (upstream "${r.upstream}" has ${l4}:// ones, for ${l4} listeners)`,
        found: show(r.upstream),
      });
    }
    r.listeners?.forEach((l, i) => {
      if (tcpListeners.has(l)) {
        problems.push({
          path: [...at, 'listeners', i],
          expected: 'an http or https listener (routes do not apply to tcp, tls, tls-passthrough and udp listeners)',
          found: show(l),
        });
      } else if (!listenerNames.includes(l)) {
        problems.push({
          path: [...at, 'listeners', i],
          expected: `the name of a listener (one of: ${listenerNames.join(', ')})`,
          found: show(l),
          hint: suggest(l, listenerNames),
        });
      }
    });
    const m = r.match ?? {};
    const hosts = m.host === undefined ? [] : Array.isArray(m.host) ? m.host : [m.host];
    hosts.forEach((h, i) => {
      const lower = h.toLowerCase();
      if (!HOST_PATTERN.test(lower)) {
        problems.push({
          path: Array.isArray(m.host) ? [...at, 'match', 'host', i] : [...at, 'match', 'host'],
          expected: 'a host name, "*.domain" wildcard or [IPv6], with an optional :port',
          found: show(h),
        });
      }
    });
    const match: MatchConfig = {
      hosts: hosts.map((h) => h.toLowerCase()),
      path: m.path === undefined ? undefined : pathMatch(m.path, [...at, 'match', 'path'], problems),
      methods: m.methods,
      headers: Object.entries(m.headers ?? {}).map(([k, v]) => [k.toLowerCase(), stringMatch(v, [...at, 'match', 'headers', k], problems)]),
      query: Object.entries(m.query ?? {}).map(([k, v]) => [k, stringMatch(v, [...at, 'match', 'query', k], problems)]),
    };
    let rewrite: RewriteConfig | undefined;
    if (r.rewrite?.stripPrefix !== undefined && r.rewrite.replacePrefix !== undefined) {
      problems.push({ path: [...at, 'rewrite'], expected: 'either stripPrefix or replacePrefix, not both', found: 'both' });
    } else if (r.rewrite?.stripPrefix !== undefined) {
      rewrite = { kind: 'strip', prefix: r.rewrite.stripPrefix };
    } else if (r.rewrite?.replacePrefix !== undefined) {
      rewrite = { kind: 'replace', from: r.rewrite.replacePrefix.from, to: r.rewrite.replacePrefix.to };
    }
    if (rewrite) {
      const first = rewrite.kind === 'strip' ? rewrite.prefix : rewrite.from;
      const keyPath = rewrite.kind === 'strip' ? [...at, 'rewrite', 'stripPrefix'] : [...at, 'rewrite', 'replacePrefix', 'from'];
      if (!first.startsWith('/')) problems.push({ path: keyPath, expected: 'a path starting with "/"', found: show(first) });
      if (rewrite.kind === 'replace' && !rewrite.to.startsWith('/')) {
        problems.push({ path: [...at, 'rewrite', 'replacePrefix', 'to'], expected: 'a path starting with "/"', found: show(rewrite.to) });
      }
    }
    routes.push({
      name,
      listeners: r.listeners,
      match,
      upstream: r.upstream,
      policies: r.policies ?? [],
      priority: r.priority ?? defaults.route.priority,
      rewrite,
      timeouts: partialTimeouts(r.timeouts),
      maxBodySize: parseSize(r.maxBodySize ?? defaults.route.maxBodySize),
      order: order++,
      static: r.static === undefined ? undefined : staticSite(r.static, [...at, 'static'], baseDir, problems),
    });
  }
  return routes;
}
