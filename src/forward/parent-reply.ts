/**
 * How a parent proxy answered a request for one destination address, as both handshakes
 * (http-connect-client.ts, socks5-client.ts) report it, and what parents.ts does about it.
 */

/**
 * - `refused`: the parent's own decision (HTTP 403, 407, other 4xx; SOCKS authentication failed,
 *   REP 1, 2, 7, 8): the connection fails, no other parent or address is tried.
 * - `unreachable`: the parent could not reach that address (HTTP 502, 503, 504; SOCKS REP 3-6):
 *   the permit's next address is asked of the same parent.
 * - `broken`: the parent did not answer as a proxy (connect failed, closed, malformed or late
 *   reply): the parent is marked down for a while and the next parent is tried.
 */
export type ParentFailureKind = 'refused' | 'unreachable' | 'broken';

/** A failed handshake with a parent; `message` never contains credentials. */
export class ParentReplyError extends Error {
  readonly failure: ParentFailureKind;

  constructor(failure: ParentFailureKind, message: string) {
    super(message);
    this.name = 'ParentReplyError';
    this.failure = failure;
  }
}
