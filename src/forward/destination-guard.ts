/**
 * The forward proxy's one question about a destination, asked by every way in (HTTP absolute-form
 * requests, CONNECT tunnels over HTTP/1.1 and HTTP/2, SOCKS5 CONNECT and UDP ASSOCIATE, parent
 * proxies): may this client reach this host and port, and at which addresses? Then the connection
 * to exactly one of the addresses that were checked (EDGE-CASES 33-36, 49).
 *
 * The contract (resolve once, check every address, connect to a checked one):
 *   1. `check` applies the listener's ordered rules (first match wins), then the built-in safe
 *      defaults (Squid's Safe_ports and SSL_ports, then no loopback, link-local, cloud metadata,
 *      private, unspecified or IPv4-mapped forms of them; IPv4 literals in decimal, octal or hex
 *      are read as the address they spell), then allows.
 *   2. A host name is resolved once, by `check`; every address it resolves to is checked. The
 *      `Permit` carries the addresses that passed, and nothing else is ever connected to: no second
 *      lookup, so no DNS-rebinding window.
 *   3. `connect` opens a TCP connection to one of the permit's addresses (in order, the next one
 *      when one fails), never to a name.
 *
 * This file is the interface; the rules engine and the resolver behind it are
 * `compileForwardRules` (forward/rules.ts).
 */
import type { Socket } from 'node:net';

/** What a way in asks about one destination, once per request, tunnel or SOCKS command. */
export interface ForwardAsk {
  /** The client's address as its socket reports it (IPv4-mapped forms included). */
  readonly client: string;
  /** The authenticated consumer's name, or undefined when the request carries none. */
  readonly consumer: string | undefined;
  /** That consumer's groups; empty when none. */
  readonly groups: readonly string[];
  /** The HTTP method; `CONNECT` for HTTP tunnels and SOCKS CONNECT; `UDP` for SOCKS UDP ASSOCIATE datagrams. */
  readonly method: string;
  /** `http` (absolute-form `http://`, WebSocket `ws://` included), `https` (a CONNECT tunnel, HTTP or SOCKS, whatever runs inside), `udp` (SOCKS UDP). */
  readonly scheme: 'http' | 'https' | 'udp';
  /** The destination as the client wrote it: a name (lower-cased, no trailing dot) or an IP literal in any spelling (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

/** Why a destination was refused: the error code of the 403 (or SOCKS reply 0x02). */
export type RefusalCode = 'DESTINATION_FORBIDDEN' | 'PORT_FORBIDDEN' | 'DOMAIN_BLOCKED' | 'DESTINATION_UNRESOLVED';

/** The destination may be reached, at these addresses only. */
export interface Permit {
  readonly allowed: true;
  /** The rule that decided, for the access log: `rules[2]` (or its `name`), or `default`. */
  readonly rule: string;
  readonly host: string;
  readonly port: number;
  /** The checked addresses (canonical text, IPv4 as dotted quad), in the order to try them. Never empty. */
  readonly addresses: readonly string[];
}

/** The destination may not be reached. */
export interface Refusal {
  readonly allowed: false;
  /** The rule that decided: `rules[1]` (or its `name`), `default:port`, `default:private`, `default:loopback`, … */
  readonly rule: string;
  readonly code: RefusalCode;
  /** One line for the log and the error body's message (never contains credentials). */
  readonly reason: string;
}

export type Decision = Permit | Refusal;

/**
 * One listener's compiled rules (per generation: a reload compiles new ones; in-flight requests keep
 * theirs). Stateless apart from a DNS answer cache, which is per worker (answers are cheap to
 * repeat and expire by their TTL; sharing them would add a round trip to every lookup).
 */
export interface DestinationGuard {
  /** Decides for one destination; resolves the name when the rules need addresses. Never rejects. */
  check(ask: ForwardAsk): Promise<Decision>;
  /**
   * The same decision as `check`, at once, when it needs no lookup (an IP literal, or a rule or
   * default that decides before any); undefined when the name must be resolved (then `check`).
   * Lets the per-request path skip a promise for IP-literal destinations. Optional: without it,
   * every way in uses `check`.
   */
  decideNow?(ask: ForwardAsk): Decision | undefined;
  /** A TCP connection to one of `permit`'s addresses (tried in order). Rejects with the last error, or on `timeout` ms. */
  connect(permit: Permit, timeout: number, signal?: AbortSignal): Promise<Socket>;
}
