/**
 * A program, not a module: a tiny origin that answers every request with its name, for tests that
 * run it in a namespace of their own (`node name-origin.ts <name> <host> <port>`). Prints
 * `listening <host>:<port>` when ready; exits when its stdin closes (the test that started it is gone).
 */
import http from 'node:http';

const [name = 'origin', host = '127.0.0.1', port = '9000'] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': name });
  res.end(name);
});
server.listen(Number(port), host, () => process.stdout.write(`listening ${host}:${port}\n`));
process.stdin.resume().on('end', () => process.exit(0));
