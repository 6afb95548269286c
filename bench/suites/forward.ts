// Suite `forward` (issue 15 §7): Switchboard's forward proxy (`protocol: forward`) against Squid,
// in one interleaved run of three tests:
//   http   plain-HTTP absolute-form requests (`GET http://127.0.0.1:<origin>/`), uncached: wrk
//          with a Lua script that sets the request-target once (no Lua per request);
//          req/s, p99, CPU us/req; target: Switchboard >= Squid's req/s per core
//   bulk   bytes/s through CONNECT tunnels into a sink (bench/tcp-origin.ts --mode=count), against
//          the layer-4 reference on the same sink: HAProxy `mode tcp` as the tcp suite runs it (and
//          Switchboard's own `protocol: tcp` listener); target: >= 0.9x HAProxy's MiB/s
//   rate   new tunnels per second: CONNECT, 200, one byte each way, close (tcp-origin --mode=byte)
// Before the load, every subject is checked: an absolute-form GET returns the origin's body, a
// CONNECT returns 200 and carries bytes both ways; one that fails is reported and not measured.
// Settings: BENCH_FORWARD_* (below); the general ones are their defaults (lib/env.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { envBytes, envList, envNumber, GENERAL_ROUNDS, suiteRounds } from '../lib/env.ts';
import { makeTcpClient, type LoadGen } from '../lib/loadgen.ts';
import { freePort } from '../lib/probes.ts';
import { isRunning, processTree, shuttingDown, sleep, spawnNodeChild, spawnToLog, stopProcess, tail, tmpDir } from '../lib/processes.ts';
import { errorMessage, fmt, heading, log, printTable } from '../lib/report.ts';
import { plannedSeconds, runRounds, type RoundResult, type RoundsPlan } from '../lib/rounds.ts';
import { summarize, type SubjectSummary } from '../lib/stats.ts';
import type { Suite, SuiteContext } from '../lib/suite.ts';
import {
  originBody,
  spawnSwitchboardCli,
  startHaproxyTcp,
  startOrigins,
  startSwitchboardTcp,
  stopAll,
  SWITCHBOARD_GRACE_MS,
  type Origin,
  type Started,
  type SubjectStatus,
  type TcpTargets,
} from '../lib/subjects.ts';
import { findExecutable, haproxyBin, versionOf } from '../lib/tools.ts';

// ---------------------------------------------------------------- settings

const {
  durationS: F_DURATION_S,
  rounds: F_ROUNDS,
  warmupS: F_WARMUP_S,
  firstWarmupS: F_FIRST_WARMUP_S,
  connections: F_CONNECTIONS,
} = suiteRounds('FORWARD', GENERAL_ROUNDS);
const F_TESTS = envList('BENCH_FORWARD_TESTS', ['http', 'bulk', 'rate']);
for (const t of F_TESTS) {
  if (t !== 'http' && t !== 'bulk' && t !== 'rate') throw new Error(`BENCH_FORWARD_TESTS: unknown test ${JSON.stringify(t)} (known: http, bulk, rate)`);
}
/** bulk: bytes per run, over BENCH_FORWARD_TUNNELS tunnels (the tcp suite's 1 GiB over 4 connections). */
const F_BYTES = envBytes('BENCH_FORWARD_BYTES', 2 ** 30);
const F_TUNNELS = envNumber('BENCH_FORWARD_TUNNELS', 4, true);
const F_RATE_CONCURRENCY = envNumber('BENCH_FORWARD_RATE_CONCURRENCY', 16, true);
/** Access logs of Switchboard and Squid: on (to files) by default, as in peers. */
const F_ACCESS_LOG = (process.env.BENCH_FORWARD_ACCESS_LOG ?? '1') !== '0';

const squidBin = findExecutable('squid');

type ForwardTest = 'http' | 'bulk' | 'rate';
/** The proxies and the layer-4 references (bulk only), in the order they start. */
const PROXIES = ['switchboard', 'squid', 'haproxy-tcp', 'switchboard-tcp'] as const;
type ProxyName = (typeof PROXIES)[number];
const LAYER4: readonly ProxyName[] = ['haproxy-tcp', 'switchboard-tcp'];

/** A started proxy: its port, or (layer-4 references) its listener into the sink. */
interface Proxy {
  started: Started;
  /** The forward proxies' listener. */
  port?: number;
  /** The layer-4 references' listeners. */
  targets?: TcpTargets;
  /** Squid's cache_log (its own log; its stdout and stderr are `started.logFile`), tailed when it fails. */
  cacheLog?: string;
}

// ---------------------------------------------------------------- probes

/** GET `target` (absolute-form) through the forward proxy at `port`. */
function proxyGet(port: number, target: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'GET', path: target, headers: { host: new URL(target).host }, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * One exchange on `port`: with `connect`, a CONNECT to that authority first (its 200 checked);
 * then `payload`, and `expected` back before the close.
 */
function tunnelProbe(port: number, connect: string | null, payload: string, expected: string, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = '';
    let open = connect === null;
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => sock.destroy(new Error(`timeout after ${timeoutMs} ms (got ${JSON.stringify(got.slice(0, 120))})`)), timeoutMs);
    sock.setEncoding('latin1');
    sock.once('connect', () => sock.write(connect === null ? payload : `CONNECT ${connect} HTTP/1.1\r\nHost: ${connect}\r\n\r\n`));
    sock.on('data', (d: string) => {
      got += d;
      if (open) return;
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = got.slice(0, got.indexOf('\r\n'));
      if (!/^HTTP\/1\.[01] 200\b/.test(status)) return void sock.destroy(new Error(`CONNECT ${connect}: ${JSON.stringify(status)}, not 200`));
      got = got.slice(end + 4);
      open = true;
      sock.write(payload);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once('close', (hadError) => {
      clearTimeout(timer);
      if (hadError) return;
      if (open && got === expected) resolve();
      else reject(new Error(`expected ${JSON.stringify(expected)} then the close, got ${JSON.stringify(got.slice(0, 120))}`));
    });
  });
}

/** Polls an absolute-form GET through the proxy until it answers 200 with `body`, the process dies, or the deadline passes. */
async function waitProxyReady(port: number, target: string, body: string, st: Started, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(st.proc)) throw new Error(`exited (code ${st.proc.exitCode}, signal ${st.proc.signalCode}) ${tail(st.logFile)}`);
    try {
      const r = await proxyGet(port, target);
      if (r.status === 200 && r.body === body) return;
      last = `HTTP ${r.status}, ${r.body.length}-byte body (expected 200 with the origin's ${body.length} bytes): ${JSON.stringify(r.body.slice(0, 120))}`;
    } catch (err) {
      last = errorMessage(err);
    }
    await sleep(100);
  }
  throw new Error(`no absolute-form GET ${target} through it answered the origin's body within ${timeoutMs} ms (${last}) ${tail(st.logFile)}`);
}

// ---------------------------------------------------------------- subjects

/** Switchboard, one process (`workers: 1`), a `protocol: forward` listener allowing 127.0.0.0/8 by a rule, as a user would; started with the CLI. */
async function startSwitchboardForward(name: string): Promise<Proxy> {
  const port = await freePort();
  const accessLog = F_ACCESS_LOG ? path.join(tmpDir, `${name}-access.log`) : undefined;
  const { cp, logFile } = spawnSwitchboardCli(
    name,
    `# generated by bench/run.ts (suite forward)
workers: 1
listeners:
  proxy:
    address: "127.0.0.1:${port}"
    protocol: forward
    forward:
      rules:
        - { action: allow, destinations: ["127.0.0.0/8"] }
`,
    accessLog ?? 'off',
  );
  return { port, started: { url: `http://127.0.0.1:${port}/`, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile, graceMs: SWITCHBOARD_GRACE_MS } };
}

/**
 * Squid in the foreground (-N: one process, no daemon) from a generated squid.conf in
 * <tmp>/<name>/: `workers 1`, caching off (`cache deny all`), localhost allowed (no
 * Safe_ports/SSL_ports rules: CONNECT to any port), access log to a file, pid, cache_log and
 * coredump_dir in that directory. The config is checked with `-k parse` first. Started as root,
 * Squid drops to its cache_effective_user, so the directory is opened to it.
 */
async function startSquid(name: string): Promise<Proxy> {
  const bin = squidBin as string;
  const dir = path.join(tmpDir, name);
  fs.mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0) {
    fs.chmodSync(tmpDir, 0o711);
    fs.chmodSync(dir, 0o777);
  }
  const port = await freePort();
  const conf = path.join(dir, 'squid.conf');
  const accessLog = F_ACCESS_LOG ? path.join(dir, 'access.log') : undefined;
  fs.writeFileSync(
    conf,
    `# generated by bench/run.ts (suite forward)
http_port 127.0.0.1:${port}
workers 1
visible_hostname switchboard-bench
pid_filename ${dir}/squid.pid
cache_log ${dir}/cache.log
coredump_dir ${dir}
access_log ${accessLog ? `stdio:${accessLog} squid` : 'none'}
cache_store_log none
cache deny all
cache_mem 8 MB
pinger_enable off
shutdown_lifetime 1 seconds
http_access allow localhost
http_access deny all
`,
  );
  const parse = spawnSync(bin, ['-k', 'parse', '-f', conf], { encoding: 'utf8', timeout: 15_000 });
  if (parse.status !== 0) {
    const out = `${parse.stdout ?? ''}${parse.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n    | ');
    throw new Error(`squid -k parse rejected ${conf} (exit ${parse.status}):\n    | ${out}`);
  }
  const logFile = path.join(tmpDir, `${name}.log`);
  const cp = spawnToLog(bin, ['-N', '-f', conf], logFile);
  const pid = cp.pid ?? 0;
  return {
    port,
    cacheLog: path.join(dir, 'cache.log'),
    started: { url: `http://127.0.0.1:${port}/`, pid, proc: cp, owned: true, accessLog, logFile, processes: () => processTree(pid) },
  };
}

// ---------------------------------------------------------------- the suite

interface ForwardTarget {
  name: string;
  value: number | null;
  target: string;
  met: boolean | null;
}

export interface ForwardReport {
  config: Record<string, unknown>;
  /** Each proxy / layer-4 reference: started and checked, skipped or failed (and why). */
  proxies: SubjectStatus[];
  /** The measured subjects: "<proxy> <http|bulk|rate>". */
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  /** As in the other suites; for bulk, rps is MiB/s, requests MiB, cpuUsPerReq CPU us per MiB (cpuSPerGiB added); for rate, per tunnel. */
  summary: (SubjectSummary & { cpuSPerGiB?: number | null })[];
  /** Which layer-4 run the bulk target compares with: haproxy-tcp, else switchboard-tcp. */
  layer4Reference: string | null;
  targets: ForwardTarget[];
  loadAverage: { start: number[]; end: number[] };
}

async function runForwardSuite({ loadgen }: SuiteContext): Promise<ForwardReport | null> {
  heading('forward: Switchboard forward proxy vs Squid (absolute-form HTTP, CONNECT tunnels)');
  const loadStart = os.loadavg();
  let tests = F_TESTS as ForwardTest[];
  if (tests.includes('http') && loadgen.name !== 'wrk') {
    console.log(`skipping test http: absolute-form requests need wrk (a Lua script sets the request-target); the load generator is ${loadgen.name}`);
    tests = tests.filter((t) => t !== 'http');
  }
  console.log(
    `  ${F_ROUNDS} round(s); each run preceded by a warm-up (${F_WARMUP_S}s, ${F_FIRST_WARMUP_S}s the first time); runs rotate through the subjects each round.`,
  );
  if (tests.includes('http')) {
    console.log(
      `  http: ${F_DURATION_S}s, wrk -t1 -c${F_CONNECTIONS}, every request \`GET http://127.0.0.1:<origin>/\` (absolute-form, Host: the origin), ` +
        'one bench/origin.ts origin (100-byte body); uncached (Squid: cache deny all; Switchboard: no cache policy).',
    );
  }
  if (tests.includes('bulk')) {
    console.log(
      `  bulk: ${fmt(F_BYTES / 2 ** 20, 0)} MiB in total over ${F_TUNNELS} tunnel(s) (CONNECT, then the bytes) into a sink (tcp-origin --mode=count: ` +
        'the byte count first, no half-close); layer-4 references: the same bytes through HAProxy mode tcp and a Switchboard tcp listener.',
    );
  }
  if (tests.includes('rate')) {
    console.log(`  rate: ${F_RATE_CONCURRENCY} loops x ${F_DURATION_S}s of connect, CONNECT, 200, one byte each way, close; latency = connect start to the byte back.`);
  }
  console.log(
    `  one process each: Switchboard workers: 1 (CLI), Squid -N workers 1; access log ${F_ACCESS_LOG ? 'ON (files)' : 'OFF'} for both (BENCH_FORWARD_ACCESS_LOG).`,
  );
  console.log(`  load average at start: ${loadStart.map((x) => x.toFixed(2)).join(' ')}\n`);

  const config = {
    rounds: F_ROUNDS,
    durationS: F_DURATION_S,
    warmupS: F_WARMUP_S,
    firstWarmupS: F_FIRST_WARMUP_S,
    tests,
    http: { connections: F_CONNECTIONS, loadgen: loadgen.name },
    bulk: { bytes: F_BYTES, tunnels: F_TUNNELS },
    rate: { concurrency: F_RATE_CONCURRENCY },
    accessLog: F_ACCESS_LOG,
    squid: squidBin ? versionOf(squidBin, ['-v']) : 'not installed',
  };

  const origins: Origin[] = [];
  const proxyStatus: SubjectStatus[] = [];
  const statuses: SubjectStatus[] = [];
  const proxies = new Map<ProxyName, Proxy>();
  const running = new Map<string, Started>();
  const runs = new Map<string, Started>();
  let rounds: RoundResult[] = [];
  try {
    const http0 = await startOrigins('forward-origin', [0]);
    origins.push(...http0);
    const body = await originBody(http0);
    const target = `${http0[0].url}/`;
    for (const mode of ['count', 'byte'] as const) {
      const { cp, port, logFile } = await spawnNodeChild('tcp-origin.ts', [`--mode=${mode}`], `forward-tcp-origin-${mode}`);
      origins.push({ url: `tcp://127.0.0.1:${port}`, port, proc: cp, logFile, delayMs: 0 });
    }
    const [, count, byte] = origins;
    log(`origins: http ${target} (pid ${http0[0].proc.pid}), count sink ${count.url} (pid ${count.proc.pid}), byte ${byte.url} (pid ${byte.proc.pid})`);
    const sinkAt = `127.0.0.1:${count.port}`;
    const byteAt = `127.0.0.1:${byte.port}`;
    const probeBytes = 65536;
    const framed = `${probeBytes}\n${'a'.repeat(probeBytes)}`;

    const starters: Record<ProxyName, { description: string; unavailable: string | null; start: () => Promise<Proxy> }> = {
      switchboard: {
        description: 'Switchboard, protocol: forward, workers: 1, a rule allowing 127.0.0.0/8; started with the CLI from a YAML config',
        unavailable: null,
        start: () => startSwitchboardForward('forward-switchboard'),
      },
      squid: {
        description: 'Squid -N, workers 1, cache deny all, http_access allow localhost, a generated squid.conf',
        unavailable: squidBin ? null : 'squid is not installed (apt-get install squid)',
        start: () => startSquid('forward-squid'),
      },
      'haproxy-tcp': {
        description: 'HAProxy mode tcp, nbthread 1, as in the tcp suite: the layer-4 reference for bulk',
        unavailable: !tests.includes('bulk') ? 'no bulk test' : haproxyBin ? null : 'haproxy is not installed (apt-get install haproxy)',
        start: async () => {
          const t = await startHaproxyTcp('forward-haproxy-tcp', 'forward', count.port, byte.port);
          return { targets: t, started: t.started };
        },
      },
      'switchboard-tcp': {
        description: 'Switchboard protocol: tcp listener, as in the tcp suite: our own layer-4 path, for bulk',
        unavailable: tests.includes('bulk') ? null : 'no bulk test',
        start: async () => {
          const t = await startSwitchboardTcp('forward-switchboard-tcp', 'forward', count.port, byte.port);
          return { targets: t, started: t.started };
        },
      },
    };
    for (const name of PROXIES) {
      if (shuttingDown) return null;
      const s = starters[name];
      if (s.unavailable) {
        if (tests.includes('bulk') || !LAYER4.includes(name)) console.log(`skipping ${name}: ${s.unavailable}`);
        proxyStatus.push({ name, description: s.description, status: 'skipped', reason: s.unavailable });
        continue;
      }
      let p: Proxy | null = null;
      try {
        p = await s.start();
        const st = p.started;
        if (p.port !== undefined) {
          // A forward proxy: the origin's body through an absolute-form GET, a CONNECT to each tcp origin.
          await waitProxyReady(p.port, target, body, st);
          await tunnelProbe(p.port, sinkAt, framed, `${probeBytes}\n`).catch((err: unknown) => {
            throw new Error(`CONNECT ${sinkAt} (64 KiB into the sink): ${errorMessage(err)}`);
          });
          await tunnelProbe(p.port, byteAt, 'x', 'x').catch((err: unknown) => {
            throw new Error(`CONNECT ${byteAt} (one byte each way): ${errorMessage(err)}`);
          });
        } else {
          await tunnelProbe(p.targets?.ports.bulk ?? 0, null, framed, `${probeBytes}\n`);
        }
        proxies.set(name, p);
        running.set(name, st);
        proxyStatus.push({ name, description: s.description, status: 'ok' });
        log(`started ${name}: ${p.port !== undefined ? `port ${p.port}` : `bulk port ${p.targets?.ports.bulk}`} (pid ${st.pid})`);
      } catch (err) {
        if (p) await stopProcess(p.started.proc, p.started.graceMs);
        const reason = `did not start or failed its check: ${errorMessage(err).trim()}${p?.cacheLog ? tail(p.cacheLog) : ''}`;
        console.log(`skipping ${name}: ${reason}`);
        proxyStatus.push({ name, description: s.description, status: 'failed', reason });
      }
    }
    if (!proxies.has('switchboard') && !proxies.has('squid')) throw new Error('neither switchboard nor squid could be started');

    // One measured subject per proxy and test: "<proxy> http", "<proxy> bulk", "<proxy> rate".
    const bulkThrough: LoadGen = makeTcpClient('bulk', F_BYTES, { connect: sinkAt, framed: true });
    const bulkDirect: LoadGen = makeTcpClient('bulk', F_BYTES, { framed: true });
    const rateThrough: LoadGen = makeTcpClient('rate', 0, { connect: byteAt });
    const order: string[] = [];
    for (const test of tests) {
      for (const name of PROXIES) {
        if (test !== 'bulk' && LAYER4.includes(name)) continue;
        const subject = `${name} ${test}`;
        const description = `${name}, ${test === 'http' ? 'absolute-form GET' : test === 'bulk' ? 'tunnel throughput' : 'new tunnels'}`;
        const p = proxies.get(name);
        if (!p) {
          statuses.push({ name: subject, description, status: 'skipped', reason: `${name} did not start` });
          continue;
        }
        const st = p.started;
        if (test === 'http') runs.set(subject, { ...st, load: { absoluteTarget: target } });
        else if (test === 'bulk') {
          const port = p.port ?? p.targets?.ports.bulk ?? 0;
          runs.set(subject, { ...st, url: `tcp://127.0.0.1:${port}`, loadgen: p.port !== undefined ? bulkThrough : bulkDirect, connections: F_TUNNELS });
        } else runs.set(subject, { ...st, url: `tcp://127.0.0.1:${p.port}`, loadgen: rateThrough, connections: F_RATE_CONCURRENCY });
        statuses.push({ name: subject, description, status: 'ok' });
        order.push(subject);
      }
    }
    const plan: RoundsPlan = {
      label: 'forward',
      rounds: F_ROUNDS,
      durationS: F_DURATION_S, // http and rate runs; bulk runs last as long as BENCH_FORWARD_BYTES takes
      warmupS: F_WARMUP_S,
      firstWarmupS: F_FIRST_WARMUP_S,
      connections: F_CONNECTIONS,
    };
    const bulkRuns = F_ROUNDS * order.filter((n) => n.endsWith(' bulk')).length;
    log(
      `\nforward: running ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan) - bulkRuns * F_DURATION_S)} s ` +
        `plus the time ${bulkRuns} bulk run(s) of ${fmt(F_BYTES / 2 ** 30, 2)} GiB take\n`,
    );
    rounds = await runRounds(loadgen, order, runs, statuses, plan);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;
  const loadEnd = os.loadavg();

  const names = tests.flatMap((test) => PROXIES.map((n) => `${n} ${test}`));
  const summary: ForwardReport['summary'] = summarize(names, rounds).map((s) =>
    s.subject.endsWith(' bulk') ? { ...s, cpuSPerGiB: s.cpuUsPerReq === null ? null : (s.cpuUsPerReq * 1024) / 1e6 } : s,
  );
  const by = (subject: string): ForwardReport['summary'][number] | undefined => summary.find((s) => s.subject === subject);
  const ofTest = (test: ForwardTest): ForwardReport['summary'] => summary.filter((s) => s.subject.endsWith(` ${test}`));

  if (tests.includes('http')) {
    console.log(`\nAbsolute-form HTTP, uncached (median of ${F_ROUNDS} round(s), ${F_DURATION_S}s each, ${F_CONNECTIONS} connections, wrk):\n`);
    printTable(
      ['subject', 'req/s', 'p50 ms', 'p99 ms', 'CPU %', 'CPU us/req', 'req/core-s', 'RSS MB', 'errors', 'rounds'],
      ofTest('http').map((s) => [
        s.subject,
        fmt(s.rps, 0),
        fmt(s.p50Ms, 2),
        fmt(s.p99Ms, 2),
        fmt(s.cpuPct, 0),
        fmt(s.cpuUsPerReq, 1),
        fmt(s.cpuUsPerReq ? 1e6 / s.cpuUsPerReq : null, 0),
        fmt(s.rssMB, 1),
        String(s.errors + s.non2xx),
        String(s.rounds),
      ]),
    );
    console.log('  CPU: the proxy\u2019s processes (user + system from /proc) during the measured runs; req/core-s = 1e6 / CPU us/req.');
  }
  if (tests.includes('bulk')) {
    console.log(`\nTunnel throughput (median of ${F_ROUNDS} round(s); ${fmt(F_BYTES / 2 ** 30, 2)} GiB over ${F_TUNNELS} connection(s) per run):\n`);
    printTable(
      ['subject', 'MiB/s', 'CPU s/GiB', 'CPU %', 'RSS MB', 'errors', 'rounds'],
      ofTest('bulk').map((s) => [s.subject, fmt(s.rps, 0), fmt(s.cpuSPerGiB, 3), fmt(s.cpuPct, 0), fmt(s.rssMB, 1), String(s.errors), String(s.rounds)]),
    );
    console.log('  MiB/s: bytes acknowledged by the sink / wall time from the first connect (and CONNECT) to the last acknowledgement.');
    console.log('  haproxy-tcp, switchboard-tcp: the same bytes over a layer-4 listener into the same sink (no CONNECT).');
  }
  if (tests.includes('rate')) {
    console.log(`\nNew tunnels (median of ${F_ROUNDS} round(s); ${F_RATE_CONCURRENCY} loops x ${F_DURATION_S}s):\n`);
    printTable(
      ['subject', 'tunnels/s', 'p50 ms', 'p99 ms', 'CPU us/tunnel', 'CPU %', 'RSS MB', 'errors', 'rounds'],
      ofTest('rate').map((s) => [
        s.subject,
        fmt(s.rps, 0),
        fmt(s.p50Ms, 3),
        fmt(s.p99Ms, 3),
        fmt(s.cpuUsPerReq, 1),
        fmt(s.cpuPct, 0),
        fmt(s.rssMB, 1),
        String(s.errors),
        String(s.rounds),
      ]),
    );
    console.log('  one tunnel: connect, CONNECT, 200, one byte each way, close; latency from the connect to the byte back.');
  }

  const targets: ForwardTarget[] = [];
  const judge = (name: string, value: number | null, target: string, ok: (v: number) => boolean, extra = ''): void => {
    const met = value === null || !Number.isFinite(value) ? null : ok(value);
    targets.push({ name, value, target, met });
    console.log(`${name.padEnd(52)} = ${fmt(value, 2)} (target ${target})${met === false ? '  BELOW TARGET' : met === null ? '  n/a' : ''}${extra}`);
  };
  const perCore = (a: SubjectSummary | undefined, b: SubjectSummary | undefined): number | null =>
    a?.cpuUsPerReq && b?.cpuUsPerReq ? b.cpuUsPerReq / a.cpuUsPerReq : null;
  console.log('');
  if (tests.includes('http')) {
    const sb = by('switchboard http');
    const sq = by('squid http');
    judge(
      'http: switchboard / squid req/s per core',
      perCore(sb, sq),
      '>= 1.00',
      (v) => v >= 1,
      sb && sq
        ? `   req/s = ${fmt(sb.rps / sq.rps, 2)}   p99 = ${fmt(sb.p99Ms / sq.p99Ms, 2)}   (CPU ${fmt(sb.cpuUsPerReq, 1)} vs ${fmt(sq.cpuUsPerReq, 1)} us/req)`
        : '',
    );
  }
  let layer4Reference: string | null = null;
  if (tests.includes('bulk')) {
    layer4Reference = by('haproxy-tcp bulk') ? 'haproxy-tcp' : by('switchboard-tcp bulk') ? 'switchboard-tcp' : null;
    const sb = by('switchboard bulk');
    const ref = layer4Reference ? by(`${layer4Reference} bulk`) : undefined;
    judge(
      `bulk: switchboard tunnel / ${layer4Reference ?? 'haproxy-tcp'} MiB/s`,
      sb && ref ? sb.rps / ref.rps : null,
      '>= 0.90',
      (v) => v >= 0.9,
      layer4Reference === 'switchboard-tcp' ? '   (haproxy did not run: against our own tcp listener)' : '',
    );
    const sq = by('squid bulk');
    const own = by('switchboard-tcp bulk');
    if (sb && sq)
      console.log(
        `${'bulk: switchboard / squid MiB/s'.padEnd(52)} = ${fmt(sb.rps / sq.rps, 2)} (no target)   CPU/GiB = ${fmt(sb.cpuUsPerReq && sq.cpuUsPerReq ? sb.cpuUsPerReq / sq.cpuUsPerReq : null, 2)}`,
      );
    if (sb && own && layer4Reference !== 'switchboard-tcp')
      console.log(`${'bulk: switchboard tunnel / switchboard-tcp MiB/s'.padEnd(52)} = ${fmt(sb.rps / own.rps, 2)} (no target)`);
  }
  if (tests.includes('rate')) {
    const sb = by('switchboard rate');
    const sq = by('squid rate');
    if (sb && sq) {
      console.log(
        `${'rate: switchboard / squid tunnels/s'.padEnd(52)} = ${fmt(sb.rps / sq.rps, 2)} (no target)   per core = ${fmt(perCore(sb, sq), 2)}   p99 = ${fmt(sb.p99Ms / sq.p99Ms, 2)}`,
      );
    }
  }
  for (const st of [...proxyStatus, ...statuses]) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  console.log(`  load average at end: ${loadEnd.map((x) => x.toFixed(2)).join(' ')}`);
  return { config, proxies: proxyStatus, subjects: statuses, rounds, summary, layer4Reference, targets, loadAverage: { start: loadStart, end: loadEnd } };
}

export const forwardSuite: Suite<ForwardReport> = { name: 'forward', run: runForwardSuite };
