/**
 * One byte range of a `Range` header (RFC 9110 §14.1.2), pure: shared by static files
 * (src/http/static-conditions.ts) and the cache policy (ranges from a stored response).
 */

/** A satisfiable byte range, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * One `Range: bytes=…` against a representation of `size` bytes: the range; 'unsatisfiable' (416);
 * or undefined when the header is to be ignored (not bytes, malformed, or several ranges: the
 * whole representation is served, which RFC 9110 §14.2 allows).
 */
export function parseRange(header: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header.startsWith('bytes=')) return undefined;
  const spec = header.slice(6).trim();
  if (spec.includes(',')) return undefined;
  const dash = spec.indexOf('-');
  if (dash < 0) return undefined;
  const a = spec.slice(0, dash).trim();
  const b = spec.slice(dash + 1).trim();
  if ((a !== '' && !/^\d{1,15}$/.test(a)) || (b !== '' && !/^\d{1,15}$/.test(b))) return undefined;
  if (a === '') {
    if (b === '') return undefined;
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: b === '' ? size - 1 : Math.min(Number(b), size - 1) };
}
