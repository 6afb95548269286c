// Runs the Switchboard gateway in its own process for the benchmark.
// Usage: node bench/switchboard-child.ts '<json: {"origins":["http://127.0.0.1:A",...],"accessLog":"/tmp/x/access.log"}>'
// Prints {"port":N} on stdout once listening; stops cleanly on SIGTERM/SIGINT.
import { startGateway } from '../src/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as { origins?: string[]; accessLog?: string };
const origins = args.origins ?? [];
if (origins.length === 0) {
  process.stderr.write('switchboard-child: no origins given\n');
  process.exit(2);
}

const gw = await startGateway({
  config: {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { all: { match: { path: '/' }, upstream: 'origins' } },
    upstreams: {
      origins: { balancer: 'round-robin', endpoints: origins.map((url) => ({ url })) },
    },
  },
  accessLog: args.accessLog ?? 'off',
  logLevel: 'warn',
});

const { port } = gw.address('web');
process.stdout.write(JSON.stringify({ port, pid: process.pid }) + '\n');

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(1), 5_000);
  force.unref();
  gw.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`switchboard-child: stop failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
