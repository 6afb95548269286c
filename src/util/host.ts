/**
 * A Host (or :authority) value taken apart: where its port starts, and its host name as routing
 * compares it. Allocation-free beyond the strings returned: it runs once per request.
 */

/** Index of the `:` before the port of `host:port` or `[v6]:port`, or -1 when there is no port. */
export function portColon(host: string): number {
  const colon = host.lastIndexOf(':');
  return colon !== -1 && colon > host.lastIndexOf(']') ? colon : -1;
}

/** The host name of a Host value: port removed, lower case, no trailing dot; IPv6 keeps its brackets. */
export function hostnameOf(host: string): string {
  const colon = portColon(host);
  let name = (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name;
}

const DOT = 0x2e;
const MAX_NAME = 253;
const MAX_LABEL = 63;

/**
 * Whether `name` (lower case, no trailing dot) is a DNS host name: labels of letters, digits, `-` and `_` (1-63 bytes, no `-` at either end), 253 bytes in
 * all. No allocation; the forward proxy asks it once per destination, config loading once per domain entry.
 */
export function isHostName(name: string): boolean {
  if (name.length > MAX_NAME) return false;
  let label = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (label === 0 || name.charCodeAt(i - 1) === 0x2d) return false;
      label = 0;
      continue;
    }
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || (c === 0x2d && label > 0);
    if (!ok || ++label > MAX_LABEL) return false;
  }
  return true;
}
