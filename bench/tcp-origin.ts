// Benchmark TCP origin (suite `tcp`), run as its own child process. Prints {"port":N} on stdout once listening.
// Usage: node bench/tcp-origin.ts --mode=sink|byte
//   sink   reads and discards everything; when the client half-closes (FIN), answers the number of
//          bytes it received on that connection as decimal ASCII and a newline, then closes.
//          (bulk throughput: the client's clock stops when that answer arrives)
//   byte   waits for one byte, writes it back and closes (connection rate: one exchange per connection)
import net from 'node:net';

const arg = process.argv.slice(2);
const mode = /^--mode=(sink|byte)$/.exec(arg[0] ?? '')?.[1];
if (!mode || arg.length !== 1) {
  process.stderr.write(`tcp-origin: usage: --mode=sink|byte (got ${JSON.stringify(arg)})\n`);
  process.exit(2);
}

let connections = 0;
let bytesTotal = 0;

function sink(socket: net.Socket): void {
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  socket.on('end', () => {
    bytesTotal += received;
    socket.end(`${received}\n`);
  });
}

function byte(socket: net.Socket): void {
  socket.once('data', (chunk: Buffer) => {
    socket.end(chunk.subarray(0, 1));
  });
  // The client's FIN (after our close) needs no answer; with allowHalfOpen the socket would wait for it.
  socket.on('end', () => socket.end());
}

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
  connections++;
  socket.on('error', () => socket.destroy());
  if (mode === 'sink') sink(socket);
  else byte(socket);
});
server.maxConnections = 100_000;

server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid, mode })}\n`);
});

const shutdown = (): void => {
  process.stderr.write(`tcp-origin (${mode}): ${connections} connection(s), ${bytesTotal} byte(s) sunk\n`);
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
