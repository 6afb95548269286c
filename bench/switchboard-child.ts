// Runs the Switchboard gateway in its own process for the benchmark.
// Usage: node bench/switchboard-child.ts '<json>'   or   node bench/switchboard-child.ts @<file of json>
// (the @file form for arguments too long for one argv string, e.g. an ip-filter of 10,000 CIDRs), where json is
//   {"origins":["http://127.0.0.1:A",...],   required
//    "accessLog":"/tmp/x/access.log",        optional, default off
//    "balancer":"round-robin",               optional, any upstream balancer name (default round-robin)
//    "hashKey":"header:x-user",              optional, consistent-hash's key
//    "weights":[3,1,1],                      optional, one per origin (default: no weight, i.e. 1)
//    "policies":{"stamp":{"type":"headers",...}},   optional, the config's `policies` map
//    "routePolicies":["stamp",...],          optional, the route's `policies` list (names of `policies`)
//    "listener":{"keepAliveTimeout":"10m"},  optional, keys merged into the listener's config (the memory suite's long keep-alive)
//    "config":{"admin":{...},"tracing":{...}}, optional, top-level config sections added as they are
//    "passThroughType":"bench-pass-through"} optional: registers (registerPolicyType) a policy type of
//                                            that name, no keys, whose filter has only
//                                            `onResponseBody: () => undefined`, bodyUnchanged (every chunk passed on; Content-Length kept)
// Prints {"port":N} on stdout once listening; stops cleanly on SIGTERM/SIGINT.
import fs from 'node:fs';
import { z } from 'zod';
import { registerPolicyType, startGateway } from '../src/index.ts';

const raw = process.argv[2] ?? '{}';
const args = JSON.parse(raw.startsWith('@') ? fs.readFileSync(raw.slice(1), 'utf8') : raw) as {
  origins?: string[];
  accessLog?: string;
  balancer?: string;
  hashKey?: string;
  weights?: number[];
  policies?: Record<string, { type: string } & Record<string, unknown>>;
  routePolicies?: string[];
  passThroughType?: string;
  listener?: Record<string, unknown>;
  config?: Record<string, unknown>;
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

if (args.passThroughType !== undefined) {
  // The cheapest response-body filter there is: what the body phase itself costs a route.
  registerPolicyType({
    type: args.passThroughType,
    description: 'bench: a response-body filter that passes every chunk on unchanged',
    config: z.strictObject({}),
    create: () => ({ onResponseBody: () => undefined, bodyUnchanged: true }),
  });
}

const route: Record<string, unknown> = { match: { path: '/' }, upstream: 'origins' };
if (args.routePolicies !== undefined) route.policies = args.routePolicies;
const config: Record<string, unknown> = {
  listeners: { web: { ...args.listener, address: '127.0.0.1:0', protocol: 'http' } },
  routes: { all: route },
  upstreams: { origins: upstream },
};
if (args.policies !== undefined) config.policies = args.policies;
Object.assign(config, args.config);

const gw = await startGateway({
  config,
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
