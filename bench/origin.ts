// Benchmark origin: a tiny keep-alive HTTP server, run as its own child process.
// Answers every request with a fixed ~100-byte body. Prints {"port":N} on stdout once listening.
import http from 'node:http';

const BODY = Buffer.from(
  'Hello from the Switchboard benchmark origin. This body is a fixed one hundred bytes long, padded:ok\n',
);

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  process.stdout.write(JSON.stringify({ port, pid: process.pid, bodyBytes: BODY.length }) + '\n');
});

const shutdown = (): void => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
