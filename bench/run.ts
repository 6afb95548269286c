// Switchboard benchmark: `npm run bench` (node bench/run.ts). Not part of the tests.
//
// Suites (BENCH_SUITES=peers,policies,gateway,https,algorithms,slow,tcp,memory,workers,cache,static,forward, default all; or as arguments), run in this order:
//   peers         req/s, p50/p99 latency, RSS and CPU, measured interleaved in rounds, of:
//                   direct        one origin, no proxy
//                   switchboard   our gateway (bench/switchboard-child.ts), access log on
//                   node-minimal  ~30-line node:http + undici forwarder (bench/minimal-forwarder.ts), the floor of Node's overhead
//                   nginx         reverse proxy, 1 worker, upstream keepalive (when installed)
//                   haproxy       reverse proxy, 1 thread, http-reuse (when installed)
//   policies      what a route's policies cost: Switchboard without policies, with headers + ip-filter
//                 (10,000 CIDRs) + cors, and with a pass-through response-body filter, against each
//                 other and node-minimal, req/s and CPU us/request, interleaved in the same rounds
//   gateway       what API-gateway policies cost a route: api-key + rate-limit (memory state), jwt (cached
//                 token) + rate-limit (Redis state, a redis-server of its own), against the route without
//                 policies: req/s, CPU us/request, Redis round trips and redis-server CPU per request
//   https         Switchboard vs nginx terminating TLS over the same origins: HTTP/1.1 (wrk) and
//                 HTTP/2 (h2load), req/s and p99 as Switchboard/nginx ratios
//   algorithms    each Switchboard balancer's req/s against round robin (one child per balancer)
//   slow          p50/p99 of round-robin vs least-response-time (...) when one origin adds a delay
//   tcp           layer 4 (`protocol: tcp` listener): bulk MiB/s (1 GiB) and new connections/s with p99,
//                 Switchboard vs direct and HAProxy `mode tcp`, as ratios
//   memory        RSS of an idle process and per idle keep-alive connection (10,000), Switchboard vs bare node:http
//   workers       Switchboard `workers: 1` vs `workers: 2`, nginx `worker_processes` 1 vs 2, HAProxy `nbthread` 1 vs 2:
//                 req/s, p99, CPU us/req over every process, RSS per worker, the 2/1 ratios
//   cache         a `cache` hit vs the same route proxied, nginx proxy_cache and Varnish hits (one 1 KiB
//                 object): req/s, p99, CPU us/req, origin requests during the runs; targets hit CPU < proxy, >= 0.5x nginx
//   static        a static route vs nginx root, 1 KiB and 1 MiB files: req/s, MB/s, p99, CPU us/req
//   forward       the forward proxy (protocol: forward) vs Squid: absolute-form GETs uncached (req/s, p99, CPU
//                 us/req; target >= Squid per core), CONNECT tunnel MiB/s against HAProxy mode tcp (target
//                 >= 0.9x) and new tunnels/s
// See bench/README.md for the knobs (BENCH_DURATION, BENCH_ROUNDS, BENCH_POLICIES_*, BENCH_GATEWAY_*, BENCH_HTTPS_*, BENCH_H2_*, BENCH_ALGO_*, BENCH_SLOW_*, BENCH_TCP_*, BENCH_WORKERS_*, BENCH_FORWARD_*, ...).
//
// Layout: this file picks the suites, runs them, writes the results file and cleans up; each suite
// is a file in bench/suites/ (its settings, its run, its tables); what they share is in bench/lib/:
//   env.ts (paths, settings parsers, general settings), processes.ts (children, temp dir, /proc),
//   tools.ts (nginx, haproxy, h2load, openssl), loadgen.ts (wrk, autocannon, h2load, tcp-client),
//   probes.ts, subjects.ts (origins, Switchboard, node-minimal, nginx, haproxy), rounds.ts (runRounds),
//   stats.ts, report.ts, balancer-suite.ts (algorithms and slow), suite.ts (the Suite interface).
// A new suite: a file in bench/suites/ exporting a `Suite` (lib/suite.ts), and one line in SUITES below.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONNECTIONS, CPU_PROF_DIR, DURATION_S, envList, FIRST_WARMUP_S, ORIGIN_COUNT, RESULTS_DIR, ROUNDS, SUBJECT_FILTER, WARMUP_S } from './lib/env.ts';
import { pickLoadgen } from './lib/loadgen.ts';
import { beginShutdown, cleanup, killAllSync, liveCount, makeTmpDir, removeTmp, shuttingDown } from './lib/processes.ts';
import { errorMessage, log } from './lib/report.ts';
import type { Suite } from './lib/suite.ts';
import { originBodyBytes } from './lib/subjects.ts';
import { toolVersions } from './lib/tools.ts';
import { algorithmsSuite } from './suites/algorithms.ts';
import { cacheSuite } from './suites/cache.ts';
import { forwardSuite } from './suites/forward.ts';
import { gatewaySuite } from './suites/gateway.ts';
import { httpsSuite } from './suites/https.ts';
import { peersSuite } from './suites/peers.ts';
import { policiesSuite } from './suites/policies.ts';
import { slowSuite } from './suites/slow.ts';
import { staticSuite } from './suites/static.ts';
import { memorySuite } from './suites/memory.ts';
import { tcpSuite } from './suites/tcp.ts';
import { workersSuite } from './suites/workers.ts';

/** Every suite, in the order they run (whatever the order of BENCH_SUITES) and their reports appear in the results file. */
const SUITES: readonly Suite[] = [
  peersSuite,
  policiesSuite,
  gatewaySuite,
  httpsSuite,
  algorithmsSuite,
  slowSuite,
  tcpSuite,
  memorySuite,
  workersSuite,
  cacheSuite,
  staticSuite,
  forwardSuite,
];

const ALL_SUITES = SUITES.map((s) => s.name);
// `npm run bench -- memory peers` is the same as BENCH_SUITES=memory,peers.
const SELECTED = process.argv.length > 2 ? process.argv.slice(2) : envList('BENCH_SUITES', ALL_SUITES);
for (const s of SELECTED) {
  if (!ALL_SUITES.includes(s)) {
    throw new Error(`BENCH_SUITES: unknown suite ${JSON.stringify(s)} (known: ${ALL_SUITES.join(', ')})`);
  }
}

// ---------------------------------------------------------------- clean-up on exit and signals

process.on('exit', () => {
  killAllSync();
  removeTmp();
});
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  process.on(sig, () => {
    if (shuttingDown) {
      killAllSync();
      process.exit(code);
    }
    beginShutdown();
    log(`\n${sig} received: stopping ${liveCount()} child process(es)…`);
    void cleanup().finally(() => process.exit(code));
  });
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = new Date();
  makeTmpDir();
  if (CPU_PROF_DIR) fs.mkdirSync(CPU_PROF_DIR, { recursive: true });

  const loadgen = pickLoadgen();
  const versions: Record<string, string> = {
    node: process.version,
    loadgen: loadgen.version,
    ...toolVersions(),
  };

  console.log('Switchboard benchmark');
  console.log(`  suites: ${SELECTED.join(', ')} (BENCH_SUITES); load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''} (${loadgen.version})`);
  console.log(`  machine: ${os.cpus().length} core(s) (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}, node ${process.version}`);
  console.log('  note: load generator, origins and proxy share this machine\u2019s cores; compare ratios, not absolutes.');
  const load1 = os.loadavg()[0];
  console.log(
    `  load average (1 min) at start: ${load1.toFixed(2)}` +
      (load1 > os.cpus().length * 0.5 ? '  (!) other processes are busy on this machine; expect noisy results' : ''),
  );
  if (CPU_PROF_DIR) console.log(`  BENCH_CPU_PROF: Switchboard children write CPU profiles to ${CPU_PROF_DIR} (profiling slows them down)`);

  const errors: Record<string, string> = {};
  const reports = new Map<string, unknown>();
  for (const suite of SUITES) {
    if (!SELECTED.includes(suite.name) || shuttingDown) continue;
    try {
      reports.set(suite.name, await suite.run({ loadgen }));
    } catch (err) {
      if (shuttingDown) return;
      errors[suite.name] = errorMessage(err);
      console.log(`\nsuite ${suite.name} failed: ${errors[suite.name]}`);
    }
  }
  if (shuttingDown) return;

  // ---- JSON results (peers at the top level, as before; the other suites in their own keys)
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${startedAt.toISOString().replace(/:/g, '-')}.json`);
  const report: Record<string, unknown> = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    suites: SELECTED,
    suiteErrors: errors,
    config: {
      durationS: DURATION_S,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      warmupS: WARMUP_S,
      firstWarmupS: FIRST_WARMUP_S,
      origins: ORIGIN_COUNT,
      loadgen: loadgen.name,
      subjectsFilter: SUBJECT_FILTER,
      bodyBytes: originBodyBytes(),
      cpuProfDir: CPU_PROF_DIR || null,
    },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      totalMemMB: Math.round(os.totalmem() / 2 ** 20),
      platform: os.platform(),
      release: os.release(),
      versions,
    },
  };
  for (const suite of SUITES) {
    const r = reports.get(suite.name) ?? null;
    Object.assign(report, suite.results ? suite.results(r) : { [suite.name]: r });
  }
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nraw rounds and summary written to ${path.relative(process.cwd(), file)}`);
  if (Object.keys(errors).length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
} finally {
  if (!shuttingDown) await cleanup();
}
