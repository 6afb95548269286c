// The floor of Node's proxying overhead: node:http server + undici Pool per origin,
// round robin, response streamed straight through. No logging, no routing, no policy.
// Usage: node bench/minimal-forwarder.ts http://127.0.0.1:A http://127.0.0.1:B ...
// Prints {"port":N} on stdout once listening.
import http from 'node:http';
import { Pool } from 'undici';

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const strip = (h: http.IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> => {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
};

const pools = process.argv.slice(2).map((o) => new Pool(o, { connections: 128, keepAliveTimeout: 60_000 }));
let next = 0;

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const pool = pools[next++ % pools.length];
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool
    .stream({ path: req.url ?? '/', method: req.method as 'GET', headers: strip(req.headers), body: hasBody ? req : null }, ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers));
      return res;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0, pid: process.pid })}\n`);
});
const shutdown = (): void => {
  server.close();
  server.closeAllConnections();
  void Promise.all(pools.map((p) => p.destroy())).finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
