/**
 * WebSocket upgrades on an HTTP/1.1 listener (node:http's 'upgrade' event): the same edge checks and
 * routing as handleRequest, then the upgrade proxy step (upstream/upgrade-proxy.ts).
 *
 *   strict.ts checks, normalised path ──► 400 + close      httpsRedirect ──► 308 + close
 *   no route ──► 404 + close
 *   route ─► rewrite ─► proxyUpgrade ─► 101: tunnel open    other answers: relayed, then close
 *
 * The route's middleware chain does not run for upgrades (there are no policies yet): a policy
 * that must also guard WebSockets will need a hook here.
 *
 * Which upgrades come here: `isWebSocketUpgrade` is the server's `shouldUpgradeCallback`, so any
 * other Upgrade (h2c, an HTTP/1.0 request, a request with a body) is handled by handleRequest as a
 * plain request, its Upgrade header dropped as hop-by-hop. On Node older than 24.9 (no such
 * callback) they would arrive here and get a 400.
 *
 * A request counts in its config generation only until the endpoint has answered: an open tunnel
 * is registered with the listener instead, so a reload's drain does not wait for tunnels that may
 * last hours. The access log line is written when the client connection closes (status 101, bytes
 * both ways through the tunnel, total time the tunnel's life).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../middleware/context.ts';
import { normalizePath, rewritePath } from '../routing/path.ts';
import { requestEnd } from '../observability/events.ts';
import type { Tunnel } from '../transport/tunnel.ts';
import { failUpgrade, proxyUpgrade, type UpgradeSite } from '../upstream/upgrade-proxy.ts';
import { createContext, Facts, httpsLocation, type ListenerRuntime } from './http-handler.ts';
import { checkFraming, parseTarget } from './strict.ts';

export type { UpgradeSite };

/**
 * Whether `req` is a WebSocket opening handshake this listener tunnels: GET, HTTP/1.1, `Upgrade:
 * websocket` (any case), no request body. Called by node:http for requests whose parser saw
 * `Connection: upgrade` with an Upgrade header.
 */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const h = req.headers;
  return (
    req.method === 'GET' &&
    req.httpVersionMajor === 1 &&
    req.httpVersionMinor === 1 &&
    h.upgrade !== undefined &&
    h.upgrade.toLowerCase() === 'websocket' &&
    h['transfer-encoding'] === undefined &&
    (h['content-length'] === undefined || h['content-length'] === '0')
  );
}

/** One upgrade's bookkeeping: the generation it counts in, its tunnel, its single log line. */
class UpgradeCall {
  readonly rt: ListenerRuntime;
  readonly ctx: RequestContext;
  inGeneration = true;
  tunnel: Tunnel | undefined = undefined;

  constructor(rt: ListenerRuntime, ctx: RequestContext) {
    this.rt = rt;
    this.ctx = ctx;
  }

  /** The endpoint switched protocols: the tunnel now belongs to the listener, not the generation. */
  switched(tunnel: Tunnel): void {
    this.tunnel = tunnel;
    this.leave();
  }

  leave(): void {
    if (!this.inGeneration) return;
    this.inGeneration = false;
    this.rt.generation.leave();
  }

  /** The client connection closed: the request is over. */
  closed(): void {
    const ctx = this.ctx;
    if (this.tunnel !== undefined) {
      ctx.bytesIn = this.tunnel.bytesIn;
      ctx.bytesOut = this.tunnel.bytesOut;
    } else if (ctx.status === 0) {
      ctx.status = 499;
      ctx.error ??= 'CLIENT_CLOSED';
    }
    this.leave();
    this.rt.onRequestEnd(ctx);
    if (requestEnd.hasSubscribers) requestEnd.publish(ctx);
  }

  internalError(client: Socket, err: unknown): void {
    this.rt.onInternalError(this.ctx, err);
    this.ctx.error = 'INTERNAL_ERROR';
    if (this.ctx.status === 0) failUpgrade(this.ctx, client, 'INTERNAL_ERROR');
    else client.destroy();
  }
}

const ignore = (): void => undefined;

/** `httpsRedirect`: 308 to the same host, path and query over https, as handleRequest answers. */
function redirectToHttps(ctx: RequestContext, client: Socket, port: number, pathAndQuery: string): void {
  const location = httpsLocation(ctx.host, port, pathAndQuery);
  ctx.status = 308;
  if (!client.writable) return void client.destroy();
  client.end(`HTTP/1.1 308 Permanent Redirect\r\nlocation: ${location}\r\ncontent-length: 0\r\nx-request-id: ${ctx.requestId}\r\nconnection: close\r\n\r\n`, () => client.destroy());
}

/**
 * Handles one upgrade request arriving on `socket` with `head` (bytes read past its head) on `rt`.
 * Never throws: an unexpected error is reported to `rt.onInternalError` and closes the connection.
 */
export function handleUpgrade(rt: ListenerRuntime, req: IncomingMessage, socket: Duplex, head: Buffer, site: UpgradeSite): void {
  const startedAt = performance.now();
  if (!(socket instanceof Socket)) {
    socket.destroy();
    return;
  }
  // After an upgrade node:http no longer listens for errors on the socket; a reset must not throw.
  socket.on('error', ignore);
  rt.generation.enter();
  // The context's response is never written (the answer goes to the socket as raw bytes).
  const ctx = createContext(rt, req, new ServerResponse(req), socket, startedAt, false, false, req.headers.host ?? '');
  const call = new UpgradeCall(rt, ctx);
  socket.once('close', () => call.closed());
  try {
    if (!isWebSocketUpgrade(req)) return failUpgrade(ctx, socket, 'BAD_REQUEST', 'only WebSocket upgrades (GET, HTTP/1.1, Upgrade: websocket, no body) are proxied');
    const framing = checkFraming(req);
    if (framing !== undefined) return failUpgrade(ctx, socket, framing);
    const target = parseTarget(req.url ?? '', req.headers.host);
    if (typeof target === 'string') return failUpgrade(ctx, socket, target);
    if (rt.policy.httpsRedirect !== undefined) return redirectToHttps(ctx, socket, rt.policy.httpsRedirect, target.path + target.query);
    const path = normalizePath(target.path);
    if (path === undefined) return failUpgrade(ctx, socket, 'INVALID_TARGET');
    ctx.path = path;
    ctx.query = target.query;
    const route = rt.router.match(new Facts(ctx.host, req.method ?? 'GET', path, target.query, req.headers));
    if (route === undefined) return failUpgrade(ctx, socket, 'ROUTE_NOT_FOUND');
    ctx.route = route.name;
    ctx.target = rewritePath(path, route.config.rewrite) + target.query;
    proxyUpgrade(ctx, route, socket, head, site, (tunnel) => call.switched(tunnel)).catch((err: unknown) => call.internalError(socket, err));
  } catch (err) {
    call.internalError(socket, err);
  }
}
