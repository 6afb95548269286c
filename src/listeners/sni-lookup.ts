/**
 * Choosing by TLS server name (SNI), as certificates (tls-contexts.ts) and passthrough routes
 * (tls-passthrough.ts) are chosen: the exact name, else the `*.` wildcard one label up, else the
 * fallback. Names are lower-case on both sides.
 */
export function sniLookup<T>(table: ReadonlyMap<string, T>, serverName: string | undefined, fallback: T | undefined): T | undefined {
  if (serverName === undefined) return fallback;
  const exact = table.get(serverName);
  if (exact !== undefined) return exact;
  const dot = serverName.indexOf('.');
  return (dot > 0 ? table.get(`*${serverName.slice(dot)}`) : undefined) ?? fallback;
}
