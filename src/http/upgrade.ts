/**
 * WebSocket upgrades on an HTTP/1.1 listener (handed over by the own server, h1-server.ts): the same pipeline as
 * every request (edge checks, listener and route filters, routing), then the upgrade proxy step.
 * Endpoints are chosen by the one selection loop (upstream/selection.ts): the sticky cookie's
 * endpoint first, else the balancer with the hash key and the endpoints already tried; a try that
 * sent nothing (connect refused or timed out, TLS failed) is retried on another endpoint; once the
 * request head went out nothing is. Then:
 *
 *   101 with the Upgrade asked for ─► Tunnel (registered with the listener), the request leaves its generation
 *   101 with another Upgrade        ─► 502 UPSTREAM_BAD_RESPONSE, close
 *   any other status                ─► relayed as a response (response filters applied), then close
 *   garbage / reset / no head in time ─► 502 UPSTREAM_BAD_RESPONSE / UPSTREAM_RESET / 504, close
 *
 * An endpoint counts the upgrade in `inFlight` from the dial until that connection closes: for a
 * tunnel, its whole life, so least-connections sees open WebSockets. Outlier detection records
 * connect failures, 5xx answers and broken answers as failures, like the HTTP path. The access
 * log line is written when the client connection closes (status 101, bytes both ways through the
 * tunnel, total time the tunnel's life).
 *
 * Which upgrades come here: the own HTTP/1.1 server (h1-server.ts) hands over only heads that
 * `isWebSocketUpgrade` (h1-head.ts) takes; any other Upgrade (h2c, an HTTP/1.0 request, a request
 * with a body) is a plain request, its Upgrade header dropped as hop-by-hop.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ProxyError, type ErrorCode } from '../errors.ts';
import type { Tunnels } from '../transport/tunnel.ts';
import { dial, sendUpgrade, switchedHead, switchedHeaders, type UpgradeAnswer } from '../transport/upgrade-exchange.ts';
import { downstreamResponseHeaders } from '../transport/headers.ts';
import type { ListenerGeneration, ListenerRoute } from './listener-generation.ts';
import { type ForwardStep, runPipeline } from './pipeline.ts';
import { forwardHeaders, placeTraceHeaders, selectionFor, upstreamRequestHooks } from './proxy.ts';
import { FilteredResponse, fail, policyFailed, respond } from './respond.ts';
import type { Reply } from '../policies/filter.ts';
import { HeaderList } from './header-list.ts';
import type { RequestSession } from './session.ts';
import { WsDownstream } from './ws-downstream.ts';
import type { H1Head } from './h1-request.ts';

const ignore = (): void => undefined;

/**
 * Handles one WebSocket upgrade (a head `isWebSocketUpgrade` took, h1-server.ts) on its socket,
 * with `rest` (bytes read past its head). Never throws: an unexpected error is logged and closes the
 * connection. `step`: the last step (a forward listener passes its own, forward/websocket.ts).
 */
export function handleUpgrade(gen: ListenerGeneration, req: H1Head, rest: Buffer, tunnels: Tunnels, step: ForwardStep = proxyUpgrade): void {
  // The HTTP/1.1 server no longer listens for errors on the socket; a reset must not throw.
  req.socket.on('error', ignore);
  runPipeline(gen, new WsDownstream(req, req.socket, rest, tunnels, true), false, step);
}

function codeOf(err: unknown): ErrorCode {
  return err instanceof ProxyError ? err.code : 'UPSTREAM_ERROR';
}

/** The upgrade proxy step: dial, send the upgrade, and tunnel or relay the answer. Rejects only on a bug. */
async function proxyUpgrade(s: RequestSession, route: ListenerRoute): Promise<void> {
  const down = s.down as WsDownstream;
  const client = down.socket;
  const upstream = route.upstream!;
  s.upstream = upstream.name;
  const headers = forwardHeaders(s);
  if (headers === undefined) return fail(s, 'INVALID_HEADER_NAME');
  headers.push('connection', 'Upgrade', 'upgrade', down.headers.upgrade ?? '');
  const trace = s.trace;
  const traceAt = trace === undefined ? -1 : placeTraceHeaders(headers, trace);
  const selection = selectionFor(s, upstream);
  let conn: Socket | undefined;
  // The client leaving while we connect or wait for the answer cancels the try.
  const cancel = (): void => {
    conn?.destroy();
  };
  client.once('close', cancel);
  try {
    for (;;) {
      const endpoint = selection.next();
      if (endpoint === undefined) return fail(s, 'NO_ENDPOINT');
      s.tries = selection.tries;
      s.endpoint = endpoint;
      if (upstream.config.hostHeader === 'endpoint' || s.host === '') headers[1] = endpoint.host;
      let target = s.target;
      let sent = headers;
      if (traceAt >= 0) headers[traceAt] = trace!.startTry(endpoint.origin, selection.tries);
      if (s.chain.upstreamRequest.length > 0) {
        const head = upstreamRequestHooks(s, headers, target, endpoint.origin, selection.tries);
        if (head === undefined) return;
        sent = head.headers.raw;
        target = head.target;
      }
      const dialled = dial(endpoint, route.timeouts.connect);
      const state = endpoint.state;
      conn = dialled.socket;
      state.begin();
      conn.once('close', () => {
        state.end();
      });
      try {
        await dialled.connected;
      } catch (err) {
        trace?.endTry(0, codeOf(err));
        if (client.destroyed) return;
        upstream.state.record(state, true);
        if (selection.retry(endpoint, 'connect', { sent: false, committed: false, body: false, replayable: true })) continue;
        return fail(s, codeOf(err));
      }
      if (client.destroyed) return cancel();
      const sentAt = performance.now();
      let answer: UpgradeAnswer;
      try {
        answer = await sendUpgrade(conn, {
          method: down.method,
          target,
          headers: sent,
          maxHeaderSize: s.settings.maxHeaderSize,
          timeout: route.timeouts.responseHeaders,
        });
      } catch (err) {
        trace?.endTry(0, codeOf(err));
        conn.destroy();
        if (client.destroyed) return;
        upstream.state.record(state, true);
        return fail(s, codeOf(err));
      }
      client.off('close', cancel);
      if (client.destroyed) return cancel();
      s.upstreamLatency = performance.now() - sentAt;
      const response = answer.response;
      trace?.endTry(response.statusCode ?? 0, undefined);
      if (!answer.switched) {
        upstream.state.record(state, (response.statusCode ?? 500) >= 500);
        return relay(s, conn, response);
      }
      if (response.headers.upgrade?.toLowerCase() !== down.headers.upgrade?.toLowerCase()) {
        conn.destroy();
        upstream.state.record(state, true);
        return fail(s, 'UPSTREAM_BAD_RESPONSE', 'the endpoint switched to another protocol than the one asked for');
      }
      upstream.state.record(state, false);
      const setCookie = upstream.sticky !== undefined && selection.movedFromSticky(endpoint) ? upstream.cookieFor(endpoint) : undefined;
      const head = new HeaderList(switchedHeaders(response, s.requestId, setCookie));
      if (s.chain.response.length > 0 && !(await switchedHooks(s, head))) {
        conn.destroy();
        return;
      }
      if (client.destroyed) return cancel();
      s.status = 101;
      const heads = { answer: switchedHead(head.raw, response.headers.upgrade ?? ''), upstreamRest: answer.rest, clientRest: down.rest };
      s.tunnel = down.tunnels.open(client, conn, route.timeouts.tunnelIdle, heads);
      // An open tunnel is the listener's, not its generation's: a reload's drain does not wait for it.
      s.leaveGeneration();
      return;
    }
  } finally {
    selection.finish();
  }
}

/**
 * The response phase for a 101: the chain's onResponse hooks on its head (they may add headers).
 * A hook that answers instead (or fails) refuses the upgrade: its answer is sent and false
 * returned. Body hooks do not apply: a tunnel carries bytes only.
 */
export async function switchedHooks(s: RequestSession, headers: HeaderList): Promise<boolean> {
  const head = { status: 101, headers, fromUpstream: true };
  for (const placed of s.chain.response) {
    let reply: Reply | undefined;
    try {
      reply = await placed.filter.onResponse!(s, head);
    } catch (err) {
      policyFailed(s, placed, err);
      return false;
    }
    if (reply !== undefined) {
      respond(s, reply, placed.position);
      return false;
    }
  }
  return true;
}

/**
 * Relays a non-101 answer as a normal response (the response filters apply), then closes the
 * client connection (ws-downstream.ts frames it). The endpoint connection is destroyed once the
 * body is over; an endpoint that stops mid-body cuts the client too.
 */
export function relay(s: RequestSession, conn: Socket, response: IncomingMessage): void {
  const down = s.down as WsDownstream;
  const sink = s.chain.filtersResponse ? new FilteredResponse(s) : down;
  const headers = downstreamResponseHeaders(response.headersDistinct, s.requestId);
  const flow = { pause: () => response.pause(), resume: () => response.resume(), stop: () => conn.destroy() };
  if (!sink.head(response.statusCode ?? 502, response.statusMessage, headers, flow)) return;
  response.on('data', (chunk: Buffer) => {
    if (!sink.data(chunk)) {
      response.pause();
      sink.onDrain(() => response.resume());
    }
  });
  response.once('end', () => {
    sink.end(undefined);
    conn.destroy();
  });
  response.on('error', () => conn.destroy());
  conn.once('close', () => {
    if (!response.complete) sink.abort(new ProxyError('UPSTREAM_RESET'));
  });
  down.socket.once('close', () => conn.destroy());
}
