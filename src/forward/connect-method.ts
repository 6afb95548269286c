/**
 * CONNECT tunnels (RFC 9110 §9.3.6), over HTTP/1.1 and over an HTTP/2 stream (RFC 9113 §8.5):
 * after the listener's policies (a 407 applies to CONNECT too), the destination guard checks
 * `CONNECT https host:port`, `guard.connect` opens a TCP connection to one of the checked
 * addresses, and bytes are piped both ways until either side closes or the tunnel is idle for
 * `forward.tunnelIdleTimeout`.
 *
 *   HTTP/1.1  `200 Connection Established`, then the client socket and the destination spliced by
 *             a Tunnel (transport/tunnel.ts), registered with the listener like a WebSocket's
 *   HTTP/2    `:status 200` on the stream, then the stream's DATA piped to the destination and back;
 *             END_STREAM and FIN pass each way; a destination that fails resets the stream with
 *             CONNECT_ERROR
 *
 * Backpressure both ways is pipe()'s (a side that cannot take more pauses the other; HTTP/2 flow
 * control then holds the client), so a tunnel buffers at most a few high-water marks. The access
 * log line is written once, when the tunnel closes, with the bytes each way and its whole life.
 */
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { upstreamError } from '../errors.ts';
import { H2Downstream } from '../http/h2-downstream.ts';
import { fail } from '../http/respond.ts';
import type { RequestSession } from '../http/session.ts';
import { WsDownstream } from '../http/ws-downstream.ts';
import { admitDestination } from './destination.ts';
import type { ForwardRoute } from './forward-route.ts';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
const { NGHTTP2_CONNECT_ERROR } = http2.constants;

/** The forward step for a CONNECT request. Rejects only on a bug. */
export async function forwardConnect(s: RequestSession, route: ForwardRoute): Promise<void> {
  const permit = await admitDestination(s, route, 'connect', 'https', 443);
  if (permit === undefined) return;
  let conn: Socket;
  const connecting = performance.now();
  try {
    conn = await route.guard.connect(permit, route.timeouts.connect);
  } catch (err) {
    if (!s.over && !s.down.destroyed) fail(s, upstreamError(err as Error).code);
    return;
  }
  const down = s.down;
  if (s.over || down.destroyed) {
    conn.destroy();
    return;
  }
  s.proxied!.address = conn.remoteAddress;
  // For a tunnel, the time to connect to the destination.
  s.upstreamLatency = performance.now() - connecting;
  if (down instanceof WsDownstream) {
    s.status = 200;
    s.tunnel = down.tunnels.open(down.socket, conn, route.timeouts.tunnelIdle, { answer: ESTABLISHED, upstreamRest: EMPTY, clientRest: down.rest });
  } else if (down instanceof H2Downstream) h2Tunnel(s, down, conn, route.timeouts.tunnelIdle);
  else {
    conn.destroy();
    return fail(s, 'METHOD_NOT_ALLOWED');
  }
  // An open tunnel is the listener's, not its generation's: a reload's drain does not wait for it.
  s.leaveGeneration();
}

/** Splices an HTTP/2 CONNECT stream and the destination; counts the bytes into the session. */
function h2Tunnel(s: RequestSession, down: H2Downstream, conn: Socket, idle: number): void {
  const stream = down.stream;
  down.head(200, undefined, []);
  if (down.destroyed) {
    conn.destroy();
    return;
  }
  const cut = (): void => {
    conn.destroy();
    if (!stream.destroyed) stream.close(NGHTTP2_CONNECT_ERROR);
  };
  stream.on('data', (chunk: Buffer) => {
    s.bytesIn += chunk.length;
  });
  conn.on('data', (chunk: Buffer) => {
    s.bytesOut += chunk.length;
  });
  if (idle > 0) {
    stream.setTimeout(idle, cut);
    conn.setTimeout(idle, cut);
  }
  conn.on('error', cut);
  conn.once('close', (hadError) => {
    if (hadError) cut();
  });
  stream.once('close', () => conn.destroy());
  stream.pipe(conn);
  conn.pipe(stream);
}
