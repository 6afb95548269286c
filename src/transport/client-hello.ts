/**
 * The server name (SNI) of a TLS ClientHello, read without decrypting anything: enough of the
 * first bytes of a connection to route it (`protocol: tls-passthrough`), nothing more.
 *
 *   record:     type 22 (handshake) │ version 3.x │ length ≤ 16384+2048 │ fragment …   (repeated)
 *   handshake:  type 1 (ClientHello) │ length (24 bits) │ body, possibly spread over several records
 *   body:       version │ random │ session id │ cipher suites │ compression │ extensions
 *   extension:  server_name (0) ─► list of (type 0 host_name, name)
 *
 * The caller keeps every byte read so far and calls `parseClientHello` again with all of them each
 * time more arrive: the answer is `incomplete` until the whole ClientHello is there, `invalid` as
 * soon as the bytes cannot be one (not a handshake record, not a ClientHello, a length that does not
 * fit, a message over `CLIENT_HELLO_MAX_BYTES` or over more than 64 records), else `ok` with the
 * name, lower-cased. So at most about 16 KiB are ever buffered before a verdict.
 */

/** What the bytes read so far are. */
export type ClientHelloResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'ok' /** The host_name of server_name, lower-cased; undefined without one. */; readonly serverName: string | undefined };

/** The largest ClientHello handshake message (header included) accepted; past it, `invalid`. */
export const CLIENT_HELLO_MAX_BYTES = 16 * 1024;

const RECORD_HEADER = 5;
const MAX_FRAGMENT = 16384 + 2048;
/** Records a ClientHello may be spread over: with the size cap, bounds the bytes read for one. */
const MAX_RECORDS = 64;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME = 0;
const HOST_NAME = 0;
/** RFC 6066 HostName: ASCII, a DNS name (an underscore tolerated, as resolvers do). */
const HOST = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

const INCOMPLETE: ClientHelloResult = { kind: 'incomplete' };
const invalid = (reason: string): ClientHelloResult => ({ kind: 'invalid', reason });

/** Decides what `data`, the first bytes a client sent, are (see the module comment). */
export function parseClientHello(data: Uint8Array): ClientHelloResult {
  const fragments: Uint8Array[] = [];
  let have = 0;
  let offset = 0;
  let need = Infinity; // handshake bytes wanted: its 4-byte header plus its length, once known
  while (have < need) {
    if (offset >= data.length) return INCOMPLETE;
    if (fragments.length === MAX_RECORDS) return invalid(`ClientHello over more than ${MAX_RECORDS} records`);
    // Whatever part of the record header is there is checked before waiting for the rest.
    if (data[offset] !== HANDSHAKE) return invalid('not a TLS handshake record');
    if (offset + 1 < data.length && data[offset + 1] !== 3) return invalid('not a TLS record version');
    if (offset + RECORD_HEADER > data.length) return INCOMPLETE;
    const length = (data[offset + 3] << 8) | data[offset + 4];
    if (length === 0 || length > MAX_FRAGMENT) return invalid(`bad record length ${length}`);
    const start = offset + RECORD_HEADER;
    const fragment = data.subarray(start, Math.min(start + length, data.length));
    fragments.push(fragment);
    have += fragment.length;
    offset = start + length;
    if (have >= 1 && fragments[0][0] !== CLIENT_HELLO) return invalid('not a ClientHello');
    if (need === Infinity && have >= 4) {
      const head = concat(fragments, 4);
      const body = (head[1] << 16) | (head[2] << 8) | head[3];
      if (body + 4 > CLIENT_HELLO_MAX_BYTES) return invalid('ClientHello too large');
      need = body + 4;
    }
    if (offset > data.length && have < need) return INCOMPLETE;
  }
  return parseBody(concat(fragments, need).subarray(4));
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  if (parts[0].length >= n) return parts[0].subarray(0, n);
  return Buffer.concat(parts).subarray(0, n);
}

/** A bounds-checked reader over the ClientHello body: any read past `end` throws. */
class Reader {
  #at: number;
  readonly #b: Uint8Array;
  readonly #end: number;

  constructor(b: Uint8Array, at = 0, end = b.length) {
    this.#b = b;
    this.#at = at;
    this.#end = end;
  }

  get left(): number {
    return this.#end - this.#at;
  }

  u8(): number {
    if (this.left < 1) throw new RangeError('truncated');
    return this.#b[this.#at++];
  }

  u16(): number {
    return (this.u8() << 8) | this.u8();
  }

  /** A sub-reader over the next `n` bytes, skipped here. */
  take(n: number): Reader {
    if (this.left < n) throw new RangeError('length past its enclosing block');
    const r = new Reader(this.#b, this.#at, this.#at + n);
    this.#at += n;
    return r;
  }

  text(): string {
    return Buffer.from(this.#b.subarray(this.#at, this.#end)).toString('latin1');
  }
}

function parseBody(body: Uint8Array): ClientHelloResult {
  try {
    const r = new Reader(body);
    if (r.u8() !== 3) return invalid('not a TLS ClientHello version');
    r.u8();
    r.take(32); // random
    const session = r.u8();
    if (session > 32) return invalid('session id longer than 32 bytes');
    r.take(session);
    const suites = r.u16();
    if (suites < 2 || suites % 2 !== 0) return invalid('bad cipher suites length');
    r.take(suites);
    const compression = r.u8();
    if (compression < 1) return invalid('no compression methods');
    r.take(compression);
    if (r.left === 0) return { kind: 'ok', serverName: undefined };
    const extensions = r.take(r.u16());
    if (r.left !== 0) return invalid('bytes after the extensions');
    const seen = new Set<number>();
    let serverName: string | undefined;
    while (extensions.left > 0) {
      const type = extensions.u16();
      const ext = extensions.take(extensions.u16());
      if (seen.has(type)) return invalid(`extension ${type} twice`);
      seen.add(type);
      if (type !== SERVER_NAME) continue;
      const list = ext.take(ext.u16());
      if (ext.left !== 0 || list.left === 0) return invalid('bad server_name extension');
      while (list.left > 0) {
        const nameType = list.u8();
        const name = list.take(list.u16());
        if (nameType !== HOST_NAME) continue;
        if (serverName !== undefined) return invalid('two host names');
        const host = name.text().toLowerCase();
        if (host.length > 255 || !HOST.test(host)) return invalid('bad host name');
        serverName = host;
      }
    }
    return { kind: 'ok', serverName };
  } catch (err) {
    return invalid(err instanceof RangeError ? err.message : 'malformed ClientHello');
  }
}
