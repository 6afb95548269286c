// Runs the Switchboard gateway in its own process for the benchmark.
// Usage: node bench/switchboard-child.ts '<json>' where json is
//   {"origins":["http://127.0.0.1:A",...],   required
//    "accessLog":"/tmp/x/access.log",        optional, default off
//    "balancer":"round-robin",               optional, any upstream balancer name (default round-robin)
//    "hashKey":"header:x-user",              optional, consistent-hash's key
//    "weights":[3,1,1]}                      optional, one per origin (default: no weight, i.e. 1)
// Prints {"port":N} on stdout once listening; stops cleanly on SIGTERM/SIGINT.
import { startGateway } from '../src/index.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  origins?: string[];
  accessLog?: string;
  balancer?: string;
  hashKey?: string;
  weights?: number[];
};
const origins = args.origins ?? [];
if (origins.length === 0) {
  process.stderr.write('switchboard-child: no origins given\n');
  process.exit(2);
}
if (args.weights !== undefined && args.weights.length !== origins.length) {
  process.stderr.write(`switchboard-child: ${args.weights.length} weight(s) for ${origins.length} origin(s)\n`);
  process.exit(2);
}
const upstream: Record<string, unknown> = {
  balancer: args.balancer ?? 'round-robin',
  endpoints: origins.map((url, i) => (args.weights ? { url, weight: args.weights[i] } : { url })),
};
if (args.hashKey !== undefined) upstream.hashKey = args.hashKey;

const gw = await startGateway({
  config: {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { all: { match: { path: '/' }, upstream: 'origins' } },
    upstreams: { origins: upstream },
  },
  accessLog: args.accessLog ?? 'off',
  logLevel: 'warn',
});

const { port } = gw.address('web');
process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);

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
