/** Real origin servers for integration tests, on 127.0.0.1 port 0. */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Origin {
  name: string;
  url: string;
  port: number;
  server: http.Server;
  /** Requests this origin has received. */
  seen: http.IncomingMessage[];
  close(): Promise<void>;
}

export type OriginHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Echoes who answered and what arrived, as JSON. */
export function echo(name: string): OriginHandler {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({
        origin: name,
        method: req.method,
        url: req.url,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-origin': name });
      res.end(body);
    });
  };
}

export async function startOrigin(name: string, handler: OriginHandler = echo(name)): Promise<Origin> {
  const seen: http.IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, read, released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
