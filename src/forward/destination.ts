/**
 * What every HTTP way through the forward proxy does before it connects (absolute-form requests,
 * CONNECT over HTTP/1.1 and HTTP/2, WebSocket upgrades): read the destination from the request's
 * authority, refuse loops, ask the destination guard, and answer a refusal.
 *
 *   Via already holds our pseudonym           ─► 508 PROXY_LOOP
 *   guard.check → Refusal                      ─► 403 (its code) / 502 DESTINATION_UNRESOLVED
 *   the permit's address is one of our own     ─► 508 PROXY_LOOP (EDGE-CASES 36)
 *   Permit                                     ─► the step connects to one of its addresses
 *
 * The decision is kept on the session (`s.forward`) for the access log and the metrics.
 */
import { fail } from '../http/respond.ts';
import type { RequestSession } from '../http/session.ts';
import type { ForwardRecord } from '../observability/access-log.ts';
import { forwardRefusal } from '../observability/events.ts';
import type { Decision, ForwardAsk, Permit } from './destination-guard.ts';
import type { ForwardRoute } from './forward-route.ts';
import { portColon } from '../util/host.ts';

const NO_GROUPS: readonly string[] = [];

/** Host (no brackets, no trailing dot) and port of an authority; `port` when it names none. */
export function splitAuthority(authority: string, port: number): { host: string; port: number } {
  const colon = portColon(authority);
  let host = colon === -1 ? authority : authority.slice(0, colon);
  const p = colon === -1 ? port : Number(authority.slice(colon + 1));
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return { host, port: p };
}

/** Whether a Via value names `pseudonym` as one of the hops (`1.1 switchboard`, `HTTP/1.1 switchboard (comment)`). */
export function viaNames(via: string | string[] | undefined, pseudonym: string): boolean {
  if (via === undefined) return false;
  const text = Array.isArray(via) ? via.join(',') : via;
  const wanted = pseudonym.toLowerCase();
  for (const hop of text.split(',')) {
    const parts = hop.trim().split(/\s+/);
    if (parts.length >= 2 && parts[1].toLowerCase() === wanted) return true;
  }
  return false;
}

/**
 * Checks the destination of `s` (its `host`, default port `port`) with the route's guard. The
 * permit, or undefined once the request has been answered (a loop, a refusal, the client gone
 * meanwhile): at once when the guard decides without a lookup (`decideNow`: an IP literal), else
 * as a promise. Never rejects.
 */
export function admitDestination(
  s: RequestSession,
  route: ForwardRoute,
  kind: ForwardRecord['kind'],
  scheme: 'http' | 'https',
  defaultPort: number,
): Permit | undefined | Promise<Permit | undefined> {
  const { host, port } = splitAuthority(s.host, defaultPort);
  const destination = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  let record = s.proxied;
  if (record === undefined) {
    record = { kind, destination, rule: undefined, address: undefined };
    s.proxied = record;
  } else record.destination = destination;
  const via = route.forward.via;
  if (via !== undefined && viaNames(s.down.headers.via, via)) {
    fail(s, 'PROXY_LOOP', `the request already passed through ${via} (its Via header names it)`);
    return undefined;
  }
  const identity = s.identity;
  const ask: ForwardAsk = {
    client: s.clientIp,
    consumer: identity?.consumer.name,
    groups: identity?.consumer.groups ?? NO_GROUPS,
    method: s.down.method,
    scheme,
    host,
    port,
  };
  const now = route.guard.decideNow?.(ask);
  if (now !== undefined) return admitted(s, route, record, port, now);
  const r = record;
  return route.guard.check(ask).then((decision) => admitted(s, route, r, port, decision));
}

/** The guard's `decision` applied to `s`: the permit, or undefined once `s` has been answered. */
function admitted(s: RequestSession, route: ForwardRoute, record: ForwardRecord, port: number, decision: Decision): Permit | undefined {
  record.rule = decision.rule;
  if (s.over || s.down.destroyed) return undefined;
  if (!decision.allowed) {
    if (forwardRefusal.hasSubscribers) forwardRefusal.publish({ listener: s.listener, code: decision.code, rule: decision.rule });
    fail(s, decision.code, decision.reason);
    return undefined;
  }
  for (const address of decision.addresses) {
    if (route.isOwn(address, port)) {
      fail(s, 'PROXY_LOOP', 'the destination is one of this proxy’s own listening addresses');
      return undefined;
    }
  }
  return decision;
}
