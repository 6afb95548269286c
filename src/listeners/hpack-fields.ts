/**
 * The field checks of RFC 9113 §8.2.1 that nghttp2 makes on a request's header block but
 * node:http2 does not act on: nghttp2 reports an invalid field (a name with a space, a colon or an
 * upper-case letter past the first character, a value with NUL, CR, LF or another control byte, a
 * value with leading or trailing whitespace, a Host that is no authority) to node's
 * `on_invalid_header` callback, which returns 0, so the field is dropped and the request goes on
 * without it. `checkHeaderBlock` walks an HPACK block (RFC 7541) the way nghttp2 decodes it and
 * says whether it holds such a field.
 *
 * No dynamic table is kept: an indexed field or name refers to an entry that was checked when it was
 * added, and a bad field added to the table is reported as `malformed-indexed` (the connection must
 * end, or later blocks could refer to it). A block that does not decode is left to nghttp2, which
 * ends the connection with COMPRESSION_ERROR.
 */

/** `malformed`: a bad field kept out of the dynamic table; `malformed-indexed`: one added to it. */
export type BlockVerdict = 'ok' | 'malformed' | 'malformed-indexed';

/** nghttp2's VALID_HD_NAME_CHARS: token characters, letters lower-case only. */
const NAME_CHAR = byteSet("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz");
/** nghttp2's VALID_HD_VALUE_CHARS: HTAB, visible ASCII, obs-text; no other control byte, no DEL. */
const VALUE_CHAR = new Uint8Array(256).map((_, b) => (b === 0x09 || (b >= 0x20 && b !== 0x7f) ? 1 : 0));
/** nghttp2's VALID_AUTHORITY_CHARS, which a server applies to Host (no userinfo: no '@'). */
const AUTHORITY_CHAR = byteSet("!$%&'()*+,-.0123456789:;=ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~");

function byteSet(chars: string): Uint8Array {
  const set = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) set[chars.charCodeAt(i)] = 1;
  return set;
}

/** Index of `host` in the static table (RFC 7541 Appendix A). */
const STATIC_HOST = 38;
const STATIC_ENTRIES = 61;

/**
 * Code length of each symbol 0..256 of the HPACK Huffman code (RFC 7541 Appendix B), as a letter:
 * 'A' is 5 bits ... 'Z' is 30 bits. The code is canonical (codes of one length are consecutive and
 * in symbol order), so the lengths define it; checked against nghttp2's table and the RFC's examples.
 */
const HUFFMAN_LENGTHS =
  'ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ';
const EOS = 256;

/** Canonical decoding tables: per length, the first code, how many codes, where their symbols start. */
const FIRST = new Int32Array(31);
const COUNT = new Int32Array(31);
const OFFSET = new Int32Array(31);
const SYMBOLS = new Uint16Array(257);
{
  const byLength: number[][] = Array.from({ length: 31 }, () => []);
  for (let s = 0; s <= EOS; s++) byLength[HUFFMAN_LENGTHS.charCodeAt(s) - 60].push(s);
  let code = 0;
  let at = 0;
  for (let len = 1; len <= 30; len++) {
    code <<= 1;
    FIRST[len] = code;
    COUNT[len] = byLength[len].length;
    OFFSET[len] = at;
    for (const s of byLength[len]) SYMBOLS[at++] = s;
    code += COUNT[len];
  }
}

/** What a string is checked as. */
const AS_NAME = 0;
const AS_VALUE = 1;
const AS_HOST = 2;
type As = typeof AS_NAME | typeof AS_VALUE | typeof AS_HOST;

/** A decoding failure: the block is left to nghttp2. */
const UNDECODABLE = -1;

/**
 * Checks one header block. `block` is the whole HPACK block of one HEADERS frame and its
 * CONTINUATION frames, padding and priority fields removed.
 */
export function checkHeaderBlock(block: Uint8Array): BlockVerdict {
  let verdict: BlockVerdict = 'ok';
  const r = new Reader(block);
  while (r.pos < block.length) {
    const first = block[r.pos];
    if (first & 0x80) {
      // Indexed field: a static entry, or a dynamic one checked when it was added.
      if (r.integer(7) === UNDECODABLE) return 'ok';
      continue;
    }
    if ((first & 0xe0) === 0x20) {
      // Dynamic table size update.
      if (r.integer(5) === UNDECODABLE) return 'ok';
      continue;
    }
    // A literal: with incremental indexing (01xxxxxx), without indexing or never indexed (000xxxxx).
    const indexed = (first & 0xc0) === 0x40;
    const nameIndex = r.integer(indexed ? 6 : 4);
    if (nameIndex === UNDECODABLE) return 'ok';
    let bad = false;
    let host = nameIndex === STATIC_HOST;
    if (nameIndex === 0) {
      const name = r.string(AS_NAME);
      if (name === UNDECODABLE) return 'ok';
      bad = name === BAD;
      host = name === HOST;
    } else if (nameIndex > STATIC_ENTRIES) {
      // A dynamic name: its entry was checked when it was added; Host is not told apart here.
      host = false;
    }
    const value = r.string(host ? AS_HOST : AS_VALUE);
    if (value === UNDECODABLE) return 'ok';
    if (bad || value === BAD) {
      if (indexed) return 'malformed-indexed';
      verdict = 'malformed';
    }
  }
  return verdict;
}

/** String results besides UNDECODABLE. */
const GOOD = 0;
const BAD = 1;
/** A name that is exactly `host`. */
const HOST = 2;

class Reader {
  pos = 0;
  readonly #b: Uint8Array;

  constructor(b: Uint8Array) {
    this.#b = b;
  }

  /** An integer with an N-bit prefix (RFC 7541 §5.1), or UNDECODABLE. */
  integer(prefixBits: number): number {
    const b = this.#b;
    const max = (1 << prefixBits) - 1;
    let value = b[this.pos++] & max;
    if (value < max) return value;
    for (let shift = 0; shift <= 28; shift += 7) {
      if (this.pos >= b.length) return UNDECODABLE;
      const byte = b[this.pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    return UNDECODABLE;
  }

  /** A string literal (RFC 7541 §5.2) checked as `as`: GOOD, BAD, HOST, or UNDECODABLE. */
  string(as: As): number {
    const b = this.#b;
    if (this.pos >= b.length) return UNDECODABLE;
    const huffman = (b[this.pos] & 0x80) !== 0;
    const length = this.integer(7);
    if (length === UNDECODABLE || this.pos + length > b.length) return UNDECODABLE;
    const start = this.pos;
    this.pos += length;
    const check = new StringCheck(as);
    if (!huffman) {
      for (let i = start; i < start + length; i++) check.add(b[i]);
      return check.result();
    }
    // Huffman (RFC 7541 Appendix B), canonical decoding one bit at a time.
    let code = 0;
    let len = 0;
    for (let i = start; i < start + length; i++) {
      const byte = b[i];
      for (let bit = 7; bit >= 0; bit--) {
        code = (code << 1) | ((byte >> bit) & 1);
        len++;
        const k = code - FIRST[len];
        if (k < COUNT[len]) {
          const symbol = SYMBOLS[OFFSET[len] + k];
          if (symbol === EOS) return UNDECODABLE;
          check.add(symbol);
          code = 0;
          len = 0;
        } else if (len === 30) return UNDECODABLE;
      }
    }
    // Padding: fewer than 8 bits, all ones (the start of EOS).
    if (len > 7 || code !== (1 << len) - 1) return UNDECODABLE;
    return check.result();
  }
}

/** The checks nghttp2 makes on one name or value, fed a byte at a time. */
class StringCheck {
  readonly #as: As;
  #length = 0;
  #first = -1;
  #last = -1;
  #bad = false;
  /** For names: whether the bytes so far spell a prefix of `host`. */
  #host = true;

  constructor(as: As) {
    this.#as = as;
  }

  add(byte: number): void {
    const at = this.#length++;
    if (at === 0) this.#first = byte;
    this.#last = byte;
    switch (this.#as) {
      case AS_NAME:
        // A pseudo-header name starts with ':'; nghttp2 rejects those itself when they are wrong.
        if (!(NAME_CHAR[byte] || (at === 0 && byte === 0x3a))) this.#bad = true;
        if (this.#host && (at > 3 || byte !== 'host'.charCodeAt(at))) this.#host = false;
        break;
      case AS_VALUE:
        if (!VALUE_CHAR[byte]) this.#bad = true;
        break;
      case AS_HOST:
        if (!AUTHORITY_CHAR[byte]) this.#bad = true;
        break;
    }
  }

  result(): number {
    if (this.#as === AS_NAME) {
      if (this.#bad || this.#length === 0 || (this.#first === 0x3a && this.#length === 1)) return BAD;
      return this.#host && this.#length === 4 ? HOST : GOOD;
    }
    if (this.#bad) return BAD;
    // RFC 9113 §8.2.1: no leading or trailing whitespace (strictFieldWhitespaceValidation).
    const ws = (b: number): boolean => b === 0x20 || b === 0x09;
    return this.#length > 0 && (ws(this.#first) || ws(this.#last)) ? BAD : GOOD;
  }
}
