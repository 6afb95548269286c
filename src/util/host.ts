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
