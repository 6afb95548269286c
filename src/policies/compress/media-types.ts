/**
 * The media types a compress policy compresses, compiled once per generation: exact types in a
 * Set, `type/*` as prefixes, `type/*+suffix` (structured syntax suffixes, RFC 6838 §4.2.8) as
 * prefix and suffix. Per response: one slice of Content-Type, a Set lookup, then the short lists.
 */

/** `text/event-stream`: never compressed (each event must reach the client at once). */
export const EVENT_STREAM = 'text/event-stream';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

export class MediaTypes {
  readonly #exact = new Set<string>();
  readonly #prefixes: string[] = [];
  readonly #suffixed: Array<{ readonly prefix: string; readonly suffix: string }> = [];

  /** Adds a pattern; returns false when it is not `type/subtype`, `type/*`, `type/*+suffix` or `*\/*`. */
  add(pattern: string): boolean {
    const p = pattern.trim().toLowerCase();
    const slash = p.indexOf('/');
    if (slash <= 0) return false;
    const type = p.slice(0, slash);
    const sub = p.slice(slash + 1);
    if (type === '*') {
      if (sub !== '*') return false;
      this.#prefixes.push('');
      return true;
    }
    if (!TOKEN.test(type)) return false;
    if (sub === '*') {
      this.#prefixes.push(`${type}/`);
      return true;
    }
    if (sub.startsWith('*+')) {
      const suffix = sub.slice(2);
      if (!TOKEN.test(suffix)) return false;
      this.#suffixed.push({ prefix: `${type}/`, suffix: `+${suffix}` });
      return true;
    }
    if (!TOKEN.test(sub) || sub.includes('*')) return false;
    this.#exact.add(p);
    return true;
  }

  /** Whether a Content-Type value (parameters allowed, any case) is one to compress. */
  matches(contentType: string): boolean {
    const semi = contentType.indexOf(';');
    const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (type === EVENT_STREAM || type.indexOf('/') <= 0) return false;
    if (this.#exact.has(type)) return true;
    for (const prefix of this.#prefixes) if (type.startsWith(prefix)) return true;
    for (const s of this.#suffixed) if (type.startsWith(s.prefix) && type.endsWith(s.suffix)) return true;
    return false;
  }
}
