/**
 * The proxy step for WebSocket upgrades (HTTP/1.1 Upgrade). Endpoints are chosen as in proxy.ts:
 * the sticky cookie's endpoint first, else `Upstream.pick` with the hash key and the endpoints
 * already tried; a 101 from another endpoint than the cookie named carries the new cookie. A try
 * that sent nothing (connect refused or timed out, TLS failed) is retried on an endpoint not tried
 * yet, within `retries.attempts` (the retry budget is not consulted); once the request head went
 * out nothing is retried. Then:
 *
 *   101 with the Upgrade asked for ─► Tunnel (registered with the listener), `switched` is called
 *   101 with another Upgrade        ─► 502 UPSTREAM_BAD_RESPONSE, close
 *   any other status                ─► relayed as a response, then close (no tunnel: EDGE-CASES 14)
 *   garbage / reset / no head in time ─► 502 UPSTREAM_BAD_RESPONSE / UPSTREAM_RESET / 504, close
 *
 * An endpoint counts the upgrade in `inFlight` from the dial until that connection closes: for a
 * tunnel, its whole life, so least-connections sees open WebSockets. Outlier detection records
 * connect failures, 5xx answers and broken answers as failures, like the HTTP path.
 */
import type { Socket } from 'node:net';
import type { Timeouts } from '../config/types.ts';
import type { RequestContext } from '../middleware/context.ts';
import { ERRORS, ProxyError, writeRawError, type ErrorCode } from '../transport/errors.ts';
import type { Tunnel, Tunnels } from '../transport/tunnel.ts';
import { dial, relayResponse, sendUpgrade, switchedHead, type UpgradeAnswer } from '../transport/upgrade-exchange.ts';
import { cookieValue } from '../util/request-values.ts';
import type { Endpoint } from './endpoint.ts';
import { forwardHeaders, hashKeyOf } from './proxy.ts';
import type { Upstream } from './upstream.ts';

/** What an upgrade needs of its route. */
export interface UpgradeTarget {
  readonly upstream: Upstream;
  /** `connect`, `responseHeaders` (for the 101) and `tunnelIdle` apply. */
  readonly timeouts: Timeouts;
}

/** What the listener lends an upgrade. */
export interface UpgradeSite {
  /** Where an open tunnel is kept (the listener destroys them at its hard deadline). */
  readonly tunnels: Tunnels;
  /** Largest answer head accepted from an endpoint, in bytes. */
  readonly maxHeaderSize: number;
}

/** Answers the client with one of Switchboard's errors and records it on the context. */
export function failUpgrade(ctx: RequestContext, client: Socket, code: ErrorCode, message?: string): void {
  ctx.error = code;
  ctx.status = ERRORS[code].status;
  ctx.bytesOut += writeRawError(client, code, ctx.requestId, message);
}

function codeOf(err: unknown): ErrorCode {
  return err instanceof ProxyError ? err.code : 'UPSTREAM_ERROR';
}

/**
 * Forwards the upgrade request in `ctx` (routed, `ctx.target` set) that arrived on `client`, with
 * `rest` the bytes read past its head. Every outcome but a 101 answers the client and closes it;
 * a 101 opens a tunnel in `site.tunnels` and calls `switched` with it. Sets the context's upstream,
 * endpoint, tries, status, error and upstream latency. Rejects only on a bug.
 */
export async function proxyUpgrade(
  ctx: RequestContext,
  target: UpgradeTarget,
  client: Socket,
  rest: Buffer,
  site: UpgradeSite,
  switched: (tunnel: Tunnel) => void,
): Promise<void> {
  const upstream = target.upstream;
  const req = ctx.req;
  ctx.upstream = upstream.name;
  const headers = forwardHeaders(ctx);
  if (headers === undefined) return failUpgrade(ctx, client, 'INVALID_HEADER_NAME');
  headers.push('connection', 'Upgrade', 'upgrade', req.headers.upgrade ?? '');
  const hashKey = upstream.hashes ? hashKeyOf(ctx, upstream.config) : undefined;
  const stickyId = upstream.sticky ? cookieValue(req.headers.cookie, upstream.sticky.cookie) : undefined;
  let tried: Endpoint[] | undefined;
  let conn: Socket | undefined;
  // The client leaving while we connect or wait for the answer cancels the try.
  const cancel = (): void => {
    conn?.destroy();
  };
  client.once('close', cancel);
  for (;;) {
    let endpoint = ctx.tries === 0 && stickyId !== undefined ? upstream.availableById(stickyId) : undefined;
    endpoint ??= upstream.pick(hashKey, tried);
    if (endpoint === undefined) return failUpgrade(ctx, client, 'NO_ENDPOINT');
    ctx.tries++;
    ctx.endpoint = endpoint;
    if (upstream.config.hostHeader === 'endpoint' || ctx.host === '') headers[1] = endpoint.host;
    const dialled = dial(endpoint, target.timeouts.connect);
    const state = endpoint.state;
    conn = dialled.socket;
    state.inFlight++;
    conn.once('close', () => {
      state.inFlight--;
    });
    try {
      await dialled.connected;
    } catch (err) {
      if (client.destroyed) return;
      upstream.state.record(state, true);
      (tried ??= []).push(endpoint);
      if (ctx.tries < upstream.config.retries.attempts && upstream.hasUntried(tried)) continue;
      return failUpgrade(ctx, client, codeOf(err));
    }
    if (client.destroyed) return cancel();
    const sentAt = performance.now();
    let answer: UpgradeAnswer;
    try {
      answer = await sendUpgrade(conn, {
        method: req.method ?? 'GET',
        target: ctx.target,
        headers,
        maxHeaderSize: site.maxHeaderSize,
        timeout: target.timeouts.responseHeaders,
      });
    } catch (err) {
      conn.destroy();
      if (client.destroyed) return;
      upstream.state.record(state, true);
      return failUpgrade(ctx, client, codeOf(err));
    }
    client.off('close', cancel);
    if (client.destroyed) return cancel();
    ctx.upstreamLatency = performance.now() - sentAt;
    const response = answer.response;
    if (!answer.switched) {
      upstream.state.record(state, (response.statusCode ?? 500) >= 500);
      return relayResponse(ctx, client, conn, response);
    }
    if (response.headers.upgrade?.toLowerCase() !== req.headers.upgrade?.toLowerCase()) {
      conn.destroy();
      upstream.state.record(state, true);
      return failUpgrade(ctx, client, 'UPSTREAM_BAD_RESPONSE', 'the endpoint switched to another protocol than the one asked for');
    }
    upstream.state.record(state, false);
    ctx.status = 101;
    const setCookie = upstream.sticky !== undefined && stickyId !== endpoint.id ? upstream.cookieFor(endpoint) : undefined;
    const heads = { answer: switchedHead(response, ctx.requestId, setCookie), upstreamRest: answer.rest, clientRest: rest };
    return switched(site.tunnels.open(client, conn, target.timeouts.tunnelIdle, heads));
  }
}
