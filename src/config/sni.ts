/**
 * The `sni` table of a tls-passthrough listener: server names (exact, or `*.` wildcards one label
 * up) to the upstreams their connections go to, checked and lower-cased.
 */
import type { RawListener } from './listener-schema.ts';
import { show, type Problem } from './problems.ts';
import { suggest } from './suggest.ts';
import type { UpstreamConfig } from './types.ts';

const NAME = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/**
 * The listener's `sni` entries, names lower-cased, or undefined without any (or on a listener of
 * another protocol, which listenerProtocolProblems reports). A name that is neither a DNS name nor
 * `*.` and one, or one given twice in different case, is a problem.
 */
export function sniNames(name: string, l: RawListener, problems: Problem[]): ReadonlyMap<string, string> | undefined {
  if (l.sni === undefined || l.protocol !== 'tls-passthrough') return undefined;
  const names = new Map<string, string>();
  for (const [written, upstream] of Object.entries(l.sni)) {
    const host = written.toLowerCase();
    const at = ['listeners', name, 'sni', written];
    if (!NAME.test(host) || host.length > 255) {
      problems.push({ path: at, expected: 'a server name like "a.example.com" or a wildcard like "*.example.com"', found: show(written) });
    } else if (names.has(host)) {
      problems.push({ path: at, expected: 'each server name once (names are not case-sensitive)', found: `${show(written)} again` });
    }
    names.set(host, upstream);
  }
  return names;
}

/** Each upstream the `sni` table names must exist and have tcp:// endpoints. */
export function sniUpstreamProblems(listener: string, raw: RawListener, upstreams: ReadonlyMap<string, UpstreamConfig>, problems: Problem[]): void {
  if (raw.sni === undefined || raw.protocol !== 'tls-passthrough') return;
  const known = [...upstreams.keys()];
  for (const [written, name] of Object.entries(raw.sni)) {
    const path = ['listeners', listener, 'sni', written];
    const u = upstreams.get(name);
    if (u === undefined) {
      problems.push({
        path,
        expected: known.length ? `the name of an upstream (one of: ${known.join(', ')})` : 'the name of an upstream (none are defined)',
        found: show(name),
        hint: suggest(name, known),
      });
    } else if (u.endpoints.some((e) => e.scheme !== 'tcp')) {
      const has = u.endpoints.find((e) => e.scheme !== 'tcp')!.scheme;
      problems.push({ path, expected: `an upstream with tcp:// endpoints (upstream "${u.name}" has ${has} ones)`, found: show(name) });
    }
  }
}
