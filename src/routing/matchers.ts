/**
 * Compiled matchers for one route's conditions. Compiled once per config (regexes built here, never
 * per request); each is a plain function over the request facts the router extracted.
 */
import type { MatchConfig, PathMatchConfig, StringMatchConfig } from '../config/types.ts';

/** What routing may look at. `query` is parsed lazily, only if some route asks for it. */
export interface MatchInput {
  /** Lower-cased host name without port or trailing dot. */
  hostname: string;
  /** Port from the Host header, '' when absent. */
  port: string;
  method: string;
  /** Normalised path, no query. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  query(): URLSearchParams;
}

export interface HostPattern {
  /** Exact name, or the suffix (with its leading dot) of a `*.` wildcard. */
  name: string;
  wildcard: boolean;
  /** Port the pattern requires, undefined for any. */
  port: string | undefined;
}

export function parseHostPattern(text: string): HostPattern {
  let name = text.toLowerCase();
  let port: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf(']')) {
    port = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  if (name.startsWith('*.')) return { name: name.slice(1), wildcard: true, port };
  return { name, wildcard: false, port };
}

export function hostMatches(p: HostPattern, hostname: string, port: string): boolean {
  if (p.port !== undefined && p.port !== port) return false;
  if (!p.wildcard) return hostname === p.name;
  return hostname.length > p.name.length && hostname.endsWith(p.name);
}

export type Predicate = (input: MatchInput) => boolean;

function valueMatcher(m: StringMatchConfig): (value: string | undefined) => boolean {
  switch (m.kind) {
    case 'exact':
      return (v) => v === m.value;
    case 'present':
      return m.value ? (v) => v !== undefined : (v) => v === undefined;
    case 'regex': {
      const re = new RegExp(m.value);
      return (v) => v !== undefined && re.test(v);
    }
  }
}

export function pathMatcher(m: PathMatchConfig): Predicate {
  switch (m.kind) {
    case 'prefix':
      return m.value === '/' ? () => true : (i) => i.path.startsWith(m.value);
    case 'exact':
      return (i) => i.path === m.value;
    case 'regex': {
      const re = new RegExp(m.value);
      return (i) => re.test(i.path);
    }
  }
}

/** Every condition but the host (which the router indexes) as one predicate list. */
export function compileConditions(match: MatchConfig): Predicate[] {
  const out: Predicate[] = [];
  if (match.path) out.push(pathMatcher(match.path));
  if (match.methods) {
    const methods = new Set(match.methods);
    out.push((i) => methods.has(i.method));
  }
  for (const [name, m] of match.headers) {
    const test = valueMatcher(m);
    out.push((i) => {
      const v = i.headers[name];
      return test(Array.isArray(v) ? v.join(', ') : v);
    });
  }
  for (const [name, m] of match.query) {
    const test = valueMatcher(m);
    out.push((i) => test(i.query().get(name) ?? undefined));
  }
  return out;
}
