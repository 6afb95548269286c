// Benchmark origin: a tiny keep-alive HTTP server, run as its own child process.
// Answers every request with a fixed ~100-byte body. Prints {"port":N} on stdout once listening.
// Usage: node bench/origin.ts [--delay-ms=N]
//   --delay-ms=N   wait N ms (a timer, no CPU) before answering each request; default 0 (at once)
// GET /__bench/stats answers {"requests":N} at once (never delayed, not counted), so the bench
// can see how a balancer spread the load; it is only ever asked directly, never through a proxy.
// GET /__bench/headers answers the request's headers as JSON (not counted): the policies suite
// asks it through Switchboard to check that a `headers` policy set the request header it should.
import http from 'node:http';

const BODY = Buffer.from('Hello from the Switchboard benchmark origin. This body is a fixed one hundred bytes long, padded:ok\n');

function parseDelay(argv: string[]): number {
  for (const a of argv) {
    const m = /^--delay-ms=(\d+(?:\.\d+)?)$/.exec(a);
    if (m) return Number(m[1]);
    process.stderr.write(`origin: unknown argument ${JSON.stringify(a)}\n`);
    process.exit(2);
  }
  return 0;
}

const DELAY_MS = parseDelay(process.argv.slice(2));
let requests = 0;

function answer(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
}

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  req.resume();
  if (req.url === '/__bench/stats') {
    const body = JSON.stringify({ requests, delayMs: DELAY_MS });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (req.url === '/__bench/headers') {
    const body = JSON.stringify(req.headers);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  requests++;
  if (DELAY_MS > 0) setTimeout(answer, DELAY_MS, res);
  else answer(res);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid, bodyBytes: BODY.length, delayMs: DELAY_MS })}\n`);
});

const shutdown = (): void => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
