/**
 * The header arithmetic of static files, pure and table-tested: validators (ETag, Last-Modified),
 * conditional requests in RFC 9110 §13.2.2's order, single byte ranges (RFC 9110 §14) with
 * If-Range, and Accept-Encoding negotiation with q-values (RFC 9110 §12.5.3). No I/O, no state.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * A strong ETag from the file's size and modification time (ms), as nginx makes it, and the
 * content coding of a precompressed sibling: each stored representation gets its own.
 */
export function etagOf(size: number, mtimeMs: number, encoding: string | undefined): string {
  const base = `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}`;
  return encoding === undefined ? `${base}"` : `${base}-${encoding}"`;
}

/** Whether `etag` is in the list `header` (`*` matches any): `weak` compares without the W/ prefix (If-None-Match), else strong (If-Match). */
export function etagMatches(header: string, etag: string, weak: boolean): boolean {
  if (header.trim() === '*') return true;
  for (let raw of header.split(',')) {
    raw = raw.trim();
    if (raw.startsWith('W/')) {
      if (!weak) continue;
      raw = raw.slice(2);
    }
    if (raw === etag) return true;
  }
  return false;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Seconds resolution, as HTTP dates carry. */
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * RFC 9110 §13.2.2: If-Match, else If-Unmodified-Since (412 when they fail), then If-None-Match,
 * else If-Modified-Since (GET and HEAD: 304 when they match). 0 when the request goes on.
 * An unparsable date is ignored, as the RFC says.
 */
export function evaluateConditions(headers: IncomingHttpHeaders, etag: string, mtimeMs: number): 0 | 304 | 412 {
  const ifMatch = first(headers['if-match']);
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, etag, false)) return 412;
  } else {
    const ius = headers['if-unmodified-since'];
    if (ius !== undefined) {
      const t = Date.parse(ius);
      if (!Number.isNaN(t) && seconds(mtimeMs) > seconds(t)) return 412;
    }
  }
  const ifNoneMatch = first(headers['if-none-match']);
  if (ifNoneMatch !== undefined) return etagMatches(ifNoneMatch, etag, true) ? 304 : 0;
  const ims = headers['if-modified-since'];
  if (ims !== undefined) {
    const t = Date.parse(ims);
    if (!Number.isNaN(t) && seconds(mtimeMs) <= seconds(t)) return 304;
  }
  return 0;
}

/**
 * If-Range (RFC 9110 §13.1.5): the range applies only when the validator is the current strong
 * ETag, or exactly the current Last-Modified date. Absent: true.
 */
export function ifRangeHolds(value: string | undefined, etag: string, lastModified: string): boolean {
  if (value === undefined) return true;
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === etag;
  return v === lastModified;
}

export { type ByteRange, parseRange } from '../util/byte-range.ts';

/** The content codings a precompressed sibling may have, in our order of preference at equal q, with the sibling's suffix. */
export const ENCODINGS = [
  { coding: 'br', suffix: '.br' },
  { coding: 'zstd', suffix: '.zst' },
  { coding: 'gzip', suffix: '.gz' },
] as const;

export type Encoding = (typeof ENCODINGS)[number];

/**
 * The codings of ENCODINGS the client accepts (q > 0), best first: by q, then our order. `*`
 * stands for any coding not named; `x-gzip` is gzip (RFC 9110 §8.4.1.3).
 */
export function acceptedEncodings(header: string | undefined): Encoding[] {
  if (header === undefined || header === '') return [];
  const q: Record<string, number> = {};
  let star: number | undefined;
  for (const part of header.split(',')) {
    const semi = part.indexOf(';');
    let name = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (name === 'x-gzip') name = 'gzip';
    let weight = 1;
    if (semi >= 0) {
      const m = /(?:^|;)\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*(?:;|$)/i.exec(part.slice(semi));
      weight = m === null ? 1 : Number(m[1]);
    }
    if (name === '*') star = weight;
    else q[name] = weight;
  }
  const out: Array<{ e: Encoding; q: number; i: number }> = [];
  ENCODINGS.forEach((e, i) => {
    const w = q[e.coding] ?? star ?? 0;
    if (w > 0) out.push({ e, q: w, i });
  });
  out.sort((x, y) => y.q - x.q || x.i - y.i);
  return out.map((x) => x.e);
}
