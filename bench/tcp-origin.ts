// Benchmark TCP origin (suites `tcp` and `forward`), run as its own child process. Prints {"port":N} on stdout once listening.
// Usage: node bench/tcp-origin.ts --mode=sink|count|byte
//   sink   reads and discards everything; when the client half-closes (FIN), answers the number of
//          bytes it received on that connection as decimal ASCII and a newline, then closes.
//          (bulk throughput: the client's clock stops when that answer arrives)
//   count  reads a byte count as decimal ASCII and a newline, then that many bytes (discarded);
//          answers the count as decimal ASCII and a newline, then closes. The sink without the
//          half-close: Squid closes a CONNECT tunnel on the client's FIN (suite `forward`).
//   byte   waits for one byte, writes it back and closes (connection rate: one exchange per connection)
import net from 'node:net';

const arg = process.argv.slice(2);
const mode = /^--mode=(sink|count|byte)$/.exec(arg[0] ?? '')?.[1];
if (!mode || arg.length !== 1) {
  process.stderr.write(`tcp-origin: usage: --mode=sink|count|byte (got ${JSON.stringify(arg)})\n`);
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

function count(socket: net.Socket): void {
  let head = '';
  let expected = -1;
  let received = 0;
  let answered = false;
  socket.on('data', (chunk: Buffer) => {
    if (expected < 0) {
      head += chunk.toString('latin1');
      const nl = head.indexOf('\n');
      if (nl < 0) {
        if (head.length > 32) socket.destroy();
        return;
      }
      expected = Number(head.slice(0, nl));
      if (!Number.isSafeInteger(expected) || expected < 0) return void socket.destroy();
      received = head.length - nl - 1;
      head = '';
    } else {
      received += chunk.length;
    }
    if (received >= expected && !answered) {
      answered = true;
      bytesTotal += received;
      socket.end(`${received}\n`);
    }
  });
  socket.on('end', () => socket.end());
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
  else if (mode === 'count') count(socket);
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
