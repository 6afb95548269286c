/**
 * A set of destination-name patterns, built once per generation and asked per request: exact names
 * (`tracker.example`), `*.suffix` (any name under `suffix`, not `suffix` itself) and `~regex` (a
 * regular expression on the whole name, anchored, case-insensitive). Exact names and suffixes live
 * in two `Set`s, so a list of 100,000+ names (domainFiles) costs one hash lookup per label of the
 * asked name: the name itself, then each parent (`a.b.example` → `b.example` → `example`). The
 * regexes are compiled here, once; they run on host names of at most 253 bytes, which bounds
 * their time (EDGE-CASES 54).
 *
 * The shape is Squid's `dstdomain` ACL (a splay tree of names) and HAProxy's `-m dom` map, done as
 * hash sets: lookups need no order, and building from an unsorted file stays linear.
 */

/** Immutable once built. `has` allocates only the parent-suffix slices it looks up. */
export class DomainSet {
  readonly #exact = new Set<string>();
  readonly #under = new Set<string>();
  readonly #regexes: RegExp[] = [];

  /** `patterns` lower-cased and checked (config/resolve-forward.ts); a `~` pattern must compile. */
  constructor(patterns: Iterable<string>) {
    for (const p of patterns) {
      if (p.startsWith('~')) this.#regexes.push(new RegExp(`^(?:${p.slice(1)})$`, 'i'));
      else if (p.startsWith('*.')) this.#under.add(p.slice(2));
      else this.#exact.add(p);
    }
  }

  /** How many patterns the set holds (duplicates counted once). */
  get size(): number {
    return this.#exact.size + this.#under.size + this.#regexes.length;
  }

  /** Whether `name` (lower case, no trailing dot) matches a pattern. */
  has(name: string): boolean {
    if (this.#exact.has(name)) return true;
    if (this.#under.size > 0) {
      for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
        if (this.#under.has(name.slice(dot + 1))) return true;
      }
    }
    for (const re of this.#regexes) if (re.test(name)) return true;
    return false;
  }
}
