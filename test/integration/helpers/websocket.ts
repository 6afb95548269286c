/** WebSocket origins and clients for integration tests (the `ws` package), on 127.0.0.1 port 0. */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import { WebSocket, WebSocketServer, type ClientOptions, type ServerOptions } from 'ws';
import { guard } from './guard.ts';

export interface WsOrigin {
  name: string;
  /** `http://127.0.0.1:port` (`https://` with `tls`), for the gateway's config. */
  url: string;
  wss: WebSocketServer;
  /** Upgrade requests that reached this origin, in order. */
  upgrades: http.IncomingMessage[];
  /** Plain requests that reached this origin, in order. */
  requests: http.IncomingMessage[];
  /** Resolves with the WebSocket this origin accepted for the upgrade carrying `x-request-id: id`. */
  socketFor(id: string): Promise<WebSocket>;
  close(): Promise<void>;
}

/**
 * An HTTP server with a `ws` WebSocketServer on it. Every WebSocket echoes what it gets (text stays
 * text, binary stays binary) unless `echo` is false; the 101 carries `x-origin: name`. Plain
 * requests get 200 `name` with `x-origin` (and a sticky cookie from the gateway, when asked).
 */
export async function startWsOrigin(name: string, opts: { echo?: boolean; ws?: ServerOptions; tls?: { cert: string; key: string } } = {}): Promise<WsOrigin> {
  const upgrades: http.IncomingMessage[] = [];
  const requests: http.IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const waiting = new Map<string, (ws: WebSocket) => void>();
  const accepted = new Map<string, WebSocket>();
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests.push(req);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': name });
    res.end(name);
  };
  const server = opts.tls ? https.createServer(opts.tls, answer) : http.createServer(answer);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.prependListener('upgrade', (req: http.IncomingMessage) => upgrades.push(req));
  const wss = new WebSocketServer({ server, ...opts.ws });
  wss.on('headers', (headers) => headers.push(`x-origin: ${name}`));
  wss.on('connection', (ws, req) => {
    if (opts.echo !== false) ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    const id = String(req.headers['x-request-id']);
    const w = waiting.get(id);
    waiting.delete(id);
    if (w) w(ws);
    else accepted.set(id, ws);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    wss,
    upgrades,
    requests,
    socketFor: (id) => {
      const ready = accepted.get(id);
      accepted.delete(id);
      return guard(ready ? Promise.resolve(ready) : new Promise<WebSocket>((resolve) => waiting.set(id, resolve)), `the WebSocket ${id} at origin ${name}`, 5000);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        wss.close();
        server.close(() => resolve());
      }),
  };
}

/** An origin that answers every connection's first bytes with `reply` (garbage, a wrong 101...). */
export async function startRawOrigin(reply: string): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.once('data', () => s.end(reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `ws://` for the gateway's `http://` base URL. */
export function wsUrl(base: string, path: string): string {
  return base.replace(/^http/, 'ws') + path;
}

export interface Opened {
  ws: WebSocket;
  /** The `x-origin` of the 101. */
  origin: string;
  headers: IncomingHttpHeaders;
}

/** Opens a WebSocket; rejects if the handshake fails. */
export function openWs(url: string, options?: ClientOptions): Promise<Opened> {
  const ws = new WebSocket(url, options);
  let headers: IncomingHttpHeaders = {};
  ws.once('upgrade', (res) => {
    headers = res.headers;
  });
  const opened = new Promise<Opened>((resolve, reject) => {
    ws.once('open', () => resolve({ ws, origin: String(headers['x-origin'] ?? ''), headers }));
    ws.once('error', reject);
  });
  return guard(opened, `WebSocket open ${url}`, 5000);
}

export interface Refusal {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Opens a WebSocket that must be refused: resolves with the non-101 answer the client got. */
export function refusedWs(url: string, options?: ClientOptions): Promise<Refusal> {
  const ws = new WebSocket(url, options);
  ws.on('error', () => undefined);
  const refused = new Promise<Refusal>((resolve, reject) => {
    ws.once('open', () => reject(new Error('the WebSocket opened')));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
  });
  return guard(refused, `a refused WebSocket at ${url}`, 5000);
}

/** The next message `ws` receives. */
export function nextMessage(ws: WebSocket, ms = 5000): Promise<{ data: Buffer; binary: boolean }> {
  return guard(new Promise((resolve) => ws.once('message', (data, binary) => resolve({ data: data as Buffer, binary }))), 'a WebSocket message', ms);
}

/** Resolves with the close code and reason once `ws` has closed. */
export function closedWs(ws: WebSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('already closed'));
  return guard(new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))), 'a WebSocket close', ms);
}

/** Checks `cond` every 10 ms until it holds; fails after `ms` saying `what` never happened. */
export function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  let over = false;
  const holds = new Promise<void>((resolve) => {
    const check = (): void => {
      if (over) return;
      if (cond()) resolve();
      else setTimeout(check, 10);
    };
    check();
  });
  return guard(holds, what, ms).finally(() => {
    over = true;
  });
}
