/**
 * What a configured header field may be: names a policy must leave alone, and the characters a
 * field value may hold. Shared by the policies that write headers (`headers`, `respond`); it
 * imports nothing.
 */

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
