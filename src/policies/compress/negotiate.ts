/**
 * Content-coding negotiation: which of the codings the server offers a request's Accept-Encoding
 * asks for (RFC 9110 §12.5.3, q-values §12.4.2). Parsed by scanning, no regex: each element is
 * `coding *( OWS ";" OWS name "=" value )`, elements separated by commas.
 *
 * - A coding with q=0 is refused; `*` stands for every coding not named; `x-gzip` is gzip (§8.4.1.3).
 * - The highest q wins; ties go to the server's order (`encodings`).
 * - `identity` competes only when it is named: `gzip;q=0.5, identity` sends the body as it is.
 *   Unnamed, it is the fallback when no coding is acceptable. `identity;q=0` cannot be honoured
 *   by a proxy that has nothing else to send, so it changes nothing.
 * - No Accept-Encoding at all: nothing is compressed (the field's absence allows any coding, but
 *   clients that send none are usually tools that would not decode it).
 * - An element whose q is not a valid qvalue is ignored, as if not sent.
 */
import type { Coding } from './config.ts';

/** Thousandths of a qvalue, 0 to 1000, or -1 when `text` is not one (`0`, `0.5`, `1.000`). */
export function parseQ(text: string): number {
  const n = text.length;
  if (n === 0 || n > 5) return -1;
  const first = text.charCodeAt(0);
  if (first !== 48 && first !== 49) return -1;
  if (n === 1) return first === 49 ? 1000 : 0;
  if (text.charCodeAt(1) !== 46) return -1;
  let value = first === 49 ? 1000 : 0;
  let scale = 100;
  for (let i = 2; i < n; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9 || (first === 49 && d !== 0)) return -1;
    value += d * scale;
    scale /= 10;
  }
  return value;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** `text` without leading and trailing spaces and tabs. */
function trimOws(text: string, from: number, to: number): string {
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}

/** An Accept-Encoding value as coding (lower case) → q in thousandths; the first mention of a coding counts. */
export function parseAcceptEncoding(value: string): Map<string, number> {
  const out = new Map<string, number>();
  let start = 0;
  const n = value.length;
  while (start <= n) {
    let end = value.indexOf(',', start);
    if (end === -1) end = n;
    let semi = value.indexOf(';', start);
    if (semi === -1 || semi > end) semi = end;
    const coding = trimOws(value, start, semi).toLowerCase();
    let q = 1000;
    // Parameters: only q matters; a malformed q drops the element.
    let p = semi;
    while (p < end) {
      let next = value.indexOf(';', p + 1);
      if (next === -1 || next > end) next = end;
      const param = trimOws(value, p + 1, next);
      const eq = param.indexOf('=');
      if (eq !== -1 && trimOws(param, 0, eq).toLowerCase() === 'q') q = parseQ(trimOws(param, eq + 1, param.length));
      p = next;
    }
    if (coding !== '' && q >= 0 && !out.has(coding)) out.set(coding, q);
    start = end + 1;
  }
  return out;
}

/**
 * The coding to send for `acceptEncoding` among `offered` (server preference order), or undefined
 * to send the body as it is.
 */
export function chooseCoding(acceptEncoding: string | undefined, offered: readonly Coding[]): Coding | undefined {
  if (acceptEncoding === undefined) return undefined;
  const accepted = parseAcceptEncoding(acceptEncoding);
  if (accepted.size === 0) return undefined;
  const star = accepted.get('*') ?? 0;
  let best: Coding | undefined;
  let bestQ = 0;
  for (const coding of offered) {
    const q = accepted.get(coding) ?? (coding === 'gzip' ? accepted.get('x-gzip') : undefined) ?? star;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  if (best === undefined) return undefined;
  const identity = accepted.get('identity');
  return identity !== undefined && identity > bestQ ? undefined : best;
}

/**
 * Remembers the choice per Accept-Encoding value (clients send a handful of distinct values).
 * Per worker: a cache of a pure function, rebuilt with each generation; cleared when it reaches
 * `MAX_REMEMBERED` values, so a client sending random values cannot grow it.
 */
export class Negotiator {
  static readonly MAX_REMEMBERED = 256;
  readonly offered: readonly Coding[];
  readonly #seen = new Map<string, Coding | null>();

  constructor(offered: readonly Coding[]) {
    this.offered = offered;
  }

  choose(acceptEncoding: string | undefined): Coding | undefined {
    if (acceptEncoding === undefined || acceptEncoding.length > 1024) return chooseCoding(acceptEncoding, this.offered);
    const known = this.#seen.get(acceptEncoding);
    if (known !== undefined) return known ?? undefined;
    const chosen = chooseCoding(acceptEncoding, this.offered);
    if (this.#seen.size >= Negotiator.MAX_REMEMBERED) this.#seen.clear();
    this.#seen.set(acceptEncoding, chosen ?? null);
    return chosen;
  }
}
