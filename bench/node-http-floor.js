// The floor of what Node itself costs per process and per idle keep-alive connection (the `memory`
// suite's `node-http`): a bare node:http server answering GET / with the origins' 100-byte body.
// Plain JavaScript, so that Node's type stripper is not loaded (about 20 MB; bench/memory-probe.js).
// Usage: node bench/node-http-floor.js. Prints {"port":N} on stdout once listening.
import http from 'node:http';

const BODY = Buffer.from('Hello from the Switchboard benchmark origin. This body is a fixed one hundred bytes long, padded:ok\n');

const server = http.createServer({ keepAliveTimeout: 600_000 }, (req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.headersTimeout = 601_000;

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr !== null ? addr.port : 0, pid: process.pid })}\n`);
});
const shutdown = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
