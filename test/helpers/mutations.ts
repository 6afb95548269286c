/**
 * Seeded mutations of protocol bytes, for the differential tests of Switchboard's own HTTP/1.1
 * parsers against llhttp (src/transport/h1-client-differential.test.ts,
 * src/http/h1-server-differential.test.ts): the same seed gives the same cases.
 */

/** The bytes that matter to HTTP/1.1 framing, which every such test inserts (its own whole fields after them). */
export const FRAMING_BYTES: readonly string[] = [' ', '\t', '\r', '\n', '\0', ':', 'a', '0', ',', '\x7f', '\x80', '\r\n'];

/** xorshift32 from `seed`: a function giving integers in [0, n). */
export function seededRandom(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/**
 * One or two mutations of `text` at or after `from`: an insert from `inserts`, a deleted character,
 * or a character replaced by any byte.
 */
export function mutate(text: string, rnd: (n: number) => number, inserts: readonly string[], from = 0): string {
  let s = text;
  for (let i = 1 + rnd(2); i > 0; i--) {
    const at = from + rnd(s.length - from + 1);
    const kind = rnd(3);
    if (kind === 0) s = s.slice(0, at) + inserts[rnd(inserts.length)] + s.slice(at);
    else if (kind === 1) s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at) + String.fromCharCode(rnd(256)) + s.slice(at + 1);
  }
  return s;
}
