/**
 * WebSocket through the forward proxy without a tunnel: an absolute-form `GET http://host/ws` with
 * `Upgrade: websocket` (handed over by the own HTTP/1.1 server, http/upgrade.ts). The destination guard
 * checks `GET http host:port`, `guard.connect` opens the connection to a checked address, and the
 * upgrade goes out as the reverse proxy's does (transport/upgrade-exchange.ts): a 101 becomes a
 * Tunnel registered with the listener, any other answer is relayed and the connection closed.
 * WebSocket inside a CONNECT tunnel needs nothing here: the tunnel carries its bytes.
 */
import type { Socket } from 'node:net';
import { ProxyError, upstreamError } from '../errors.ts';
import { HeaderList } from '../http/header-list.ts';
import type { ListenerRoute } from '../http/listener-generation.ts';
import { fail } from '../http/respond.ts';
import type { RequestSession } from '../http/session.ts';
import { upstreamRequestHooks } from '../http/proxy.ts';
import { relay, switchedHooks } from '../http/upgrade.ts';
import type { WsDownstream } from '../http/ws-downstream.ts';
import { sendUpgrade, switchedHead, switchedHeaders, type UpgradeAnswer } from '../transport/upgrade-exchange.ts';
import { admitDestination } from './destination.ts';
import { addsVia, destinationHeaders, viaValue } from './forward-headers.ts';
import type { ForwardRoute } from './forward-route.ts';

/** The upgrade step of a forward listener. Rejects only on a bug. */
export async function forwardUpgrade(s: RequestSession, r: ListenerRoute): Promise<void> {
  const route = r as ForwardRoute;
  if (s.targetForm !== 'absolute') return fail(s, 'INVALID_TARGET', 'a WebSocket through this proxy needs an absolute-form ws target (GET http://host/path)');
  const permit = await admitDestination(s, route, 'websocket', 'http', 80);
  if (permit === undefined) return;
  const down = s.down as WsDownstream;
  const client = down.socket;
  const headers = destinationHeaders(s, route.forward);
  if (headers === undefined) return fail(s, 'INVALID_HEADER_NAME');
  headers.push('connection', 'Upgrade', 'upgrade', down.headers.upgrade ?? '');
  let conn: Socket;
  try {
    conn = await route.guard.connect(permit, route.timeouts.connect);
  } catch (err) {
    if (!s.over && !client.destroyed) fail(s, upstreamError(err as Error).code);
    return;
  }
  if (s.over || client.destroyed) return void conn.destroy();
  s.proxied!.address = conn.remoteAddress;
  let target = s.target;
  let sent = headers;
  if (s.chain.upstreamRequest.length > 0) {
    const head = upstreamRequestHooks(s, headers, target, `http://${conn.remoteAddress}:${permit.port}`, 1);
    if (head === undefined) return void conn.destroy();
    sent = head.headers.raw;
    target = head.target;
  }
  const cancel = (): void => {
    conn.destroy();
  };
  client.once('close', cancel);
  const sentAt = performance.now();
  let answer: UpgradeAnswer;
  try {
    answer = await sendUpgrade(conn, { method: 'GET', target, headers: sent, maxHeaderSize: s.settings.maxHeaderSize, timeout: route.timeouts.responseHeaders });
  } catch (err) {
    conn.destroy();
    if (!client.destroyed) fail(s, err instanceof ProxyError ? err.code : 'UPSTREAM_ERROR');
    return;
  }
  client.off('close', cancel);
  if (client.destroyed) return cancel();
  s.upstreamLatency = performance.now() - sentAt;
  const response = answer.response;
  if (!answer.switched) return relay(s, conn, response);
  if (response.headers.upgrade?.toLowerCase() !== down.headers.upgrade?.toLowerCase()) {
    conn.destroy();
    return fail(s, 'UPSTREAM_BAD_RESPONSE', 'the destination switched to another protocol than the one asked for');
  }
  const out = switchedHeaders(response, s.requestId, undefined);
  if (addsVia(route.forward)) out.push('via', viaValue(s.down.version, route.forward.via!));
  const head = new HeaderList(out);
  if (s.chain.response.length > 0 && !(await switchedHooks(s, head))) return void conn.destroy();
  if (client.destroyed) return cancel();
  s.status = 101;
  s.tunnel = down.tunnels.open(client, conn, route.timeouts.tunnelIdle, {
    answer: switchedHead(head.raw, response.headers.upgrade ?? ''),
    upstreamRest: answer.rest,
    clientRest: down.rest,
  });
  s.leaveGeneration();
}
