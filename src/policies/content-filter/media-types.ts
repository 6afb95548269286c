/**
 * The response media types a content-filter policy refuses, compiled once per config load: exact
 * types in a Set, `type/*` as prefixes. Per response: one slice of Content-Type (parameters
 * dropped, lower-cased), a Set lookup, then the short prefix list.
 *
 * State: none per request; immutable once built, per process.
 */

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

export class BlockedTypes {
  readonly #exact = new Set<string>();
  readonly #prefixes: string[] = [];

  /** Adds `type/subtype` or `type/*` (any case); returns false for anything else. */
  add(pattern: string): boolean {
    const p = pattern.trim().toLowerCase();
    const slash = p.indexOf('/');
    if (slash <= 0) return false;
    const type = p.slice(0, slash);
    const sub = p.slice(slash + 1);
    if (!TOKEN.test(type) || type.includes('*')) return false;
    if (sub === '*') this.#prefixes.push(`${type}/`);
    else if (TOKEN.test(sub) && !sub.includes('*')) this.#exact.add(p);
    else return false;
    return true;
  }

  /** Whether a Content-Type value (parameters allowed, any case) is refused. */
  matches(contentType: string): boolean {
    const semi = contentType.indexOf(';');
    const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (this.#exact.has(type)) return true;
    for (const prefix of this.#prefixes) if (type.startsWith(prefix)) return true;
    return false;
  }
}
