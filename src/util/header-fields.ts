/**
 * What a header field may be: its name a token, names a policy must leave alone, and the
 * characters a field value may hold. Shared by the config schemas (through config-primitives.ts),
 * the policies that write headers (`headers`, `respond`) and the HTTP/1.1 client's parser
 * (transport/h1-client.ts); it imports nothing.
 */

/** One character of an HTTP token (RFC 9110 §5.6.2), as a regex character class. */
export const TOKEN_CHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
/** A whole HTTP token: what a header name (or a cookie name, or a method) may be. */
export const TOKEN_PATTERN = new RegExp(`^${TOKEN_CHAR}+$`);

/**
 * A chunk-size line of a chunked body without its CRLF (RFC 9112 §7.1): hex size, then chunk
 * extensions (not interpreted), each `;name` or `;name=value` with a token or quoted-string value.
 * No whitespace anywhere: RFC 9112 allows BWS around the `;` and `=`, llhttp in strict mode does not,
 * and whitespace a parser skips that another does not is a smuggling vector. Both HTTP/1.1 parsers
 * (transport/h1-client.ts for responses, http/h1-server.ts for requests) read chunk lines with it.
 */
export const CHUNK_SIZE_LINE = new RegExp(
  String.raw`^[0-9a-fA-F]{1,16}(?:;${TOKEN_CHAR}+(?:=(?:${TOKEN_CHAR}+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*$`,
);
/** A trailer field line of a chunked body without its CRLF: a token name, a colon, field content. */
export const TRAILER_LINE = new RegExp(String.raw`^${TOKEN_CHAR}+:[\t\x20-\x7e\x80-\xff]*$`);

/** TOKEN_CHAR as a table by char code, for the hot path (no regex per name). */
const TCHAR = new Uint8Array(128);
{
  const one = new RegExp(`^${TOKEN_CHAR}$`);
  for (let c = 0; c < 128; c++) if (one.test(String.fromCharCode(c))) TCHAR[c] = 1;
}

/** Whether `s` is a token (TOKEN_PATTERN, without a regex). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

/**
 * Names that belong to one connection or frame the message (RFC 9110 §7.6.1, RFC 9112 §6-7):
 * the transport writes them itself, so no policy may set, add, remove or rename them.
 */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'content-length',
  'http2-settings',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** What a problem about a refused name says it expected. */
export const FRAMING_TEXT = `a header name other than ${[...FRAMING_HEADERS].join(', ')} (Switchboard writes those itself)`;

/** What a problem about a bad value says it expected. */
export const FIELD_VALUE_TEXT = 'a header value without control characters (CR, LF, NUL, …) or characters above U+00FF';

function fieldChar(c: number): boolean {
  return c === 9 || (c >= 0x20 && c !== 0x7f && c <= 0xff);
}

/**
 * Whether `value` may go in a header field as it is: tab, visible ASCII, space and Latin-1
 * (node:http's own rule; RFC 9110 §5.5 field-content, with obs-text).
 */
export function isFieldValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (!fieldChar(value.charCodeAt(i))) return false;
  return true;
}

/**
 * `value` without the characters a field value may not hold. Returns `value` itself, without
 * allocating, when there are none (the usual case: parsers refuse CR, LF and NUL already).
 */
export function toFieldValue(value: string): string {
  let i = 0;
  while (i < value.length && fieldChar(value.charCodeAt(i))) i++;
  if (i === value.length) return value;
  let out = value.slice(0, i);
  for (; i < value.length; i++) if (fieldChar(value.charCodeAt(i))) out += value[i];
  return out;
}
