/**
 * Which destinations a parent proxy entry takes (`forward.parent[].domains`), compiled once per
 * generation. The patterns read as in the access rules: `example.com` exactly, `*.example.com` any
 * name under it (not itself), `~regex` a regular expression on the whole name.
 */

/** Decides for one destination host (lower-case, no trailing dot, as ForwardAsk.host). */
export type DomainTest = (host: string) => boolean;

const EVERY: DomainTest = () => true;

/** Compiles `patterns`; an empty list takes every destination. Regexes were checked at load. */
export function compileDomains(patterns: readonly string[]): DomainTest {
  if (patterns.length === 0) return EVERY;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  const regexes: RegExp[] = [];
  for (const p of patterns) {
    if (p.startsWith('~')) regexes.push(new RegExp(`^(?:${p.slice(1)})$`));
    else if (p.startsWith('*.')) suffixes.push(p.slice(1));
    else exact.add(p);
  }
  return (host) => {
    if (exact.has(host)) return true;
    for (const s of suffixes) if (host.length > s.length && host.endsWith(s)) return true;
    for (const r of regexes) if (r.test(host)) return true;
    return false;
  };
}
