// Benchmark origin: a tiny keep-alive HTTP server, run as its own child process.
// Answers every request with a fixed ~100-byte body. Prints {"port":N} on stdout once listening.
// Usage: node bench/origin.ts [--delay-ms=N] [--body-bytes=N] [--max-age=S]
//   --delay-ms=N    wait N ms (a timer, no CPU) before answering each request; default 0 (at once)
//   --body-bytes=N  answer an N-byte body instead (the fixed text repeated and cut; suite cache: 1024)
//   --max-age=S     add `Cache-Control: public, max-age=S` to that answer, so caches store it (suite cache)
// GET /__bench/stats answers {"requests":N} at once (never delayed, not counted), so the bench
// can see how a balancer spread the load; it is only ever asked directly, never through a proxy.
// GET /__bench/headers answers the request's headers as JSON (not counted): the policies suite
// asks it through Switchboard to check that a `headers` policy set the request header it should.
import http from 'node:http';

const TEXT = 'Hello from the Switchboard benchmark origin. This body is a fixed one hundred bytes long, padded:ok\n';

function parseArgs(argv: string[]): { delayMs: number; bodyBytes: number | null; maxAge: number | null } {
  const out: { delayMs: number; bodyBytes: number | null; maxAge: number | null } = { delayMs: 0, bodyBytes: null, maxAge: null };
  for (const a of argv) {
    const m = /^--(delay-ms|body-bytes|max-age)=(\d+(?:\.\d+)?)$/.exec(a);
    if (m?.[1] === 'delay-ms') out.delayMs = Number(m[2]);
    else if (m?.[1] === 'body-bytes' && Number.isInteger(Number(m[2]))) out.bodyBytes = Number(m[2]);
    else if (m?.[1] === 'max-age' && Number.isInteger(Number(m[2]))) out.maxAge = Number(m[2]);
    else {
      process.stderr.write(`origin: unknown argument ${JSON.stringify(a)}\n`);
      process.exit(2);
    }
  }
  return out;
}

const ARGS = parseArgs(process.argv.slice(2));
const DELAY_MS = ARGS.delayMs;
const BODY = ARGS.bodyBytes === null ? Buffer.from(TEXT) : Buffer.from(TEXT.repeat(Math.ceil(ARGS.bodyBytes / TEXT.length)).slice(0, ARGS.bodyBytes));
const HEAD: http.OutgoingHttpHeaders = { 'content-type': 'text/plain', 'content-length': BODY.length };
if (ARGS.maxAge !== null) HEAD['cache-control'] = `public, max-age=${ARGS.maxAge}`;
let requests = 0;

function answer(res: http.ServerResponse): void {
  res.writeHead(200, HEAD);
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
