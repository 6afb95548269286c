// Switchboard benchmark: `npm run bench` (node bench/run.ts). Not part of the tests.
//
// Measures, interleaved in rounds, the req/s, p50/p99 latency, RSS and CPU of:
//   direct        one origin, no proxy
//   switchboard   our gateway (bench/switchboard-child.ts), access log on
//   node-minimal  ~30-line node:http + undici forwarder (bench/minimal-forwarder.ts), the floor of Node's overhead
//   nginx         reverse proxy, 1 worker, upstream keepalive (when installed)
//   haproxy       reverse proxy, 1 thread, http-reuse (when installed)
// More suites (BENCH_SUITES=peers,https,algorithms,slow,tcp, default all):
//   https         Switchboard vs nginx terminating TLS over the same origins: HTTP/1.1 (wrk) and
//                 HTTP/2 (h2load), req/s and p99 as Switchboard/nginx ratios
//   algorithms    each Switchboard balancer's req/s against round robin (one child per balancer)
//   slow          p50/p99 of round-robin vs least-response-time (...) when one origin adds a delay
//   tcp           layer 4 (`protocol: tcp` listener): bulk MiB/s (1 GiB) and new connections/s with p99,
//                 Switchboard vs direct and HAProxy `mode tcp`, as ratios
// See bench/README.md for the knobs (BENCH_DURATION, BENCH_ROUNDS, BENCH_HTTPS_*, BENCH_H2_*, BENCH_ALGO_*, BENCH_SLOW_*, BENCH_TCP_*, ...).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BALANCER_NAMES } from '../src/upstream/balancers/names.ts';
import { fileURLToPath } from 'node:url';
import { h2Get, makeBenchCerts, tlsHandshake, type BenchCerts, type Handshake } from './tls.ts';

// ---------------------------------------------------------------- configuration

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_DIR = path.resolve(BENCH_DIR, '..');
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const NODE = process.execPath; // the Node 24 running this script (node_modules/.bin/node under npm run)

function envNumber(name: string, fallback: number, integer: boolean, allowZero = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero) || (integer && !Number.isInteger(n))) {
    const what = `${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}`;
    throw new Error(`${name} must be a ${what}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

const DURATION_S = envNumber('BENCH_DURATION', 8, false);
const ROUNDS = envNumber('BENCH_ROUNDS', 3, true);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 64, true);
const WARMUP_S = envNumber('BENCH_WARMUP', 2, false);
/** The first warm-up of each subject is longer, so the JIT is hot before round 1 is measured. */
const FIRST_WARMUP_S = Math.max(WARMUP_S, envNumber('BENCH_FIRST_WARMUP', 5, false));
const ORIGIN_COUNT = envNumber('BENCH_ORIGINS', 2, true);
const SUBJECT_FILTER = (process.env.BENCH_SUBJECTS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const LOADGEN_PREF = (process.env.BENCH_LOADGEN ?? 'auto').trim();
const KEEP_TMP = process.env.BENCH_KEEP_TMP === '1';
/** When set, every Switchboard child runs with `--cpu-prof` and writes its profile into this directory. */
const CPU_PROF_DIR = (process.env.BENCH_CPU_PROF ?? '').trim() ? path.resolve(process.env.BENCH_CPU_PROF as string) : '';

function envList(name: string, fallback: readonly string[]): string[] {
  const raw = (process.env[name] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return raw.length > 0 ? raw : [...fallback];
}

const ALL_SUITES = ['peers', 'https', 'algorithms', 'slow', 'tcp'] as const;
type SuiteName = (typeof ALL_SUITES)[number];
const SUITES = envList('BENCH_SUITES', ALL_SUITES) as SuiteName[];
for (const s of SUITES) {
  if (!(ALL_SUITES as readonly string[]).includes(s)) {
    throw new Error(`BENCH_SUITES: unknown suite ${JSON.stringify(s)} (known: ${ALL_SUITES.join(', ')})`);
  }
}

// Suite `https`: Switchboard and nginx terminating TLS over the same origins, HTTP/1.1 and HTTP/2.
const HTTPS_DURATION_S = envNumber('BENCH_HTTPS_DURATION', DURATION_S, false);
const HTTPS_ROUNDS = envNumber('BENCH_HTTPS_ROUNDS', ROUNDS, true);
const HTTPS_WARMUP_S = envNumber('BENCH_HTTPS_WARMUP', WARMUP_S, false, true);
const HTTPS_FIRST_WARMUP_S = Math.max(HTTPS_WARMUP_S, envNumber('BENCH_HTTPS_FIRST_WARMUP', FIRST_WARMUP_S, false));
/** HTTP/1.1 over TLS: wrk's keep-alive connections (one request in flight on each). */
const HTTPS_CONNECTIONS = envNumber('BENCH_HTTPS_CONNECTIONS', CONNECTIONS, true);
/** HTTP/2: h2load's streams in flight per connection (-m). */
const H2_STREAMS = envNumber('BENCH_H2_STREAMS', 10, true);
/** HTTP/2: h2load's connections (-c); by default about as many requests in flight as HTTP/1.1 has. */
const H2_CONNECTIONS = envNumber('BENCH_H2_CONNECTIONS', Math.max(1, Math.round(HTTPS_CONNECTIONS / H2_STREAMS)), true);
const HTTPS_PROTOCOLS = envList('BENCH_HTTPS_PROTOCOLS', ['h1', 'h2']);
for (const p of HTTPS_PROTOCOLS) {
  if (p !== 'h1' && p !== 'h2') throw new Error(`BENCH_HTTPS_PROTOCOLS: unknown protocol ${JSON.stringify(p)} (known: h1, h2)`);
}

/** The balancers Switchboard accepts, in the order they are reported (round-robin, the baseline, first). */
const ALL_BALANCERS = BALANCER_NAMES;

function balancerList(name: string, fallback: readonly string[]): string[] {
  const list = envList(name, fallback);
  for (const b of list) {
    if (!(ALL_BALANCERS as readonly string[]).includes(b)) {
      throw new Error(`${name}: unknown balancer ${JSON.stringify(b)} (known: ${ALL_BALANCERS.join(', ')})`);
    }
  }
  // round-robin is the baseline of both suites: always measured, always first.
  return ['round-robin', ...list.filter((b, i) => b !== 'round-robin' && list.indexOf(b) === i)];
}

// Suite `algorithms`: each balancer's req/s against round robin.
// Every algorithm run is bracketed by two round-robin runs (see runRounds), so a round is
// 2 x (algorithms - 1) runs; the defaults keep the suite near 3 minutes. (wrk rounds durations
// up to whole seconds.)
const ALGO_DURATION_S = envNumber('BENCH_ALGO_DURATION', 2, false);
const ALGO_ROUNDS = envNumber('BENCH_ALGO_ROUNDS', 3, true);
const ALGO_WARMUP_S = envNumber('BENCH_ALGO_WARMUP', 1, false, true);
const ALGO_FIRST_WARMUP_S = Math.max(ALGO_WARMUP_S, envNumber('BENCH_ALGO_FIRST_WARMUP', 3, false));
const ALGO_CONNECTIONS = envNumber('BENCH_ALGO_CONNECTIONS', CONNECTIONS, true);
const ALGO_ORIGINS = envNumber('BENCH_ALGO_ORIGINS', 3, true);
const ALGO_BALANCERS = balancerList('BENCH_ALGORITHMS', ALL_BALANCERS);
const ALGO_MAX_COST_PCT = envNumber('BENCH_ALGO_MAX_COST', 5, false);
const ALGO_ACCESS_LOG = process.env.BENCH_ALGO_ACCESS_LOG === '1';
/**
 * A second round-robin child measured like the algorithms: its ratio shows what the method alone
 * (a child idle between its runs vs the baseline child that runs every other time) produces.
 */
const CONTROL_NAME = 'round-robin-copy';
const ALGO_CONTROL = (process.env.BENCH_ALGO_CONTROL ?? '1') !== '0';
/** weighted-round-robin's weights, origin by origin; origins beyond the list get 1. */
const WRR_WEIGHTS = envList('BENCH_WRR_WEIGHTS', ['3']).map((w) => {
  const n = Number(w);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`BENCH_WRR_WEIGHTS: ${JSON.stringify(w)} is not an integer 1-1000`);
  return n;
});
const HASH_KEY = (process.env.BENCH_HASH_KEY ?? 'header:x-user').trim();
if (HASH_KEY !== 'header:x-user' && HASH_KEY !== 'path') {
  throw new Error(`BENCH_HASH_KEY must be header:x-user or path, got ${JSON.stringify(HASH_KEY)}`);
}

// Suite `slow`: p99 over a fleet where one origin is slow.
const SLOW_DELAY_MS = envNumber('BENCH_SLOW_DELAY_MS', 20, false);
const SLOW_ORIGINS = envNumber('BENCH_SLOW_ORIGINS', 3, true);
const SLOW_CONNECTIONS = envNumber('BENCH_SLOW_CONNECTIONS', 32, true);
const SLOW_DURATION_S = envNumber('BENCH_SLOW_DURATION', 3, false);
const SLOW_ROUNDS = envNumber('BENCH_SLOW_ROUNDS', 3, true);
const SLOW_WARMUP_S = envNumber('BENCH_SLOW_WARMUP', 1, false, true);
const SLOW_FIRST_WARMUP_S = Math.max(SLOW_WARMUP_S, envNumber('BENCH_SLOW_FIRST_WARMUP', 2, false));
const SLOW_BALANCERS = balancerList('BENCH_SLOW_ALGORITHMS', [
  'round-robin',
  'least-response-time',
  'least-connections',
  'power-of-two',
]);
if (SLOW_ORIGINS < 2) throw new Error('BENCH_SLOW_ORIGINS must be at least 2 (one slow, the others fast)');

// Suite `tcp`: layer 4, bulk throughput and connection rate.
/** A byte count: an integer, or one with a KiB/MiB/GiB suffix ("1GiB", "256MiB"). */
function envBytes(name: string, fallback: number): number {
  const raw = (process.env[name] ?? '').trim();
  if (raw === '') return fallback;
  const m = /^(\d+(?:\.\d+)?)\s*(|B|KiB|MiB|GiB)$/i.exec(raw);
  const unit = { '': 1, b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 }[(m?.[2] ?? '').toLowerCase()];
  const n = m && unit ? Math.round(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive byte count (e.g. 1073741824, 256MiB, 1GiB), got ${JSON.stringify(raw)}`);
  return n;
}
const TCP_BYTES = envBytes('BENCH_TCP_BYTES', 2 ** 30);
const TCP_CONNECTIONS = envNumber('BENCH_TCP_CONNECTIONS', 4, true);
const TCP_RATE_DURATION_S = envNumber('BENCH_TCP_RATE_DURATION', 5, false);
const TCP_RATE_CONCURRENCY = envNumber('BENCH_TCP_RATE_CONCURRENCY', 16, true);
const TCP_ROUNDS = envNumber('BENCH_TCP_ROUNDS', 3, true);
const TCP_WARMUP_S = envNumber('BENCH_TCP_WARMUP', 1, false, true);
const TCP_FIRST_WARMUP_S = Math.max(TCP_WARMUP_S, envNumber('BENCH_TCP_FIRST_WARMUP', 2, false));
const TCP_TESTS = envList('BENCH_TCP_TESTS', ['bulk', 'rate']);
for (const t of TCP_TESTS) {
  if (t !== 'bulk' && t !== 'rate') throw new Error(`BENCH_TCP_TESTS: unknown test ${JSON.stringify(t)} (known: bulk, rate)`);
}

// ---------------------------------------------------------------- process bookkeeping

const live = new Map<number, ChildProcess>();

function track(cp: ChildProcess): ChildProcess {
  const pid = cp.pid;
  if (pid !== undefined) {
    live.set(pid, cp);
    cp.once('exit', () => live.delete(pid));
  }
  return cp;
}

function isRunning(cp: ChildProcess): boolean {
  return cp.exitCode === null && cp.signalCode === null;
}

async function stopProcess(cp: ChildProcess, graceMs = 3000): Promise<void> {
  if (cp.pid === undefined || !isRunning(cp)) return;
  const exited = new Promise<void>((resolve) => cp.once('exit', () => resolve()));
  try {
    process.kill(cp.pid, 'SIGTERM');
  } catch {
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut && isRunning(cp)) {
    try {
      process.kill(cp.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await Promise.race([exited, sleep(1000)]);
  }
}

function killAllSync(): void {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

let tmpDir = '';
let shuttingDown = false;

function removeTmp(): void {
  if (tmpDir && !KEEP_TMP) {
    try {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

async function cleanup(): Promise<void> {
  await Promise.all([...live.values()].map((cp) => stopProcess(cp, 2000)));
  killAllSync();
  removeTmp();
}

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
    shuttingDown = true;
    log(`\n${sig} received: stopping ${live.size} child process(es)…`);
    void cleanup().finally(() => process.exit(code));
  });
}

// ---------------------------------------------------------------- small helpers

function log(msg: string): void {
  process.stderr.write(msg + '\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The last lines of a child's log, formatted to follow an error message. */
function tail(file: string, lines = 8): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    if (!text) return '';
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .map((l) => `\n    | ${l}`)
      .join('');
  } catch {
    return '';
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Finds an executable on PATH, also looking in the sbin directories (nginx/haproxy live there). */
function findExecutable(name: string): string | null {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin']) {
    if (!dirs.includes(extra)) dirs.push(extra);
  }
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return null;
}

function versionOf(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

/** A port that was free a moment ago: bind 127.0.0.1:0, read it back, close. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

interface HttpProbe {
  status: number;
  body: string;
}

/** GET over HTTP/1.1; an https:// URL is verified against `ca` (the bench's throwaway CA). */
function httpGet(url: string, timeoutMs = 2000, ca?: string): Promise<HttpProbe> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req = url.startsWith('https:')
      ? https.get(url, { agent: false, timeout: timeoutMs, ca, servername: 'localhost' }, onResponse)
      : http.get(url, { agent: false, timeout: timeoutMs }, onResponse);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls `url` until it answers 200, the process dies, or the deadline passes. */
async function waitReady(url: string, cp: ChildProcess, logFile: string, timeoutMs = 10_000, ca?: string): Promise<HttpProbe> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(cp)) throw new Error(`exited (code ${cp.exitCode}, signal ${cp.signalCode}) ${tail(logFile)}`);
    try {
      const probe = await httpGet(url, 2000, ca);
      if (probe.status === 200) return probe;
      last = `HTTP ${probe.status}`;
    } catch (err) {
      last = errorMessage(err);
    }
    await sleep(100);
  }
  throw new Error(`not ready after ${timeoutMs} ms (${last}) ${tail(logFile)}`);
}

/**
 * Spawns a Node child that prints a JSON line with {"port": N} when listening.
 * stderr goes to a log file in the temp dir; stdout is drained after the port line.
 */
async function spawnNodeChild(
  script: string,
  args: string[],
  logName: string,
  timeoutMs = 15_000,
  execArgv: string[] = [],
): Promise<{ cp: ChildProcess; port: number; logFile: string }> {
  const logFile = path.join(tmpDir, `${logName}.log`);
  const errFd = fs.openSync(logFile, 'a');
  const cp = track(
    spawn(NODE, [...execArgv, path.join(BENCH_DIR, script), ...args], {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', errFd],
      env: { ...process.env, NODE_ENV: 'production' },
    }),
  );
  fs.closeSync(errFd);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      let done = false;
      const finish = (err: Error | null, p?: number): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        cp.stdout?.off('data', onData);
        cp.off('exit', onExit);
        cp.off('error', onError);
        cp.stdout?.resume(); // keep draining whatever else the child prints
        if (err) reject(err);
        else resolve(p ?? 0);
      };
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line.startsWith('{')) continue;
          try {
            const msg = JSON.parse(line) as { port?: unknown };
            if (typeof msg.port === 'number' && msg.port > 0) return finish(null, msg.port);
          } catch {
            /* not our line */
          }
        }
      };
      const onExit = (): void =>
        finish(new Error(`exited before listening (code ${cp.exitCode}, signal ${cp.signalCode}): ${tail(logFile)}`));
      const onError = (err: Error): void => finish(err);
      const timer = setTimeout(() => finish(new Error(`no port reported within ${timeoutMs} ms: ${tail(logFile)}`)), timeoutMs);
      cp.stdout?.on('data', onData);
      cp.once('exit', onExit);
      cp.once('error', onError);
    });
    return { cp, port, logFile };
  } catch (err) {
    await stopProcess(cp);
    throw err;
  }
}

// ---------------------------------------------------------------- /proc sampling (Linux)

function rssMB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** CPU seconds (user + system, all threads) consumed so far by `pid`. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- load generators

interface LoadResult {
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** Over TLS, when the load generator reports it (h2load): the negotiated application protocol (ALPN). */
  protocol?: string;
  /** Over TLS, when the load generator reports it (h2load): "TLSv1.3 TLS_AES_256_GCM_SHA384". */
  tls?: string;
  /** The first few error messages, when the load generator reports them (tcp-client). */
  problems?: string[];
}

/**
 * `varyKey`: give each request a different consistent-hash key: a random `x-user` header
 * (`header`) or a random path `/u/<n>` (`path`). wrk does it with a Lua script; autocannon's CLI
 * cannot, so it sends one fixed key (see `varyKeySupport`).
 */
interface RunOptions {
  varyKey?: 'header' | 'path';
  /** Set by runRounds on warm-up runs (a fixed-size load such as the tcp suite's 1 GiB runs for the warm-up's seconds instead). */
  warmup?: boolean;
}

interface LoadGen {
  name: string;
  version: string;
  /** How `varyKey` is honoured: 'random per request' or 'fixed key'. */
  varyKeySupport: string;
  /** What `rps` and `requests` count, for the log lines: default 'req/s' and 'req' (tcp bulk: 'MiB/s', 'MiB'). */
  rateUnit?: string;
  unit?: string;
  run(url: string, seconds: number, connections: number, opts?: RunOptions): Promise<LoadResult>;
}

function runCollect(bin: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const cp = track(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    cp.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    cp.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      if (cp.pid !== undefined && isRunning(cp)) process.kill(cp.pid, 'SIGKILL');
    }, timeoutMs);
    cp.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    cp.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function wrkDurationMs(value: string, unit: string): number {
  const n = Number(value);
  switch (unit) {
    case 'us':
      return n / 1000;
    case 'ms':
      return n;
    case 's':
      return n * 1000;
    case 'm':
      return n * 60_000;
    default:
      return Number.NaN;
  }
}

function parseWrk(out: string): LoadResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s*50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const p90 = /^\s*90%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`could not parse wrk output:\n${out}`);
  return {
    rps: Number(rps[1]),
    p50Ms: wrkDurationMs(p50[1], p50[2]),
    p90Ms: p90 ? wrkDurationMs(p90[1], p90[2]) : Number.NaN,
    p99Ms: wrkDurationMs(p99[1], p99[2]),
    requests: total ? Number(total[1]) : Number.NaN,
    errors: sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** A wrk Lua script giving every request a random key (LuaJIT, so it costs wrk little). */
function wrkKeyScript(kind: 'header' | 'path'): string {
  const file = path.join(tmpDir, `wrk-random-${kind}.lua`);
  if (!fs.existsSync(file)) {
    const body =
      kind === 'header'
        ? `  wrk.headers["x-user"] = "u" .. math.random(1, 1000000)\n  return wrk.format()\n`
        : `  return wrk.format(nil, "/u/" .. math.random(1, 1000000))\n`;
    fs.writeFileSync(file, `-- generated by bench/run.ts: a random ${kind === 'header' ? 'x-user header' : 'path'} per request\nmath.randomseed(os.time())\nrequest = function()\n${body}end\n`);
  }
  return file;
}

function makeWrk(bin: string): LoadGen {
  return {
    name: 'wrk',
    version: versionOf(bin, ['--version']),
    varyKeySupport: 'random per request (wrk Lua script)',
    async run(url, seconds, connections, opts) {
      // wrk takes whole seconds only: fractions are rounded up.
      seconds = Math.max(1, Math.ceil(seconds));
      const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
      if (opts?.varyKey) args.push('-s', wrkKeyScript(opts.varyKey));
      args.push(url);
      const r = await runCollect(bin, args, (seconds + 30) * 1000);
      if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      return parseWrk(r.stdout);
    },
  };
}

function makeAutocannon(): LoadGen | null {
  const cli = path.join(REPO_DIR, 'node_modules', 'autocannon', 'autocannon.js');
  if (!fs.existsSync(cli)) return null;
  let version = '';
  try {
    version = (JSON.parse(fs.readFileSync(path.join(REPO_DIR, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version?: string }).version ?? '';
  } catch {
    /* unknown */
  }
  return {
    name: 'autocannon',
    version: `autocannon ${version}`,
    varyKeySupport: 'fixed key (autocannon CLI: one x-user header / one path for all requests)',
    async run(url, seconds, connections, opts) {
      // Separate process, so the load generator never shares an event loop with a subject.
      const args = [cli, '-c', String(connections), '-d', String(seconds), '-j', '-n'];
      if (opts?.varyKey === 'header') args.push('-H', 'x-user=bench-fixed-user');
      args.push(opts?.varyKey === 'path' ? new URL('/u/fixed', url).href : url);
      const r = await runCollect(NODE, args, (seconds + 30) * 1000);
      const start = r.stdout.indexOf('{');
      if (r.code !== 0 || start < 0) throw new Error(`autocannon exited ${r.code}: ${r.stderr.trim().slice(-500)}`);
      const j = JSON.parse(r.stdout.slice(start)) as {
        duration: number;
        errors: number;
        timeouts: number;
        non2xx: number;
        latency: { p50: number; p90: number; p99: number };
        requests: { total: number; average: number };
      };
      return {
        rps: j.duration > 0 ? j.requests.total / j.duration : j.requests.average,
        p50Ms: j.latency.p50,
        p90Ms: j.latency.p90,
        p99Ms: j.latency.p99,
        requests: j.requests.total,
        errors: j.errors + j.timeouts,
        non2xx: j.non2xx,
      };
    },
  };
}

/** The value at quantile `q` (0-1) of ascending `sorted` (nearest rank). */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/**
 * h2load's summary plus percentiles from its --log-file (h2load itself prints only min/max/mean/sd
 * of the request times). `logText` has one line per request: start (us since epoch), status,
 * microseconds until the end of the response.
 */
function parseH2load(out: string, logText: string): LoadResult {
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out);
  const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!finished || !reqs || !codes) throw new Error(`could not parse h2load output:\n${out.slice(-2000)}`);
  const protocol = /^Application protocol: (\S+)/m.exec(out)?.[1];
  const tlsVersion = /^TLS Protocol: (\S+)/m.exec(out)?.[1];
  const cipher = /^Cipher: (\S+)/m.exec(out)?.[1];
  const done = Number(reqs[3]);
  if (done === 0) {
    throw new Error(
      `h2load completed no request (${protocol ? `application protocol ${protocol}` : 'no TLS session / connection established'}):\n` +
        out.trim().split('\n').slice(-12).join('\n'),
    );
  }
  const times: number[] = [];
  for (const line of logText.split('\n')) {
    const tab = line.lastIndexOf('\t');
    if (tab > 0) times.push(Number(line.slice(tab + 1)) / 1000);
  }
  const sorted = Float64Array.from(times.filter((t) => Number.isFinite(t))).sort();
  if (sorted.length === 0) throw new Error('h2load wrote no per-request times to its --log-file');
  return {
    rps: Number(finished[2]),
    p50Ms: quantile(sorted, 0.5),
    p90Ms: quantile(sorted, 0.9),
    p99Ms: quantile(sorted, 0.99),
    requests: Number(reqs[4]),
    errors: Number(reqs[5]),
    non2xx: Number(codes[3]) + Number(codes[4]),
    protocol,
    tls: tlsVersion ? `${tlsVersion}${cipher ? ` ${cipher}` : ''}` : undefined,
  };
}

/**
 * The TLS 1.3 cipher suites h2load offers, in OpenSSL's default client order (what wrk offers).
 * h2load's own default puts AES-128-GCM first; nginx follows the client's order, Node's TLS
 * server its own (tls.createServer defaults honorCipherOrder to true; AES-256-GCM first), so with
 * h2load's default the two proxies would run different ciphers. With this list both negotiate
 * TLS_AES_256_GCM_SHA384, as under wrk.
 */
const H2LOAD_TLS13_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

/**
 * h2load (nghttp2): HTTP/2 over TLS, `connections` connections (-c) with `streams` requests in
 * flight on each (-m), one thread like wrk -t1. It offers h2 then http/1.1 by ALPN, so a server
 * without h2 is silently measured over HTTP/1.1: `protocol` in the result says which it was.
 */
function makeH2load(bin: string, streams: number): LoadGen {
  return {
    name: 'h2load',
    version: versionOf(bin, ['--version']),
    varyKeySupport: 'not supported (h2load sends one fixed request)',
    async run(url, seconds, connections) {
      seconds = Math.max(1, Math.ceil(seconds)); // whole seconds, as with wrk
      const logFile = path.join(tmpDir, 'h2load-requests.log');
      fs.rmSync(logFile, { force: true });
      const args = ['-t1', `-c${connections}`, `-m${streams}`, `-D${seconds}`, `--tls13-ciphers=${H2LOAD_TLS13_CIPHERS}`, `--log-file=${logFile}`, url];
      const r = await runCollect(bin, args, (seconds + 30) * 1000);
      if (r.code !== 0) throw new Error(`h2load exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).slice(-1000)}`);
      let logText = '';
      try {
        logText = fs.readFileSync(logFile, 'utf8');
      } catch {
        /* parseH2load reports it */
      }
      fs.rmSync(logFile, { force: true });
      return parseH2load(r.stdout, logText);
    },
  };
}

// ---------------------------------------------------------------- subjects

interface Started {
  url: string;
  /** The process whose RSS/CPU is reported (the proxy; for `direct`, the origin). */
  pid: number;
  proc: ChildProcess;
  /** Stop it at the end; false for `direct` (the origin is stopped with the origins). */
  owned: boolean;
  accessLog?: string;
  logFile: string;
  /** How long stopProcess waits for a clean exit (longer when a CPU profile has to be written). */
  graceMs?: number;
  /** The CA its https:// URL is verified against (the https suite's throwaway CA). */
  ca?: string;
  /** Load this subject with another generator / connection count than the suite's (https: h2load for HTTP/2). */
  loadgen?: LoadGen;
  connections?: number;
}

interface Subject {
  name: string;
  description: string;
  /** Reason it cannot run here, or null. */
  unavailable(): string | null;
  start(origins: Origin[]): Promise<Started>;
}

interface Origin {
  url: string;
  port: number;
  proc: ChildProcess;
  logFile: string;
  /** Delay the origin adds to every response (bench/origin.ts --delay-ms), 0 = answers at once. */
  delayMs: number;
}

/** Starts one origin child per entry of `delaysMs` (0 = answers at once). */
async function startOrigins(prefix: string, delaysMs: number[]): Promise<Origin[]> {
  const origins: Origin[] = [];
  try {
    for (let i = 0; i < delaysMs.length; i++) {
      const args = delaysMs[i] > 0 ? [`--delay-ms=${delaysMs[i]}`] : [];
      const { cp, port, logFile } = await spawnNodeChild('origin.ts', args, `${prefix}-${i + 1}`);
      origins.push({ url: `http://127.0.0.1:${port}`, port, proc: cp, logFile, delayMs: delaysMs[i] });
    }
  } catch (err) {
    await Promise.all(origins.map((o) => stopProcess(o.proc)));
    throw err;
  }
  return origins;
}

/** Requests each origin has answered so far (its /__bench/stats), or null if one cannot say. */
async function originCounts(origins: Origin[]): Promise<number[] | null> {
  try {
    const probes = await Promise.all(origins.map((o) => httpGet(`${o.url}/__bench/stats`)));
    return probes.map((p) => (JSON.parse(p.body) as { requests: number }).requests);
  } catch {
    return null;
  }
}

interface SwitchboardOptions {
  balancer?: string;
  hashKey?: string;
  weights?: number[];
  accessLog: boolean;
}

/** Node flags that make a Switchboard child write a CPU profile named after `name` (BENCH_CPU_PROF), or none. */
function cpuProfArgv(name: string): string[] {
  return CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${name}.${process.pid}.cpuprofile`] : [];
}

/** Spawns `bin` with stdout and stderr appended to `logFile`, tracked for clean-up. */
function spawnToLog(bin: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const fd = fs.openSync(logFile, 'a');
  try {
    return track(spawn(bin, args, { cwd: REPO_DIR, stdio: ['ignore', fd, fd], env: env ?? process.env }));
  } finally {
    fs.closeSync(fd);
  }
}

/** A Switchboard child (bench/switchboard-child.ts) over `origins`, ready to serve. */
async function startSwitchboard(name: string, origins: Origin[], o: SwitchboardOptions): Promise<Started> {
  const accessLog = o.accessLog ? path.join(tmpDir, `${name}-access.log`) : undefined;
  const arg = JSON.stringify({
    origins: origins.map((x) => x.url),
    accessLog,
    balancer: o.balancer,
    hashKey: o.hashKey,
    weights: o.weights,
  });
  const { cp, port, logFile } = await spawnNodeChild('switchboard-child.ts', [arg], name, 15_000, cpuProfArgv(name));
  const url = `http://127.0.0.1:${port}/`;
  await waitReady(url, cp, logFile).catch(async (err: unknown) => {
    await stopProcess(cp);
    throw err;
  });
  return { url, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile, graceMs: CPU_PROF_DIR ? 30_000 : undefined };
}

/** Switchboard's YAML config for the https suite: one https listener on `port`, round robin over `origins`. */
function switchboardHttpsConfig(port: number, origins: Origin[], certs: BenchCerts): string {
  const q = (s: string): string => JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
  return `# generated by bench/run.ts (suite https)
listeners:
  secure:
    address: ${q(`127.0.0.1:${port}`)}
    protocol: https
    tls:
      certificates:
        - { cert: ${q(certs.cert)}, key: ${q(certs.key)} }
routes:
  all: { match: { path: "/" }, upstream: origins }
upstreams:
  origins:
    balancer: round-robin
    endpoints:
${origins.map((o) => `      - { url: ${q(o.url)} }`).join('\n')}
`;
}

/**
 * Switchboard terminating TLS (one https listener: ALPN h2 and http/1.1 by default) over
 * `origins`, round robin, access log on to a file, started from a YAML file with the CLI
 * (`switchboard start`), in one process like the peers suite's child. Fails with a clear message,
 * after at most 10 s, when this Switchboard rejects `protocol: https` or answers it in plain HTTP.
 */
async function startSwitchboardHttps(name: string, origins: Origin[], certs: BenchCerts): Promise<Started> {
  const port = await freePort();
  const conf = path.join(tmpDir, `${name}.yaml`);
  fs.writeFileSync(conf, switchboardHttpsConfig(port, origins, certs));
  const accessLog = path.join(tmpDir, `${name}-access.log`);
  const logFile = path.join(tmpDir, `${name}.log`);
  const cli = path.join(REPO_DIR, 'src', 'cli', 'main.ts');
  const args = [...cpuProfArgv(name), cli, '--log-level', 'warn', 'start', '-c', conf, '--access-log', accessLog, '--no-watch'];
  const cp = spawnToLog(NODE, args, logFile, { ...process.env, NODE_ENV: 'production' });
  const url = `https://127.0.0.1:${port}/`;
  try {
    await waitReady(url, cp, logFile, 10_000, certs.ca);
  } catch (err) {
    const running = isRunning(cp);
    const plain = running ? await httpGet(`http://127.0.0.1:${port}/`).catch(() => null) : null;
    await stopProcess(cp);
    if (plain) {
      throw new Error(
        `its https listener answered plain HTTP (HTTP ${plain.status}) instead of a TLS handshake: this Switchboard accepts ` +
          '`protocol: https` in its config but does not serve TLS yet',
      );
    }
    const hint = running ? '' : `\n    (does this Switchboard support \`protocol: https\`? check with: node src/cli/main.ts validate -c <config>; BENCH_KEEP_TMP=1 keeps ${conf})`;
    throw new Error(`${errorMessage(err)}${hint}`);
  }
  return { url, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile, graceMs: CPU_PROF_DIR ? 30_000 : undefined, ca: certs.ca };
}

const nginxBin = findExecutable('nginx');
const haproxyBin = findExecutable('haproxy');

function nginxSupportsDashE(versionLine: string): boolean {
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(versionLine);
  if (!m) return false;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 1 || (maj === 1 && (min > 19 || (min === 19 && patch >= 5)));
}

/**
 * nginx in one process (master_process off, one worker's worth of work: Node is single-threaded),
 * upstream keepalive, access log on, over `origins`. With `certs`, it terminates TLS on an
 * `ssl http2` listener (ALPN h2 and http/1.1) instead of listening in plain HTTP.
 * Its files go to <tmp>/<name>/ and its output to <tmp>/<name>.log.
 */
async function startNginx(name: string, origins: Origin[], certs?: BenchCerts): Promise<Started> {
  const bin = nginxBin as string;
  const dir = path.join(tmpDir, name);
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const accessLog = path.join(dir, 'access.log');
  const errorLog = path.join(dir, 'error.log');
  const conf = path.join(dir, 'nginx.conf');
  // nginx 1.22's `listen ... http2` syntax (1.25.1 moved it to an `http2 on;` directive, still
  // accepting this one with a warning). ssl_protocols: 1.22's default leaves TLSv1.3 out (added to
  // the default in 1.23.4), so it is set to what Switchboard negotiates (TLS 1.2 minimum, 1.3).
  const listen = certs
    ? `    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${certs.cert};
    ssl_certificate_key ${certs.key};
    ssl_protocols TLSv1.2 TLSv1.3;`
    : `    listen 127.0.0.1:${port};`;
  fs.writeFileSync(
    conf,
    `# generated by bench/run.ts
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 4096; }
http {
  access_log ${accessLog};
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 65s;
  keepalive_requests 10000000;
  upstream origins {
${origins.map((o) => `    server 127.0.0.1:${o.port};`).join('\n')}
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
${listen}
    location / {
      proxy_pass http://origins;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const logFile = path.join(tmpDir, `${name}.log`);
  const args = ['-p', `${dir}/`, '-c', conf];
  if (nginxSupportsDashE(versionOf(bin, ['-v']))) args.push('-e', errorLog);
  const cp = spawnToLog(bin, args, logFile);
  const url = `${certs ? 'https' : 'http'}://127.0.0.1:${port}/`;
  try {
    await waitReady(url, cp, logFile, 10_000, certs?.ca);
  } catch (err) {
    await stopProcess(cp);
    throw new Error(`${errorMessage(err)} ${tail(errorLog)}`);
  }
  return { url, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile, ca: certs?.ca };
}

/**
 * HAProxy in the foreground (-db) with `config` written to <tmp>/<name>.cfg; its stdout (where a
 * `log stdout` access log goes) to <tmp>/<name>-access.log, its stderr to <tmp>/<name>.log.
 */
function spawnHaproxy(name: string, config: string): { cp: ChildProcess; accessLog: string; logFile: string } {
  const conf = path.join(tmpDir, `${name}.cfg`);
  fs.writeFileSync(conf, config);
  const accessLog = path.join(tmpDir, `${name}-access.log`);
  const logFile = path.join(tmpDir, `${name}.log`);
  const outFd = fs.openSync(accessLog, 'a');
  const errFd = fs.openSync(logFile, 'a');
  try {
    return { cp: track(spawn(haproxyBin as string, ['-db', '-f', conf], { stdio: ['ignore', outFd, errFd] })), accessLog, logFile };
  } finally {
    fs.closeSync(outFd);
    fs.closeSync(errFd);
  }
}

const subjects: Subject[] = [
  {
    name: 'direct',
    description: 'one origin hit directly, no proxy (upper bound; RSS/CPU are the origin\u2019s)',
    unavailable: () => null,
    async start(origins) {
      const o = origins[0];
      return { url: `${o.url}/`, pid: o.proc.pid ?? 0, proc: o.proc, owned: false, logFile: o.logFile };
    },
  },
  {
    name: 'switchboard',
    description: 'Switchboard gateway (src/index.ts startGateway), round robin, access log ON to a file',
    unavailable: () =>
      fs.existsSync(path.join(REPO_DIR, 'src', 'index.ts')) ? null : 'src/index.ts not found (programmatic API not written yet)',
    async start(origins) {
      return startSwitchboard('switchboard', origins, { balancer: 'round-robin', accessLog: true });
    },
  },
  {
    name: 'node-minimal',
    description: 'minimal node:http + undici Pool forwarder, round robin, no logging (Node\u2019s floor)',
    unavailable: () => null,
    async start(origins) {
      const { cp, port, logFile } = await spawnNodeChild(
        'minimal-forwarder.ts',
        origins.map((o) => o.url),
        'node-minimal',
      );
      return { url: `http://127.0.0.1:${port}/`, pid: cp.pid ?? 0, proc: cp, owned: true, logFile };
    },
  },
  {
    name: 'nginx',
    description: 'nginx, 1 process (master_process off), upstream keepalive, access log ON to a file',
    unavailable: () => (nginxBin ? null : 'nginx is not installed'),
    start: (origins) => startNginx('nginx', origins),
  },
  {
    name: 'haproxy',
    description: 'HAProxy, mode http, nbthread 1, http-reuse always, access log ON (stdout to a file)',
    unavailable: () => (haproxyBin ? null : 'haproxy is not installed'),
    async start(origins) {
      const port = await freePort();
      const { cp, accessLog, logFile } = spawnHaproxy(
        'haproxy',
        `# generated by bench/run.ts
global
  nbthread 1
  maxconn 4096
  log stdout format raw local0 info

defaults
  mode http
  log global
  option httplog
  option http-keep-alive
  timeout connect 5s
  timeout client 65s
  timeout server 65s
  timeout http-keep-alive 65s
  http-reuse always

frontend web
  bind 127.0.0.1:${port}
  default_backend origins

backend origins
  balance roundrobin
${origins.map((o, i) => `  server o${i + 1} 127.0.0.1:${o.port}`).join('\n')}
`,
      );
      const url = `http://127.0.0.1:${port}/`;
      try {
        await waitReady(url, cp, logFile);
      } catch (err) {
        await stopProcess(cp);
        throw err;
      }
      return { url, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile };
    },
  },
];

// ---------------------------------------------------------------- reporting

interface RoundResult extends LoadResult {
  round: number;
  /** Position in the order the runs were made (0-based, across rounds). */
  seq: number;
  subject: string;
  rssMB: number | null;
  cpuPct: number | null;
  /** CPU time of the measured process per request answered, in microseconds (robust to a busy machine). */
  cpuUsPerReq: number | null;
  accessLogBytes: number | null;
  /** Share (0-1) of the measured run's requests each origin answered, in origin order, when known. */
  originShares?: number[];
  /**
   * Bracketed runs only: this run against the mean of the baseline runs just before and just after
   * it (for a baseline run: its previous and next baseline runs, an A/A check of the noise).
   */
  vsBaseline?: { rps: number; cpuUsPerReq: number | null };
  startedAt: string;
}

interface SubjectSummary {
  subject: string;
  rounds: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  rssMB: number | null;
  cpuPct: number | null;
  cpuUsPerReq: number | null;
  errors: number;
  non2xx: number;
  /** Median share (0-1) of requests per origin, in origin order; absent when not measured. */
  originShares?: number[];
}

interface SubjectStatus {
  name: string;
  description: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
}

function fmt(n: number | null | undefined, digits: number): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

function heading(title: string): void {
  console.log(`\n${'='.repeat(8)} ${title} ${'='.repeat(Math.max(8, 72 - title.length))}\n`);
}

/** "34/33/33": per-origin shares in percent. */
function fmtShares(shares: number[] | undefined): string {
  return shares && shares.length > 0 ? shares.map((x) => (x * 100).toFixed(0)).join('/') : '-';
}

// ---------------------------------------------------------------- running subjects in rounds

interface RoundsPlan {
  /** Label of the log lines. */
  label: string;
  rounds: number;
  durationS: number;
  warmupS: number;
  firstWarmupS: number;
  connections: number;
  load?: RunOptions;
  /** Origins whose request counters give each run's per-origin shares. */
  origins?: Origin[];
  /**
   * Bracketing: this subject runs before the first other subject and after every other subject,
   * so each other run sits between two baseline runs, seconds apart; see `pairWithBaseline`.
   */
  baseline?: string;
}

/** The subjects of one round: `order` rotated by the round, bracketed by the baseline when set. */
function roundOrder(order: string[], round: number, baseline: string | undefined): string[] {
  const others = baseline === undefined ? order : order.filter((n) => n !== baseline);
  const shift = others.length > 0 ? (round - 1) % others.length : 0;
  const rotated = [...others.slice(shift), ...others.slice(0, shift)];
  if (baseline === undefined || !order.includes(baseline)) return rotated;
  const seq = round === 1 ? [baseline] : [];
  for (const n of rotated) seq.push(n, baseline);
  return seq;
}

/** Seconds `runRounds` will take for `n` subjects (load only; start-up not counted). */
function plannedSeconds(order: string[], p: RoundsPlan): number {
  let total = 0;
  const warmed = new Set<string>();
  for (let round = 1; round <= p.rounds; round++) {
    for (const n of roundOrder(order, round, p.baseline)) {
      total += p.durationS + (warmed.has(n) ? p.warmupS : p.firstWarmupS);
      warmed.add(n);
    }
  }
  return total;
}

/**
 * For bracketed runs (`plan.baseline`): sets each run's `vsBaseline`, its req/s and CPU/request
 * over the mean of the nearest baseline run before and after it (either alone at the ends).
 * Comparing runs made seconds apart cancels most of the drift a shared, busy machine causes.
 */
function pairWithBaseline(rounds: RoundResult[], baseline: string): void {
  const runs = [...rounds].sort((a, b) => a.seq - b.seq);
  const base = runs.filter((r) => r.subject === baseline);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const r of runs) {
    const before = base.filter((b) => b.seq < r.seq).at(-1);
    const after = base.find((b) => b.seq > r.seq);
    const refs = [before, after].filter((b): b is RoundResult => b !== undefined);
    if (refs.length === 0) continue;
    const cpuRefs = refs.map((b) => b.cpuUsPerReq).filter((x): x is number => x !== null);
    r.vsBaseline = {
      rps: r.rps / mean(refs.map((b) => b.rps)),
      cpuUsPerReq: r.cpuUsPerReq !== null && cpuRefs.length === refs.length ? r.cpuUsPerReq / mean(cpuRefs) : null,
    };
  }
}

/**
 * Measures the subjects of `order` interleaved: round 1 runs each in turn, round 2 again in a
 * rotated order, and so on; each run is preceded by a warm-up (longer in round 1, to heat the JIT).
 * A subject whose process died is dropped (and its status set to failed).
 */
async function runRounds(
  loadgen: LoadGen,
  order: string[],
  running: Map<string, Started>,
  statuses: SubjectStatus[],
  plan: RoundsPlan,
): Promise<RoundResult[]> {
  const rounds: RoundResult[] = [];
  const width = Math.max(12, ...order.map((n) => n.length));
  const warmed = new Set<string>();
  let seq = 0;
  for (let round = 1; round <= plan.rounds; round++) {
    // Rotate the order each round so no subject always goes first.
    const thisRound = roundOrder(order, round, plan.baseline);
    for (const name of thisRound) {
      if (shuttingDown) return rounds;
      const st = running.get(name);
      if (!st) continue;
      const status = statuses.find((x) => x.name === name);
      if (!isRunning(st.proc)) {
        const reason = `process exited during the run (code ${st.proc.exitCode}, signal ${st.proc.signalCode}) ${tail(st.logFile)}`;
        console.log(`  ${name}: ${reason}; dropped`);
        if (status) Object.assign(status, { status: 'failed', reason });
        running.delete(name);
        continue;
      }
      try {
        const gen = st.loadgen ?? loadgen;
        const connections = st.connections ?? plan.connections;
        const warmup = warmed.has(name) ? plan.warmupS : plan.firstWarmupS;
        warmed.add(name);
        if (warmup > 0) await gen.run(st.url, warmup, connections, { ...plan.load, warmup: true });
        const counts0 = plan.origins ? await originCounts(plan.origins) : null;
        const cpu0 = cpuSeconds(st.pid);
        const t0 = process.hrtime.bigint();
        const at = new Date().toISOString();
        const r = await gen.run(st.url, plan.durationS, connections, plan.load);
        const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu1 = cpuSeconds(st.pid);
        const rss = rssMB(st.pid);
        const counts1 = plan.origins ? await originCounts(plan.origins) : null;
        let accessLogBytes: number | null = null;
        if (st.accessLog) {
          try {
            accessLogBytes = fs.statSync(st.accessLog).size;
          } catch {
            accessLogBytes = 0;
          }
        }
        const cpuPct = cpu0 !== null && cpu1 !== null && wallS > 0 ? ((cpu1 - cpu0) / wallS) * 100 : null;
        const cpuUsPerReq = cpu0 !== null && cpu1 !== null && r.requests > 0 ? ((cpu1 - cpu0) * 1e6) / r.requests : null;
        const rr: RoundResult = { round, seq: seq++, subject: name, ...r, rssMB: rss, cpuPct, cpuUsPerReq, accessLogBytes, startedAt: at };
        let shares = '';
        if (counts0 && counts1) {
          const deltas = counts1.map((c, i) => c - counts0[i]);
          const sum = deltas.reduce((a, b) => a + b, 0);
          if (sum > 0) {
            rr.originShares = deltas.map((d) => d / sum);
            shares = `  origins ${fmtShares(rr.originShares)} %`;
          }
        }
        rounds.push(rr);
        const warn = r.errors + r.non2xx > 0 ? `  (!) ${r.errors} socket errors, ${r.non2xx} non-2xx${r.problems?.length ? `: ${r.problems.join('; ')}` : ''}` : '';
        const proto = r.protocol ? `  ${r.protocol}` : '';
        log(
          `  ${plan.label} round ${round}/${plan.rounds}  ${name.padEnd(width)} ${fmt(r.rps, 0).padStart(8)} ${gen.rateUnit ?? 'req/s'}  p50 ${fmt(r.p50Ms, 2)} ms  ` +
            `p99 ${fmt(r.p99Ms, 2)} ms  rss ${fmt(rss, 1)} MB  cpu ${fmt(cpuPct, 0)}% ${fmt(cpuUsPerReq, 1)} us/${gen.unit ?? 'req'}${shares}${proto}${warn}`,
        );
      } catch (err) {
        if (shuttingDown) return rounds;
        log(`  ${plan.label} round ${round}/${plan.rounds}  ${name}: load run failed: ${errorMessage(err)}`);
      }
    }
  }
  return rounds;
}

function summarize(names: string[], rounds: RoundResult[]): SubjectSummary[] {
  const summary: SubjectSummary[] = [];
  for (const name of names) {
    const rs = rounds.filter((r) => r.subject === name);
    if (rs.length === 0) continue;
    const nums = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
    const rss = nums(rs.map((r) => r.rssMB));
    const cpu = nums(rs.map((r) => r.cpuPct));
    const cpuPerReq = nums(rs.map((r) => r.cpuUsPerReq));
    const s: SubjectSummary = {
      subject: name,
      rounds: rs.length,
      rps: median(rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p90Ms: median(rs.map((r) => r.p90Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      rssMB: rss.length ? median(rss) : null,
      cpuPct: cpu.length ? median(cpu) : null,
      cpuUsPerReq: cpuPerReq.length ? median(cpuPerReq) : null,
      errors: rs.reduce((a, r) => a + r.errors, 0),
      non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    };
    const withShares = rs.filter((r) => r.originShares !== undefined);
    if (withShares.length > 0) {
      const n = withShares[0].originShares!.length;
      s.originShares = Array.from({ length: n }, (_, i) => median(withShares.map((r) => r.originShares![i])));
    }
    summary.push(s);
  }
  return summary;
}

/** Starts a subject, checks it answers the origin's body, and records its status. */
async function startChecked(
  name: string,
  description: string,
  start: () => Promise<Started>,
  expectedBody: string,
  running: Map<string, Started>,
  statuses: SubjectStatus[],
): Promise<void> {
  try {
    const st = await start();
    const probe = await httpGet(st.url, 2000, st.ca).catch((err: unknown) => ({ status: 0, body: errorMessage(err) }));
    if (probe.status !== 200 || probe.body !== expectedBody) {
      if (st.owned) await stopProcess(st.proc, st.graceMs);
      throw new Error(`sanity check failed: HTTP ${probe.status}, ${probe.body.length}-byte body (expected 200 with ${expectedBody.length} bytes)`);
    }
    running.set(name, st);
    statuses.push({ name, description, status: 'ok' });
    log(`started ${name}: ${st.url} (pid ${st.pid})`);
  } catch (err) {
    const reason = `failed to start: ${errorMessage(err).trim()}`;
    console.log(`skipping ${name}: ${reason}`);
    statuses.push({ name, description, status: 'failed', reason });
  }
}

async function stopAll(running: Map<string, Started>, origins: Origin[]): Promise<void> {
  if (shuttingDown) return; // the signal handler's cleanup() owns them now
  await Promise.all([...running.values()].filter((s) => s.owned).map((s) => stopProcess(s.proc, s.graceMs)));
  await Promise.all(origins.map((o) => stopProcess(o.proc)));
}

// ---------------------------------------------------------------- suite: peers

let bodyBytes: number | null = null;

interface PeersReport {
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: SubjectSummary[];
  ratios: Record<string, Record<string, { rps: number; p50: number; p99: number; rss: number }>>;
  target: { ratio: number; met: boolean } | null;
}

/** The original benchmark: Switchboard against direct, node-minimal, nginx and haproxy. */
async function peersSuite(loadgen: LoadGen): Promise<PeersReport | null> {
  heading('peers: Switchboard vs direct, node-minimal, nginx, haproxy');
  console.log(
    `  ${ROUNDS} round(s) x ${DURATION_S}s per subject (+${WARMUP_S}s warm-up each, ${FIRST_WARMUP_S}s in round 1), ${CONNECTIONS} connections, ` +
      `${ORIGIN_COUNT} origin(s), load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''}`,
  );
  console.log('  equal footing: nginx runs 1 worker process, haproxy 1 thread, because Node is single-threaded.');
  console.log('  access log: ON for switchboard, nginx, haproxy (to files); OFF for node-minimal (the floor) and direct.\n');

  let origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  let rounds: RoundResult[] = [];

  try {
    origins = await startOrigins('origin', Array.from({ length: ORIGIN_COUNT }, () => 0));
    const expectedBody = (await waitReady(`${origins[0].url}/`, origins[0].proc, origins[0].logFile)).body;
    bodyBytes = Buffer.byteLength(expectedBody);
    log(`origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid})`).join(', ')}`);

    // Start every subject once; failures are reported and skipped.
    for (const s of subjects) {
      if (SUBJECT_FILTER.length > 0 && !SUBJECT_FILTER.includes(s.name)) {
        statuses.push({ name: s.name, description: s.description, status: 'skipped', reason: 'not in BENCH_SUBJECTS' });
        continue;
      }
      const why = s.unavailable();
      if (why) {
        console.log(`skipping ${s.name}: ${why}`);
        statuses.push({ name: s.name, description: s.description, status: 'skipped', reason: why });
        continue;
      }
      await startChecked(s.name, s.description, () => s.start(origins), expectedBody, running, statuses);
    }
    if (running.size === 0) throw new Error('no subject could be started');

    const order = subjects.map((s) => s.name).filter((n) => running.has(n));
    const plan: RoundsPlan = {
      label: 'peers',
      rounds: ROUNDS,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      firstWarmupS: FIRST_WARMUP_S,
      connections: CONNECTIONS,
    };
    log(`\nrunning ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, plan);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;

  const summary = summarize(
    subjects.map((s) => s.name),
    rounds,
  );

  console.log(`\nResults (median of ${ROUNDS} round(s), ${DURATION_S}s each, ${CONNECTIONS} connections, ${loadgen.name}):\n`);
  printTable(
    ['subject', 'req/s', 'p50 ms', 'p99 ms', 'RSS MB', 'CPU %', 'errors', 'rounds'],
    summary.map((s) => [
      s.subject,
      fmt(s.rps, 0),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.rssMB, 1),
      fmt(s.cpuPct, 0),
      String(s.errors + s.non2xx),
      String(s.rounds),
    ]),
  );
  console.log('  RSS/CPU: the proxy process (for direct, the origin); CPU % = CPU time / wall time during the measured run (100 = one core).');

  const ratios: PeersReport['ratios'] = {};
  for (const baseName of ['switchboard', 'node-minimal', 'nginx', 'haproxy']) {
    const base = summary.find((s) => s.subject === baseName);
    if (!base) continue;
    console.log(`\nRelative to ${baseName} (req/s: higher is better; p50, p99, RSS: lower is better):`);
    ratios[baseName] = {};
    for (const s of summary) {
      if (s.subject === baseName) continue;
      const rps = s.rps / base.rps;
      const p50 = s.p50Ms / base.p50Ms;
      const p99 = s.p99Ms / base.p99Ms;
      const rss = s.rssMB !== null && base.rssMB ? s.rssMB / base.rssMB : Number.NaN;
      ratios[baseName][s.subject] = { rps, p50, p99, rss };
      console.log(
        `  ${`${s.subject} / ${baseName}`.padEnd(28)} req/s = ${fmt(rps, 2)}   p50 = ${fmt(p50, 2)}   p99 = ${fmt(p99, 2)}   RSS = ${fmt(rss, 2)}`,
      );
    }
  }

  const sb = summary.find((s) => s.subject === 'switchboard');
  const nm = summary.find((s) => s.subject === 'node-minimal');
  let target: PeersReport['target'] = null;
  console.log('');
  if (sb && nm) {
    const ratio = sb.rps / nm.rps;
    target = { ratio, met: ratio >= 0.9 };
    console.log(`switchboard / node-minimal req/s = ${ratio.toFixed(2)} (target >= 0.90)${ratio >= 0.9 ? '' : '  BELOW TARGET'}`);
  } else {
    console.log(`switchboard / node-minimal req/s = n/a (target >= 0.90): ${!sb ? 'switchboard' : 'node-minimal'} did not run`);
  }
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { subjects: statuses, rounds, summary, ratios, target };
}

// ---------------------------------------------------------------- suite: https

const opensslBin = findExecutable('openssl');
const h2loadBin = findExecutable('h2load');

type HttpsProtocol = 'h1' | 'h2';
const HTTPS_PROXIES = ['switchboard', 'nginx'] as const;

interface HttpsProxyStatus extends SubjectStatus {
  /** What a client offering h2 and http/1.1 by ALPN negotiated. */
  handshake?: Handshake;
  /** What a client offering only http/1.1 negotiated. */
  handshakeH1?: Handshake;
  /** One GET over HTTP/2: "ok" or what went wrong. */
  h2Get?: string;
}

interface HttpsRatio {
  /** Ratios of the medians, switchboard / nginx, as in the peers suite. */
  rps: number;
  p50: number;
  p99: number;
  cpuPerReq: number;
  rss: number;
  /** Median and range of the paired req/s ratios: each switchboard run against the nginx runs (same protocol) just before and after it. */
  rpsPaired: number;
  rpsPairedMin: number;
  rpsPairedMax: number;
  pairs: number;
  /** A/A: each nginx run against its neighbouring nginx runs (same protocol): the noise of the paired ratios. */
  nginxAAMin: number;
  nginxAAMax: number;
}

interface HttpsReport {
  config: Record<string, unknown>;
  proxies: HttpsProxyStatus[];
  /** The measured subjects: "<proxy> h1" and "<proxy> h2". */
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: (SubjectSummary & { protocols: string[]; tls: string[] })[];
  ratios: Partial<Record<HttpsProtocol, HttpsRatio>>;
  /** An HTTP/2 run negotiated something other than h2 (h2load fell back to http/1.1). */
  h2Fallback: boolean;
}

const PROTOCOL_LABEL: Record<HttpsProtocol, string> = { h1: 'HTTP/1.1', h2: 'HTTP/2' };

/** TLS version, cipher and ALPN of a proxy, and one GET over HTTP/2; problems are returned, not thrown. */
async function checkTls(name: string, st: Started, expectedBody: string, wantH2: boolean, status: HttpsProxyStatus): Promise<void> {
  const port = Number(new URL(st.url).port);
  const ca = st.ca as string;
  try {
    status.handshake = await tlsHandshake('127.0.0.1', port, ca, ['h2', 'http/1.1']);
    status.handshakeH1 = await tlsHandshake('127.0.0.1', port, ca, ['http/1.1']);
  } catch (err) {
    console.log(`  (!) ${name}: TLS handshake check failed: ${errorMessage(err)}`);
    return;
  }
  const hs = status.handshake;
  if (wantH2) {
    try {
      const r = await h2Get(st.url, ca);
      status.h2Get = r.status === 200 && r.body === expectedBody ? 'ok' : `HTTP ${r.status}, ${Buffer.byteLength(r.body)}-byte body (expected 200 with ${Buffer.byteLength(expectedBody)})`;
    } catch (err) {
      status.h2Get = errorMessage(err);
    }
  }
  console.log(
    `  ${name}: ${hs.version} ${hs.cipher}; ALPN offering h2,http/1.1 -> ${hs.alpn || 'none'}, offering http/1.1 -> ${status.handshakeH1.alpn || 'none'}` +
      (status.h2Get === undefined ? '' : `; one GET over HTTP/2: ${status.h2Get}`),
  );
  if (wantH2 && hs.alpn !== 'h2') console.log(`  (!) ${name} does not select h2 by ALPN: h2load will fall back to HTTP/1.1 (the protocol column shows it)`);
}

/** Switchboard against nginx, both terminating TLS over the same origins: HTTP/1.1 (wrk) and HTTP/2 (h2load). */
async function httpsSuite(loadgen: LoadGen): Promise<HttpsReport | null> {
  heading('https: Switchboard vs nginx terminating TLS, HTTP/1.1 and HTTP/2');
  const protocols = HTTPS_PROTOCOLS as HttpsProtocol[];
  const h2load = protocols.includes('h2') && h2loadBin ? makeH2load(h2loadBin, H2_STREAMS) : null;
  console.log(
    `  ${HTTPS_ROUNDS} round(s) x ${HTTPS_DURATION_S}s per run (+${HTTPS_WARMUP_S}s warm-up each, ${HTTPS_FIRST_WARMUP_S}s the first time), ` +
      `${ORIGIN_COUNT} plain-HTTP origin(s) shared by both proxies; round robin, upstream keep-alive, access log ON to a file.`,
  );
  console.log('  equal footing, as in peers: one process each (nginx master_process off, 1 worker; Switchboard is single-threaded), same certificate.');
  console.log(`  HTTP/1.1: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''}, ${HTTPS_CONNECTIONS} keep-alive connections over TLS, one request in flight each (no ALPN offered: HTTP/1.1).`);
  console.log(
    `  HTTP/2: h2load -t1 -c${H2_CONNECTIONS} -m${H2_STREAMS} (${H2_CONNECTIONS * H2_STREAMS} requests in flight), ALPN h2,http/1.1; p50/p90/p99 from its per-request log.`,
  );
  console.log('  TLS: a throwaway CA and an ECDSA P-256 certificate for localhost/127.0.0.1 (openssl, removed at the end); TLS 1.2-1.3 on both.');
  console.log('  runs rotate through the subjects each round; paired ratio: each switchboard run against the nginx runs of the same protocol just before and after it.\n');

  const config = {
    durationS: HTTPS_DURATION_S,
    rounds: HTTPS_ROUNDS,
    warmupS: HTTPS_WARMUP_S,
    firstWarmupS: HTTPS_FIRST_WARMUP_S,
    origins: ORIGIN_COUNT,
    protocols,
    h1: { loadgen: loadgen.name, connections: HTTPS_CONNECTIONS },
    h2: { loadgen: h2load ? 'h2load' : null, connections: H2_CONNECTIONS, streams: H2_STREAMS },
    certificate: 'ECDSA P-256, throwaway CA',
    accessLog: true,
  };
  if (!opensslBin) {
    console.log('skipping suite https: openssl is not installed (it makes the throwaway certificates)');
    return null;
  }
  if (protocols.includes('h2') && !h2loadBin) console.log('skipping HTTP/2: h2load is not installed (apt-get install nghttp2-client)');
  if (!nginxBin) console.log('skipping nginx: not installed; Switchboard is measured alone, without ratios');

  let origins: Origin[] = [];
  const proxies: HttpsProxyStatus[] = [];
  const running = new Map<string, Started>();
  const runs = new Map<string, Started>();
  const statuses: SubjectStatus[] = [];
  let rounds: RoundResult[] = [];
  const certs = await makeBenchCerts(opensslBin, path.join(tmpDir, 'tls'));
  try {
    log(`https: certificates in ${certs.dir}`);
    origins = await startOrigins('https-origin', Array.from({ length: ORIGIN_COUNT }, () => 0));
    const expectedBody = (await waitReady(`${origins[0].url}/`, origins[0].proc, origins[0].logFile)).body;
    bodyBytes ??= Buffer.byteLength(expectedBody);
    log(`https origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid})`).join(', ')}`);

    const starters: Record<(typeof HTTPS_PROXIES)[number], { description: string; unavailable: string | null; start: () => Promise<Started> }> = {
      switchboard: {
        description: 'Switchboard, https listener (ALPN h2, http/1.1), round robin, access log ON; started with the CLI from a YAML config',
        unavailable: null,
        start: () => startSwitchboardHttps('https-switchboard', origins, certs),
      },
      nginx: {
        description: 'nginx, listen ssl http2, 1 process (master_process off), upstream keepalive, access log ON',
        unavailable: nginxBin ? null : 'nginx is not installed',
        start: () => startNginx('https-nginx', origins, certs),
      },
    };
    for (const name of HTTPS_PROXIES) {
      if (shuttingDown) return null;
      const s = starters[name];
      if (s.unavailable) {
        proxies.push({ name, description: s.description, status: 'skipped', reason: s.unavailable });
        continue;
      }
      await startChecked(name, s.description, s.start, expectedBody, running, proxies);
      const st = running.get(name);
      const status = proxies.find((p) => p.name === name);
      if (st && status) await checkTls(name, st, expectedBody, h2load !== null, status);
    }
    if (running.size === 0) throw new Error('neither proxy could be started');

    // One measured subject per proxy and protocol, over the same process: "<proxy> h1", "<proxy> h2".
    const order: string[] = [];
    for (const proto of protocols) {
      for (const name of HTTPS_PROXIES) {
        const st = running.get(name);
        const subject = `${name} ${proto}`;
        const description = `${name}, ${PROTOCOL_LABEL[proto]} over TLS`;
        if (!st) {
          statuses.push({ name: subject, description, status: 'skipped', reason: `${name} did not start` });
          continue;
        }
        if (proto === 'h2' && !h2load) {
          statuses.push({ name: subject, description, status: 'skipped', reason: 'h2load is not installed' });
          continue;
        }
        runs.set(subject, proto === 'h2' ? { ...st, loadgen: h2load as LoadGen, connections: H2_CONNECTIONS } : st);
        statuses.push({ name: subject, description, status: 'ok' });
        order.push(subject);
      }
    }
    const plan: RoundsPlan = {
      label: 'https',
      rounds: HTTPS_ROUNDS,
      durationS: HTTPS_DURATION_S,
      warmupS: HTTPS_WARMUP_S,
      firstWarmupS: HTTPS_FIRST_WARMUP_S,
      connections: HTTPS_CONNECTIONS,
    };
    log(`\nhttps: running ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan))} s in total\n`);
    rounds = await runRounds(loadgen, order, runs, statuses, plan);
  } finally {
    await stopAll(running, origins);
    if (!KEEP_TMP) fs.rmSync(certs.dir, { recursive: true, force: true });
  }
  if (shuttingDown) return null;

  const names = protocols.flatMap((proto) => HTTPS_PROXIES.map((n) => `${n} ${proto}`));
  const summary: HttpsReport['summary'] = summarize(names, rounds).map((s) => {
    const rs = rounds.filter((r) => r.subject === s.subject);
    const uniq = (xs: (string | undefined)[]): string[] => [...new Set(xs.filter((x): x is string => x !== undefined))];
    // wrk and autocannon offer no ALPN and speak only HTTP/1.1.
    const protocolsSeen = s.subject.endsWith(' h1') ? ['http/1.1'] : uniq(rs.map((r) => r.protocol ?? 'unknown'));
    return { ...s, protocols: protocolsSeen, tls: uniq(rs.map((r) => r.tls)) };
  });
  const h2Fallback = summary.some((s) => s.subject.endsWith(' h2') && s.protocols.some((p) => p !== 'h2'));

  console.log(
    `\nResults (median of ${HTTPS_ROUNDS} round(s), ${HTTPS_DURATION_S}s each; HTTP/1.1: ${loadgen.name}, ${HTTPS_CONNECTIONS} connections; ` +
      `HTTP/2: h2load, ${H2_CONNECTIONS} connections x ${H2_STREAMS} streams):\n`,
  );
  printTable(
    ['subject', 'protocol', 'req/s', 'p50 ms', 'p99 ms', 'RSS MB', 'CPU %', 'CPU us/req', 'errors', 'rounds'],
    summary.map((s) => [
      s.subject,
      s.protocols.join(',') + (s.subject.endsWith(' h2') && s.protocols.some((p) => p !== 'h2') ? ' (!)' : ''),
      fmt(s.rps, 0),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.rssMB, 1),
      fmt(s.cpuPct, 0),
      fmt(s.cpuUsPerReq, 1),
      String(s.errors + s.non2xx),
      String(s.rounds),
    ]),
  );
  console.log('  protocol: HTTP/2 rows, what h2load negotiated by ALPN; HTTP/1.1 rows, wrk/autocannon offer no ALPN and speak only HTTP/1.1.');
  console.log('  RSS/CPU: the proxy process; CPU % = its CPU time / wall time during the run (100 = one core), TLS included.');
  const tlsSeen = [...new Set(summary.flatMap((s) => s.tls))];
  if (tlsSeen.length > 0) console.log(`  TLS negotiated by h2load: ${tlsSeen.join('; ')}`);

  const ratios: HttpsReport['ratios'] = {};
  const lines: string[] = [];
  const range = (lo: number, hi: number): string => (Number.isFinite(lo) ? `${fmt(lo, 2)}-${fmt(hi, 2)}` : 'n/a');
  for (const proto of protocols) {
    const sb = summary.find((s) => s.subject === `switchboard ${proto}`);
    const ng = summary.find((s) => s.subject === `nginx ${proto}`);
    if (!sb || !ng) continue;
    pairWithBaseline(
      rounds.filter((r) => r.subject.endsWith(` ${proto}`)),
      `nginx ${proto}`,
    );
    const paired = (subject: string): number[] =>
      rounds.filter((r) => r.subject === subject && r.vsBaseline !== undefined).map((r) => r.vsBaseline!.rps);
    const pairs = paired(`switchboard ${proto}`);
    const aa = paired(`nginx ${proto}`);
    const r: HttpsRatio = {
      rps: sb.rps / ng.rps,
      p50: sb.p50Ms / ng.p50Ms,
      p99: sb.p99Ms / ng.p99Ms,
      cpuPerReq: sb.cpuUsPerReq !== null && ng.cpuUsPerReq ? sb.cpuUsPerReq / ng.cpuUsPerReq : Number.NaN,
      rss: sb.rssMB !== null && ng.rssMB ? sb.rssMB / ng.rssMB : Number.NaN,
      rpsPaired: median(pairs),
      rpsPairedMin: pairs.length ? Math.min(...pairs) : Number.NaN,
      rpsPairedMax: pairs.length ? Math.max(...pairs) : Number.NaN,
      pairs: pairs.length,
      nginxAAMin: aa.length ? Math.min(...aa) : Number.NaN,
      nginxAAMax: aa.length ? Math.max(...aa) : Number.NaN,
    };
    ratios[proto] = r;
    lines.push(
      `  ${`switchboard / nginx, ${PROTOCOL_LABEL[proto]}`.padEnd(30)} req/s = ${fmt(r.rps, 2)}   p50 = ${fmt(r.p50, 2)}   p99 = ${fmt(r.p99, 2)}   ` +
        `CPU/req = ${fmt(r.cpuPerReq, 2)}   RSS = ${fmt(r.rss, 2)}   paired req/s = ${fmt(r.rpsPaired, 2)} (${range(r.rpsPairedMin, r.rpsPairedMax)}, ` +
        `nginx A/A ${range(r.nginxAAMin, r.nginxAAMax)})`,
    );
  }
  if (lines.length > 0) {
    console.log('\nRelative to nginx (req/s: higher is better; p50, p99, CPU/req, RSS: lower is better):');
    for (const l of lines) console.log(l);
    console.log('  paired req/s: median (min-max) of each switchboard run over the mean of the nginx runs around it; nginx A/A: the same for nginx against itself (noise).');
  } else {
    console.log('\nswitchboard / nginx = n/a: both proxies must run for the ratios');
  }
  if (h2Fallback) {
    const which = summary.filter((s) => s.subject.endsWith(' h2') && s.protocols.some((p) => p !== 'h2')).map((s) => `${s.subject}: ${s.protocols.join(',')}`);
    console.log(`\n(!) HTTP/2 fell back: ${which.join('; ')}; those rows measured HTTP/1.1, not HTTP/2`);
  }
  for (const st of [...proxies, ...statuses]) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, proxies, subjects: statuses, rounds, summary, ratios, h2Fallback };
}

// ---------------------------------------------------------------- suites: algorithms and slow

/** Switchboard options for one balancer over `n` origins (weights 3,1,1.. for weighted-round-robin). */
function balancerOptions(name: string, n: number, accessLog: boolean): SwitchboardOptions {
  const balancer = name === CONTROL_NAME ? 'round-robin' : name;
  const o: SwitchboardOptions = { balancer, accessLog };
  if (balancer === 'weighted-round-robin') o.weights = Array.from({ length: n }, (_, i) => WRR_WEIGHTS[i] ?? 1);
  if (balancer === 'consistent-hash') o.hashKey = HASH_KEY;
  return o;
}

function describeBalancer(o: SwitchboardOptions): string {
  const extra = [o.weights ? `weights ${o.weights.join(',')}` : '', o.hashKey ? `hashKey ${o.hashKey}` : ''].filter(Boolean);
  return `Switchboard, balancer ${o.balancer}${extra.length ? ` (${extra.join(', ')})` : ''}, access log ${o.accessLog ? 'ON' : 'OFF'}`;
}

interface BalancerSuiteRun {
  origins: { delayMs: number }[];
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  summary: SubjectSummary[];
}

/** One Switchboard child per balancer over the same origins, measured in interleaved rounds. */
async function runBalancerSuite(
  loadgen: LoadGen,
  label: string,
  balancers: string[],
  delaysMs: number[],
  accessLog: boolean,
  plan: Omit<RoundsPlan, 'origins' | 'label'>,
): Promise<BalancerSuiteRun | null> {
  let origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  let rounds: RoundResult[] = [];
  try {
    origins = await startOrigins(`${label}-origin`, delaysMs);
    const expectedBody = (await waitReady(`${origins[0].url}/`, origins[0].proc, origins[0].logFile)).body;
    bodyBytes ??= Buffer.byteLength(expectedBody);
    log(`${label} origins: ${origins.map((o) => `${o.url} (pid ${o.proc.pid}${o.delayMs > 0 ? `, +${o.delayMs} ms` : ''})`).join(', ')}`);
    if (!fs.existsSync(path.join(REPO_DIR, 'src', 'index.ts'))) throw new Error('src/index.ts not found');
    for (const b of balancers) {
      if (shuttingDown) return null;
      const o = balancerOptions(b, origins.length, accessLog);
      await startChecked(b, describeBalancer(o), () => startSwitchboard(`${label}-${b}`, origins, o), expectedBody, running, statuses);
    }
    if (!running.has('round-robin')) throw new Error('the round-robin baseline could not be started');
    const order = balancers.filter((b) => running.has(b));
    const full: RoundsPlan = { ...plan, label, origins };
    const how = full.baseline ? `, each run between two ${full.baseline} runs` : '';
    log(`\n${label}: running ${order.join(', ')}${how}; about ${Math.ceil(plannedSeconds(order, full))} s in total\n`);
    rounds = await runRounds(loadgen, order, running, statuses, full);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;
  return { origins: origins.map((o) => ({ delayMs: o.delayMs })), subjects: statuses, rounds, summary: summarize(balancers, rounds) };
}

interface AlgorithmRatio {
  /** Median over this algorithm's runs of req/s / the bracketing round-robin runs' mean. */
  rps: number;
  rpsMin: number;
  rpsMax: number;
  /** (1 - rps) x 100: the throughput the choice costs, in percent (negative: faster than round robin). */
  costPct: number;
  withinBudget: boolean;
  /** Same, for the Switchboard child's CPU time per request (ratio > 1 costs). */
  cpuPerReq: number;
  cpuCostPct: number;
  cpuWithinBudget: boolean;
  /** Ratio of the median p99s (not paired). */
  p99: number;
  pairs: number;
}

interface AlgorithmsReport extends BalancerSuiteRun {
  config: Record<string, unknown>;
  baseline: 'round-robin';
  maxCostPct: number;
  /**
   * A/A check: each round-robin run against its neighbouring round-robin runs. The spread of these
   * ratios is what noise alone produces.
   */
  baselineAA: { pairs: number; rpsMin: number; rpsMax: number; rpsMedianAbsDevPct: number; cpuMedianAbsDevPct: number } | null;
  /** The A/A noise exceeds half the budget: the verdicts are unreliable. */
  noisy: boolean;
  ratios: Record<string, AlgorithmRatio>;
}

async function algorithmsSuite(loadgen: LoadGen): Promise<AlgorithmsReport | null> {
  heading('algorithms: each balancer\u2019s req/s against round robin');
  const varyKey = HASH_KEY === 'path' ? 'path' : 'header';
  const keyDesc = `${varyKey === 'path' ? 'path /u/<n>' : 'x-user header'}, ${loadgen.varyKeySupport}`;
  console.log(
    `  ${ALGO_ROUNDS} round(s) x ${ALGO_DURATION_S}s per run (+${ALGO_WARMUP_S}s warm-up each, ${ALGO_FIRST_WARMUP_S}s the first time), ` +
      `${ALGO_CONNECTIONS} connections, ${ALGO_ORIGINS} origin(s) answering at once, one Switchboard child per balancer, access log ${ALGO_ACCESS_LOG ? 'ON' : 'OFF'}.`,
  );
  console.log('  bracketed: every algorithm run sits between two round-robin runs and is compared with their mean (paired ratio);');
  console.log('  the table shows the median of those paired ratios, so drift from other load on the machine mostly cancels.');
  if (ALGO_CONTROL) {
    console.log(`  control: ${CONTROL_NAME} is a second, identical round-robin child measured like the algorithms; its ratio is the method\u2019s own error.`);
  }
  console.log(`  every balancer gets the same requests: a random key per request (${keyDesc}); consistent-hash hashes ${HASH_KEY}.`);
  console.log(`  weighted-round-robin: weights ${Array.from({ length: ALGO_ORIGINS }, (_, i) => WRR_WEIGHTS[i] ?? 1).join(',')}; all others weight 1. ip-hash: every request comes from 127.0.0.1, so one origin gets all of it.\n`);

  const config = {
    durationS: ALGO_DURATION_S,
    rounds: ALGO_ROUNDS,
    warmupS: ALGO_WARMUP_S,
    firstWarmupS: ALGO_FIRST_WARMUP_S,
    connections: ALGO_CONNECTIONS,
    origins: ALGO_ORIGINS,
    balancers: ALGO_BALANCERS,
    control: ALGO_CONTROL ? CONTROL_NAME : null,
    wrrWeights: Array.from({ length: ALGO_ORIGINS }, (_, i) => WRR_WEIGHTS[i] ?? 1),
    hashKey: HASH_KEY,
    keyVariation: keyDesc,
    accessLog: ALGO_ACCESS_LOG,
    bracketedBy: 'round-robin',
  };
  const run = await runBalancerSuite(
    loadgen,
    'algorithms',
    ALGO_CONTROL ? [...ALGO_BALANCERS, CONTROL_NAME] : ALGO_BALANCERS,
    Array.from({ length: ALGO_ORIGINS }, () => 0),
    ALGO_ACCESS_LOG,
    {
      rounds: ALGO_ROUNDS,
      durationS: ALGO_DURATION_S,
      warmupS: ALGO_WARMUP_S,
      firstWarmupS: ALGO_FIRST_WARMUP_S,
      connections: ALGO_CONNECTIONS,
      load: { varyKey },
      baseline: 'round-robin',
    },
  );
  if (!run) return null;
  pairWithBaseline(run.rounds, 'round-robin');

  const base = run.summary.find((s) => s.subject === 'round-robin');
  const budget = ALGO_MAX_COST_PCT;
  const ratios: AlgorithmsReport['ratios'] = {};
  const pairedOf = (name: string): NonNullable<RoundResult['vsBaseline']>[] =>
    run.rounds.filter((r) => r.subject === name && r.vsBaseline !== undefined).map((r) => r.vsBaseline!);
  const medianAbsDevPct = (xs: number[]): number => median(xs.map((x) => Math.abs(x - 1) * 100));

  const aaPairs = pairedOf('round-robin');
  const aaCpu = aaPairs.map((p) => p.cpuUsPerReq).filter((x): x is number => x !== null);
  const baselineAA: AlgorithmsReport['baselineAA'] =
    aaPairs.length > 0
      ? {
          pairs: aaPairs.length,
          rpsMin: Math.min(...aaPairs.map((p) => p.rps)),
          rpsMax: Math.max(...aaPairs.map((p) => p.rps)),
          rpsMedianAbsDevPct: medianAbsDevPct(aaPairs.map((p) => p.rps)),
          cpuMedianAbsDevPct: aaCpu.length ? medianAbsDevPct(aaCpu) : Number.NaN,
        }
      : null;

  // When round robin against itself already moves by more than half the budget, a verdict is a guess.
  const noisy = baselineAA === null || !(baselineAA.rpsMedianAbsDevPct <= budget / 2);
  const verdict = (ok: boolean): string => (ok ? 'yes' : 'NO') + (noisy ? '?' : '');
  console.log(
    `\nAlgorithms (${ALGO_ROUNDS} round(s), ${ALGO_DURATION_S}s runs, ${ALGO_CONNECTIONS} connections, ${loadgen.name}); ` +
      `vs RR = median paired ratio against the bracketing round-robin runs; budget: cost < ${budget}%:\n`,
  );
  printTable(
    ['algorithm', 'req/s', 'p50 ms', 'p99 ms', 'vs RR', 'range', 'cost %', `<${budget}%`, 'CPU us/req', 'vs RR', 'CPU cost %', `<${budget}%`, 'origins %', 'errors'],
    run.summary.map((s) => {
      const isBase = s.subject === 'round-robin';
      const isControl = s.subject === CONTROL_NAME;
      const pairs = pairedOf(s.subject);
      const cpuPairs = pairs.map((p) => p.cpuUsPerReq).filter((x): x is number => x !== null);
      const rps = isBase ? 1 : median(pairs.map((p) => p.rps));
      const cpuPerReq = isBase ? 1 : cpuPairs.length ? median(cpuPairs) : Number.NaN;
      const r: AlgorithmRatio = {
        rps,
        rpsMin: pairs.length ? Math.min(...pairs.map((p) => p.rps)) : Number.NaN,
        rpsMax: pairs.length ? Math.max(...pairs.map((p) => p.rps)) : Number.NaN,
        costPct: (1 - rps) * 100,
        withinBudget: Number.isFinite(rps) && (1 - rps) * 100 < budget,
        cpuPerReq,
        cpuCostPct: (cpuPerReq - 1) * 100,
        cpuWithinBudget: Number.isFinite(cpuPerReq) && (cpuPerReq - 1) * 100 < budget,
        p99: base ? s.p99Ms / base.p99Ms : Number.NaN,
        pairs: pairs.length,
      };
      ratios[s.subject] = r;
      return [
        s.subject,
        fmt(s.rps, 0),
        fmt(s.p50Ms, 2),
        fmt(s.p99Ms, 2),
        isBase ? '1.000' : fmt(r.rps, 3),
        `${fmt(r.rpsMin, 2)}-${fmt(r.rpsMax, 2)}${isBase ? ' (A/A)' : ''}`,
        isBase ? '(base)' : fmt(r.costPct, 1),
        isBase ? '' : isControl ? 'ctrl' : verdict(r.withinBudget),
        fmt(s.cpuUsPerReq, 1),
        isBase ? '1.000' : fmt(r.cpuPerReq, 3),
        isBase ? '(base)' : fmt(r.cpuCostPct, 1),
        isBase ? '' : isControl ? 'ctrl' : verdict(r.cpuWithinBudget),
        fmtShares(s.originShares),
        String(s.errors + s.non2xx),
      ];
    }),
  );
  console.log('  req/s, p50, p99, CPU us/req: medians over each algorithm\u2019s runs (round-robin: over all its bracketing runs).');
  console.log('  vs RR / range: median and min-max of the paired req/s ratios; cost % = (1 - vs RR) x 100 (negative: faster than round robin).');
  console.log('  CPU us/req: CPU time (user+sys, all threads) of that Switchboard child / requests answered; CPU cost % = (vs RR - 1) x 100.');
  console.log('    It is less sensitive than req/s to other processes competing for the cores. origins %: share of requests per origin.');
  if (baselineAA) {
    console.log(
      `  noise (A/A): each round-robin run against its neighbouring round-robin runs: req/s ratios ${fmt(baselineAA.rpsMin, 2)}-${fmt(baselineAA.rpsMax, 2)}, ` +
        `median deviation ${fmt(baselineAA.rpsMedianAbsDevPct, 1)}% (req/s), ${fmt(baselineAA.cpuMedianAbsDevPct, 1)}% (CPU/req); a cost below that is noise.`,
    );
  }
  if (noisy) {
    console.log(
      `  (?) the A/A noise is more than half the ${budget}% budget, so these verdicts are not reliable: rerun with more rounds\n` +
        '      (e.g. BENCH_ALGO_ROUNDS=8 BENCH_ALGO_DURATION=3) or on a quieter machine, or profile (BENCH_CPU_PROF, see bench/README.md).',
    );
  }
  const control = ratios[CONTROL_NAME];
  if (control) {
    console.log(
      `  control: ${CONTROL_NAME} / round-robin = ${fmt(control.rps, 3)} (req/s), ${fmt(control.cpuPerReq, 3)} (CPU/req); ` +
        'ideally 1.000, the distance from 1 is the method\u2019s error on this run.',
    );
  }
  const others = Object.entries(ratios).filter(([n]) => n !== 'round-robin' && n !== CONTROL_NAME);
  const over = others.filter(([, r]) => !r.withinBudget);
  const overCpu = others.filter(([, r]) => !r.cpuWithinBudget);
  console.log(
    over.length === 0
      ? `\nreq/s: every balancer is within ${budget}% of round robin`
      : `\nreq/s: over the ${budget}% budget: ${over.map(([n, r]) => `${n} (${fmt(r.costPct, 1)}%)`).join(', ')}`,
  );
  console.log(
    overCpu.length === 0
      ? `CPU/req: every balancer is within ${budget}% of round robin`
      : `CPU/req: over the ${budget}% budget: ${overCpu.map(([n, r]) => `${n} (+${fmt(r.cpuCostPct, 1)}%)`).join(', ')}`,
  );
  for (const st of run.subjects) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, ...run, baseline: 'round-robin', maxCostPct: budget, baselineAA, noisy, ratios };
}

interface SlowReport extends BalancerSuiteRun {
  config: Record<string, unknown>;
  ratios: Record<string, { rps: number; p50: number; p90: number; p99: number; slowShare: number | null }>;
  /** p99 of least-response-time / p99 of round-robin, when both ran. */
  p99LrtOverRr: number | null;
}

async function slowSuite(loadgen: LoadGen): Promise<SlowReport | null> {
  heading(`slow: p99 with one of ${SLOW_ORIGINS} origins adding ${SLOW_DELAY_MS} ms`);
  console.log(
    `  ${SLOW_ROUNDS} round(s) x ${SLOW_DURATION_S}s per balancer (+${SLOW_WARMUP_S}s warm-up each, ${SLOW_FIRST_WARMUP_S}s in round 1), ` +
      `${SLOW_CONNECTIONS} connections; origin 1 waits ${SLOW_DELAY_MS} ms before each response, the other ${SLOW_ORIGINS - 1} answer at once.`,
  );
  console.log(
    `  closed loop: ${loadgen.name} keeps ${SLOW_CONNECTIONS} connections each with one request in flight, so a slow response also delays the next request\n` +
      '  on its connection (throughput drops instead of a queue building up); p99 is of the requests actually sent.\n',
  );
  const config = {
    durationS: SLOW_DURATION_S,
    rounds: SLOW_ROUNDS,
    warmupS: SLOW_WARMUP_S,
    firstWarmupS: SLOW_FIRST_WARMUP_S,
    connections: SLOW_CONNECTIONS,
    origins: SLOW_ORIGINS,
    slowOrigin: 1,
    delayMs: SLOW_DELAY_MS,
    balancers: SLOW_BALANCERS,
    accessLog: false,
  };
  const run = await runBalancerSuite(
    loadgen,
    'slow',
    SLOW_BALANCERS,
    Array.from({ length: SLOW_ORIGINS }, (_, i) => (i === 0 ? SLOW_DELAY_MS : 0)),
    false,
    {
      rounds: SLOW_ROUNDS,
      durationS: SLOW_DURATION_S,
      warmupS: SLOW_WARMUP_S,
      firstWarmupS: SLOW_FIRST_WARMUP_S,
      connections: SLOW_CONNECTIONS,
    },
  );
  if (!run) return null;

  const base = run.summary.find((s) => s.subject === 'round-robin');
  const ratios: SlowReport['ratios'] = {};
  console.log(
    `\nSlow origin (median of ${SLOW_ROUNDS} round(s), ${SLOW_DURATION_S}s each, ${SLOW_CONNECTIONS} connections, ${loadgen.name}; ` +
      `origin 1 +${SLOW_DELAY_MS} ms):\n`,
  );
  printTable(
    ['algorithm', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99 vs RR', 'p90 vs RR', 'req/s vs RR', 'slow origin %', 'origins %', 'errors'],
    run.summary.map((s) => {
      const slowShare = s.originShares ? s.originShares[0] : null;
      const r = {
        rps: base ? s.rps / base.rps : Number.NaN,
        p50: base ? s.p50Ms / base.p50Ms : Number.NaN,
        p90: base ? s.p90Ms / base.p90Ms : Number.NaN,
        p99: base ? s.p99Ms / base.p99Ms : Number.NaN,
        slowShare,
      };
      ratios[s.subject] = r;
      return [
        s.subject,
        fmt(s.rps, 0),
        fmt(s.p50Ms, 2),
        fmt(s.p90Ms, 2),
        fmt(s.p99Ms, 2),
        fmt(r.p99, 2),
        fmt(r.p90, 2),
        fmt(r.rps, 2),
        slowShare === null ? '-' : fmt(slowShare * 100, 1),
        fmtShares(s.originShares),
        String(s.errors + s.non2xx),
      ];
    }),
  );
  const lrt = run.summary.find((s) => s.subject === 'least-response-time');
  const p99LrtOverRr = lrt && base ? lrt.p99Ms / base.p99Ms : null;
  console.log(
    `\np99 least-response-time / round-robin = ${p99LrtOverRr === null ? 'n/a (one of them did not run)' : fmt(p99LrtOverRr, 2)} (lower is better)`,
  );
  console.log(
    `  note: p99 stays near the ${SLOW_DELAY_MS} ms delay for any balancer that sends the slow origin more than 1% of requests;\n` +
      '  the slow origin\u2019s share, p50/p90 and req/s show how far each one steers around it.',
  );
  for (const st of run.subjects) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, ...run, ratios, p99LrtOverRr };
}

// ---------------------------------------------------------------- suite: tcp

type TcpTest = 'bulk' | 'rate';
const TCP_PROXIES = ['direct', 'switchboard', 'haproxy'] as const;
const TCP_TEST_LABEL: Record<TcpTest, string> = { bulk: 'bulk throughput', rate: 'connection rate' };

/**
 * The tcp suite's load generator: bench/tcp-client.ts in a child process. `bulk` writes
 * BENCH_TCP_BYTES over `connections` connections to a sink (for a warm-up: for `seconds`) and
 * reports MiB/s as `rps` and MiB as `requests` (so runRounds' CPU us/req is CPU us per MiB);
 * `rate` opens and closes connections for `seconds` with `connections` loops: conn/s and latency.
 */
function makeTcpClient(test: TcpTest): LoadGen {
  return {
    name: 'tcp-client',
    version: 'bench/tcp-client.ts',
    varyKeySupport: 'not applicable',
    rateUnit: test === 'bulk' ? 'MiB/s' : 'conn/s',
    unit: test === 'bulk' ? 'MiB' : 'conn',
    async run(url, seconds, connections, opts) {
      const port = Number(new URL(url).port);
      const timed = test === 'rate' || opts?.warmup === true;
      const arg =
        test === 'bulk'
          ? { mode: 'bulk', port, connections, ...(timed ? { seconds } : { bytes: TCP_BYTES }) }
          : { mode: 'rate', port, concurrency: connections, seconds };
      // A fixed-size run has no duration: allow 10 MiB/s at the very least.
      const timeoutMs = timed ? (seconds + 30) * 1000 : 30_000 + (TCP_BYTES / (10 * 2 ** 20)) * 1000;
      const r = await runCollect(NODE, [path.join(BENCH_DIR, 'tcp-client.ts'), JSON.stringify(arg)], timeoutMs);
      const line = r.stdout.trim().split('\n').at(-1) ?? '';
      if (r.code !== 0 || !line.startsWith('{')) throw new Error(`tcp-client exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).slice(-500)}`);
      const j = JSON.parse(line) as {
        bytes?: number;
        mibPerS?: number;
        connections?: number;
        connPerS?: number;
        p50Ms?: number;
        p90Ms?: number;
        p99Ms?: number;
        errors: number;
        problems?: string[];
      };
      const nan = Number.NaN;
      return test === 'bulk'
        ? { rps: j.mibPerS ?? nan, p50Ms: nan, p90Ms: nan, p99Ms: nan, requests: (j.bytes ?? 0) / 2 ** 20, errors: j.errors, non2xx: 0, problems: j.problems }
        : {
            rps: j.connPerS ?? nan,
            p50Ms: j.p50Ms ?? nan,
            p90Ms: j.p90Ms ?? nan,
            p99Ms: j.p99Ms ?? nan,
            requests: j.connections ?? 0,
            errors: j.errors,
            non2xx: 0,
            problems: j.problems,
          };
    },
  };
}

/**
 * One exchange with a tcp-origin, directly or through a proxy: `bulk` sends 64 KiB, half-closes and
 * expects the sink's "65536\n"; `rate` sends one byte and expects it back and the close.
 */
function tcpProbe(port: number, test: TcpTest, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const payload = test === 'bulk' ? Buffer.alloc(65536, 0x61) : Buffer.from('x');
    const expected = test === 'bulk' ? `${payload.length}\n` : 'x';
    let got = '';
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => sock.destroy(new Error(`timeout after ${timeoutMs} ms (got ${JSON.stringify(got)})`)), timeoutMs);
    sock.setEncoding('latin1');
    sock.once('connect', () => (test === 'bulk' ? sock.end(payload) : sock.write(payload)));
    sock.on('data', (d: string) => {
      got += d;
      if (test === 'rate' && got.length >= 1) sock.end();
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once('close', (hadError) => {
      clearTimeout(timer);
      if (hadError) return;
      if (got === expected) resolve();
      else reject(new Error(`expected ${JSON.stringify(expected)} then the close, got ${JSON.stringify(got.slice(0, 80))}`));
    });
  });
}

/** Probes `port` (a rate exchange) until it answers, the process dies, or the deadline passes. */
async function waitTcpReady(port: number, cp: ChildProcess, logFile: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(cp)) throw new Error(`exited (code ${cp.exitCode}, signal ${cp.signalCode}) ${tail(logFile)}`);
    try {
      return await tcpProbe(port, 'rate');
    } catch (err) {
      last = errorMessage(err);
    }
    await sleep(100);
  }
  throw new Error(`not ready after ${timeoutMs} ms (${last}) ${tail(logFile)}`);
}

interface TcpTargets {
  /** The port a client uses for each test (the sink / the byte origin, or a proxy's listener in front of it). */
  ports: Record<TcpTest, number>;
  started: Started;
}

/**
 * Switchboard with two `protocol: tcp` listeners (bulk -> the sink, rate -> the byte origin), each
 * over a one-endpoint round-robin upstream, started from a YAML file with the CLI in one process,
 * as in the https suite. Access log off: tcp listeners write none yet (docs/layer4.md).
 */
async function startSwitchboardTcp(name: string, sinkPort: number, bytePort: number): Promise<TcpTargets> {
  const ports = { bulk: await freePort(), rate: await freePort() };
  const q = (s: string): string => JSON.stringify(s);
  const conf = path.join(tmpDir, `${name}.yaml`);
  fs.writeFileSync(
    conf,
    `# generated by bench/run.ts (suite tcp)
listeners:
  bulk: { address: ${q(`127.0.0.1:${ports.bulk}`)}, protocol: tcp, upstream: sink }
  rate: { address: ${q(`127.0.0.1:${ports.rate}`)}, protocol: tcp, upstream: byte }
upstreams:
  sink: { balancer: round-robin, endpoints: [ { url: ${q(`tcp://127.0.0.1:${sinkPort}`)} } ] }
  byte: { balancer: round-robin, endpoints: [ { url: ${q(`tcp://127.0.0.1:${bytePort}`)} } ] }
`,
  );
  const logFile = path.join(tmpDir, `${name}.log`);
  const cli = path.join(REPO_DIR, 'src', 'cli', 'main.ts');
  const args = [...cpuProfArgv(name), cli, '--log-level', 'warn', 'start', '-c', conf, '--access-log', 'off', '--no-watch'];
  const cp = spawnToLog(NODE, args, logFile, { ...process.env, NODE_ENV: 'production' });
  try {
    await waitTcpReady(ports.rate, cp, logFile);
  } catch (err) {
    await stopProcess(cp);
    throw new Error(`${errorMessage(err)}${isRunning(cp) ? '' : `\n    (BENCH_KEEP_TMP=1 keeps ${conf})`}`);
  }
  return { ports, started: { url: `tcp://127.0.0.1:${ports.rate}`, pid: cp.pid ?? 0, proc: cp, owned: true, logFile, graceMs: CPU_PROF_DIR ? 30_000 : undefined } };
}

/** HAProxy `mode tcp`, nbthread 1 (as in peers), balance roundrobin, a frontend per test; no log (Switchboard's tcp listeners write none). */
async function startHaproxyTcp(name: string, sinkPort: number, bytePort: number): Promise<TcpTargets> {
  const ports = { bulk: await freePort(), rate: await freePort() };
  const { cp, logFile } = spawnHaproxy(
    name,
    `# generated by bench/run.ts (suite tcp)
global
  nbthread 1
  maxconn 4096

defaults
  mode tcp
  timeout connect 5s
  timeout client 65s
  timeout server 65s

frontend bulk
  bind 127.0.0.1:${ports.bulk}
  default_backend sink

frontend rate
  bind 127.0.0.1:${ports.rate}
  default_backend byte

backend sink
  balance roundrobin
  server sink 127.0.0.1:${sinkPort}

backend byte
  balance roundrobin
  server byte 127.0.0.1:${bytePort}
`,
  );
  try {
    await waitTcpReady(ports.rate, cp, logFile);
  } catch (err) {
    await stopProcess(cp);
    throw err;
  }
  return { ports, started: { url: `tcp://127.0.0.1:${ports.rate}`, pid: cp.pid ?? 0, proc: cp, owned: true, logFile } };
}

interface TcpRatio {
  /** Ratio of the medians: MiB/s (bulk) or conn/s (rate). */
  throughput: number;
  /** Ratio of the medians of the measured process's CPU per MiB / per connection (not for `/ direct`: that is the origin's). */
  cpu: number | null;
  /** rate only: p50, p99 of connect + one-byte exchange. */
  p50: number | null;
  p99: number | null;
  rss: number;
  /** `switchboard / haproxy` only: each switchboard run over the mean of the haproxy runs of the same test around it. */
  paired?: { median: number; min: number; max: number; pairs: number; haproxyAAMin: number; haproxyAAMax: number };
}

interface TcpReport {
  config: Record<string, unknown>;
  proxies: SubjectStatus[];
  /** The measured subjects: "<direct|switchboard|haproxy> <bulk|rate>". */
  subjects: SubjectStatus[];
  rounds: RoundResult[];
  /** As in the other suites; for bulk, rps is MiB/s, requests MiB, cpuUsPerReq CPU us per MiB (cpuSPerGiB added). */
  summary: (SubjectSummary & { cpuSPerGiB?: number | null })[];
  /** ratios[test]["switchboard / direct" | "switchboard / haproxy" | "haproxy / direct"]. */
  ratios: Partial<Record<TcpTest, Record<string, TcpRatio>>>;
}

/** Switchboard's tcp listener against a direct connection and HAProxy `mode tcp`: bulk MiB/s and connections/s. */
async function tcpSuite(): Promise<TcpReport | null> {
  heading('tcp: layer 4, Switchboard vs direct and HAProxy mode tcp');
  const tests = TCP_TESTS as TcpTest[];
  const gib = TCP_BYTES / 2 ** 30;
  console.log(
    `  ${TCP_ROUNDS} round(s); each run preceded by a warm-up (${TCP_WARMUP_S}s, ${TCP_FIRST_WARMUP_S}s the first time); runs rotate through the subjects each round.`,
  );
  if (tests.includes('bulk')) {
    console.log(
      `  bulk: ${fmt(TCP_BYTES / 2 ** 20, 0)} MiB in total over ${TCP_CONNECTIONS} connection(s) into a sink (bench/tcp-origin.ts --mode=sink); ` +
        'wall time until the sink has acknowledged every byte (client half-closes, the sink answers its count).',
    );
  }
  if (tests.includes('rate')) {
    console.log(
      `  rate: ${TCP_RATE_CONCURRENCY} loops x ${TCP_RATE_DURATION_S}s of connect, one byte each way, close (bench/tcp-origin.ts --mode=byte); ` +
        'latency = connect start to the byte back.',
    );
  }
  console.log('  client: bench/tcp-client.ts in its own process; one sink and one byte origin shared by all subjects.');
  console.log('  equal footing: haproxy nbthread 1, Switchboard one process (tcp listeners, started with the CLI); neither logs connections.\n');

  const config = {
    rounds: TCP_ROUNDS,
    warmupS: TCP_WARMUP_S,
    firstWarmupS: TCP_FIRST_WARMUP_S,
    tests,
    bulk: { bytes: TCP_BYTES, connections: TCP_CONNECTIONS },
    rate: { durationS: TCP_RATE_DURATION_S, concurrency: TCP_RATE_CONCURRENCY },
  };
  if (!haproxyBin) console.log('skipping haproxy: not installed; no switchboard / haproxy ratios');

  const origins: Origin[] = [];
  const proxies: SubjectStatus[] = [];
  const targets = new Map<string, TcpTargets>();
  const running = new Map<string, Started>();
  const runs = new Map<string, Started>();
  const statuses: SubjectStatus[] = [];
  let rounds: RoundResult[] = [];
  try {
    for (const mode of ['sink', 'byte'] as const) {
      const { cp, port, logFile } = await spawnNodeChild('tcp-origin.ts', [`--mode=${mode}`], `tcp-origin-${mode}`);
      origins.push({ url: `tcp://127.0.0.1:${port}`, port, proc: cp, logFile, delayMs: 0 });
    }
    const [sink, byte] = origins;
    log(`tcp origins: sink ${sink.url} (pid ${sink.proc.pid}), byte ${byte.url} (pid ${byte.proc.pid})`);

    const starters: Record<(typeof TCP_PROXIES)[number], { description: string; unavailable: string | null; start: () => Promise<TcpTargets> }> = {
      direct: {
        description: 'the origins, no proxy (CPU/RSS are the origin\u2019s: the sink, or the byte origin)',
        unavailable: null,
        start: async () => ({
          ports: { bulk: sink.port, rate: byte.port },
          started: { url: byte.url, pid: 0, proc: byte.proc, owned: false, logFile: byte.logFile },
        }),
      },
      switchboard: {
        description: 'Switchboard, two protocol: tcp listeners, round robin over one endpoint each; started with the CLI from a YAML config',
        unavailable: fs.existsSync(path.join(REPO_DIR, 'src', 'cli', 'main.ts')) ? null : 'src/cli/main.ts not found',
        start: () => startSwitchboardTcp('tcp-switchboard', sink.port, byte.port),
      },
      haproxy: {
        description: 'HAProxy, mode tcp, nbthread 1, balance roundrobin, no log',
        unavailable: haproxyBin ? null : 'haproxy is not installed',
        start: () => startHaproxyTcp('tcp-haproxy', sink.port, byte.port),
      },
    };
    for (const name of TCP_PROXIES) {
      if (shuttingDown) return null;
      const s = starters[name];
      if (s.unavailable) {
        proxies.push({ name, description: s.description, status: 'skipped', reason: s.unavailable });
        continue;
      }
      try {
        const t = await s.start();
        try {
          for (const test of tests) await tcpProbe(t.ports[test], test);
        } catch (err) {
          if (t.started.owned) await stopProcess(t.started.proc, t.started.graceMs);
          throw new Error(`sanity check failed: ${errorMessage(err)}`);
        }
        targets.set(name, t);
        if (t.started.owned) running.set(name, t.started);
        proxies.push({ name, description: s.description, status: 'ok' });
        log(`started ${name}: bulk port ${t.ports.bulk}, rate port ${t.ports.rate}${t.started.owned ? ` (pid ${t.started.pid})` : ''}`);
      } catch (err) {
        const reason = `failed to start: ${errorMessage(err).trim()}`;
        console.log(`skipping ${name}: ${reason}`);
        proxies.push({ name, description: s.description, status: 'failed', reason });
      }
    }
    if (!targets.has('switchboard') && !targets.has('haproxy')) throw new Error('neither switchboard nor haproxy could be started');

    // One measured subject per target and test, as in the https suite: "<target> bulk", "<target> rate".
    const order: string[] = [];
    for (const test of tests) {
      const gen = makeTcpClient(test);
      for (const name of TCP_PROXIES) {
        const t = targets.get(name);
        const subject = `${name} ${test}`;
        const description = `${name}, ${TCP_TEST_LABEL[test]}`;
        if (!t) {
          statuses.push({ name: subject, description, status: 'skipped', reason: `${name} did not start` });
          continue;
        }
        // direct: the CPU/RSS measured are the origin's (the sink for bulk, the byte origin for rate).
        const origin = test === 'bulk' ? sink : byte;
        const pid = name === 'direct' ? (origin.proc.pid ?? 0) : t.started.pid;
        const proc = name === 'direct' ? origin.proc : t.started.proc;
        runs.set(subject, {
          ...t.started,
          pid,
          proc,
          url: `tcp://127.0.0.1:${t.ports[test]}`,
          loadgen: gen,
          connections: test === 'bulk' ? TCP_CONNECTIONS : TCP_RATE_CONCURRENCY,
        });
        statuses.push({ name: subject, description, status: 'ok' });
        order.push(subject);
      }
    }
    const plan: RoundsPlan = {
      label: 'tcp',
      rounds: TCP_ROUNDS,
      durationS: TCP_RATE_DURATION_S, // rate runs; bulk runs last as long as BENCH_TCP_BYTES takes
      warmupS: TCP_WARMUP_S,
      firstWarmupS: TCP_FIRST_WARMUP_S,
      connections: TCP_RATE_CONCURRENCY,
    };
    const bulkRuns = tests.includes('bulk') ? TCP_ROUNDS * order.filter((n) => n.endsWith(' bulk')).length : 0;
    log(
      `\ntcp: running ${order.join(', ')}; about ${Math.ceil(plannedSeconds(order, plan) - bulkRuns * TCP_RATE_DURATION_S)} s ` +
        `plus the time ${bulkRuns} bulk run(s) of ${fmt(gib, 2)} GiB take\n`,
    );
    rounds = await runRounds(makeTcpClient('rate'), order, runs, statuses, plan);
  } finally {
    await stopAll(running, origins);
  }
  if (shuttingDown) return null;

  const names = tests.flatMap((test) => TCP_PROXIES.map((n) => `${n} ${test}`));
  const summary: TcpReport['summary'] = summarize(names, rounds).map((s) =>
    s.subject.endsWith(' bulk') ? { ...s, cpuSPerGiB: s.cpuUsPerReq === null ? null : (s.cpuUsPerReq * 1024) / 1e6 } : s,
  );
  const find = (subject: string): TcpReport['summary'][number] | undefined => summary.find((s) => s.subject === subject);

  if (tests.includes('bulk')) {
    console.log(`\nBulk throughput (median of ${TCP_ROUNDS} round(s); ${fmt(gib, 2)} GiB over ${TCP_CONNECTIONS} connection(s) per run):\n`);
    printTable(
      ['subject', 'MiB/s', 'CPU s/GiB', 'CPU %', 'RSS MB', 'errors', 'rounds'],
      summary
        .filter((s) => s.subject.endsWith(' bulk'))
        .map((s) => [s.subject, fmt(s.rps, 0), fmt(s.cpuSPerGiB, 3), fmt(s.cpuPct, 0), fmt(s.rssMB, 1), String(s.errors), String(s.rounds)]),
    );
    console.log('  MiB/s: bytes acknowledged by the sink / wall time from the first connect to the last acknowledgement.');
    console.log('  CPU s/GiB, CPU %: the proxy process (direct: the sink), user + system, all threads; 100 % = one core.');
  }
  if (tests.includes('rate')) {
    console.log(`\nConnection rate (median of ${TCP_ROUNDS} round(s); ${TCP_RATE_CONCURRENCY} loops x ${TCP_RATE_DURATION_S}s):\n`);
    printTable(
      ['subject', 'conn/s', 'p50 ms', 'p90 ms', 'p99 ms', 'CPU us/conn', 'CPU %', 'RSS MB', 'errors', 'rounds'],
      summary
        .filter((s) => s.subject.endsWith(' rate'))
        .map((s) => [
          s.subject,
          fmt(s.rps, 0),
          fmt(s.p50Ms, 3),
          fmt(s.p90Ms, 3),
          fmt(s.p99Ms, 3),
          fmt(s.cpuUsPerReq, 1),
          fmt(s.cpuPct, 0),
          fmt(s.rssMB, 1),
          String(s.errors),
          String(s.rounds),
        ]),
    );
    console.log('  latency: connect start to the byte back (the connection then closes); CPU: the proxy process (direct: the byte origin).');
  }

  const ratios: TcpReport['ratios'] = {};
  const lines: string[] = [];
  const range = (lo: number, hi: number): string => (Number.isFinite(lo) ? `${fmt(lo, 2)}-${fmt(hi, 2)}` : 'n/a');
  for (const test of tests) {
    const testRounds = rounds.filter((r) => r.subject.endsWith(` ${test}`));
    pairWithBaseline(testRounds, `haproxy ${test}`);
    const paired = (subject: string): number[] => testRounds.filter((r) => r.subject === subject && r.vsBaseline !== undefined).map((r) => r.vsBaseline!.rps);
    ratios[test] = {};
    for (const [a, b] of [
      ['switchboard', 'direct'],
      ['switchboard', 'haproxy'],
      ['haproxy', 'direct'],
    ] as const) {
      const sa = find(`${a} ${test}`);
      const sb = find(`${b} ${test}`);
      if (!sa || !sb) continue;
      const r: TcpRatio = {
        throughput: sa.rps / sb.rps,
        cpu: b !== 'direct' && sa.cpuUsPerReq !== null && sb.cpuUsPerReq ? sa.cpuUsPerReq / sb.cpuUsPerReq : null,
        p50: test === 'rate' ? sa.p50Ms / sb.p50Ms : null,
        p99: test === 'rate' ? sa.p99Ms / sb.p99Ms : null,
        rss: sa.rssMB !== null && sb.rssMB ? sa.rssMB / sb.rssMB : Number.NaN,
      };
      if (a === 'switchboard' && b === 'haproxy') {
        const pairs = paired('switchboard ' + test);
        const aa = paired('haproxy ' + test);
        r.paired = {
          median: median(pairs),
          min: pairs.length ? Math.min(...pairs) : Number.NaN,
          max: pairs.length ? Math.max(...pairs) : Number.NaN,
          pairs: pairs.length,
          haproxyAAMin: aa.length ? Math.min(...aa) : Number.NaN,
          haproxyAAMax: aa.length ? Math.max(...aa) : Number.NaN,
        };
      }
      const key = `${a} / ${b}`;
      ratios[test][key] = r;
      const unit = test === 'bulk' ? 'MiB/s' : 'conn/s';
      const cpuUnit = test === 'bulk' ? 'CPU/GiB' : 'CPU/conn';
      lines.push(
        `  ${`${test}: ${key}`.padEnd(28)} ${unit} = ${fmt(r.throughput, 2)}` +
          (r.p50 !== null ? `   p50 = ${fmt(r.p50, 2)}   p99 = ${fmt(r.p99, 2)}` : '') +
          (r.cpu !== null ? `   ${cpuUnit} = ${fmt(r.cpu, 2)}   RSS = ${fmt(r.rss, 2)}` : '') +
          (r.paired ? `   paired ${unit} = ${fmt(r.paired.median, 2)} (${range(r.paired.min, r.paired.max)}, haproxy A/A ${range(r.paired.haproxyAAMin, r.paired.haproxyAAMax)})` : ''),
      );
    }
  }
  if (lines.length > 0) {
    console.log('\nRatios (MiB/s, conn/s: higher is better; p50, p99, CPU, RSS: lower is better):');
    for (const l of lines) console.log(l);
    console.log('  CPU and RSS ratios only between proxies (direct\u2019s are the origin\u2019s). paired: median (min-max) of each switchboard run over the');
    console.log('  mean of the haproxy runs of the same test around it; haproxy A/A: the same for haproxy against itself (the noise).');
  } else {
    console.log('\nno ratios: switchboard and direct or haproxy must both run');
  }
  for (const st of [...proxies, ...statuses]) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);
  return { config, proxies, subjects: statuses, rounds, summary, ratios };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = new Date();
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-'));
  if (CPU_PROF_DIR) fs.mkdirSync(CPU_PROF_DIR, { recursive: true });

  const wrkBin = LOADGEN_PREF === 'autocannon' ? null : findExecutable('wrk');
  let loadgen: LoadGen | null = wrkBin ? makeWrk(wrkBin) : null;
  if (!loadgen) {
    if (LOADGEN_PREF === 'wrk') log('wrk requested (BENCH_LOADGEN=wrk) but not installed; falling back to autocannon');
    else if (LOADGEN_PREF !== 'autocannon') log('wrk is not installed; using autocannon (in a separate process)');
    loadgen = makeAutocannon();
  }
  if (!loadgen) throw new Error('no load generator: install wrk, or run npm install (autocannon devDependency)');

  const versions: Record<string, string> = {
    node: process.version,
    loadgen: loadgen.version,
    nginx: nginxBin ? versionOf(nginxBin, ['-v']) : 'not installed',
    haproxy: haproxyBin ? versionOf(haproxyBin, ['-v']) : 'not installed',
    h2load: h2loadBin ? versionOf(h2loadBin, ['--version']) : 'not installed',
    openssl: opensslBin ? versionOf(opensslBin, ['version']) : 'not installed',
  };

  console.log('Switchboard benchmark');
  console.log(`  suites: ${SUITES.join(', ')} (BENCH_SUITES); load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''} (${loadgen.version})`);
  console.log(`  machine: ${os.cpus().length} core(s) (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}, node ${process.version}`);
  console.log('  note: load generator, origins and proxy share this machine\u2019s cores; compare ratios, not absolutes.');
  const load1 = os.loadavg()[0];
  console.log(
    `  load average (1 min) at start: ${load1.toFixed(2)}` +
      (load1 > os.cpus().length * 0.5 ? '  (!) other processes are busy on this machine; expect noisy results' : ''),
  );
  if (CPU_PROF_DIR) console.log(`  BENCH_CPU_PROF: Switchboard children write CPU profiles to ${CPU_PROF_DIR} (profiling slows them down)`);

  const errors: Record<string, string> = {};
  let peers: PeersReport | null = null;
  let httpsReport: HttpsReport | null = null;
  let algorithms: AlgorithmsReport | null = null;
  let slow: SlowReport | null = null;
  let tcp: TcpReport | null = null;
  for (const suite of ALL_SUITES) {
    if (!SUITES.includes(suite) || shuttingDown) continue;
    try {
      if (suite === 'peers') peers = await peersSuite(loadgen);
      else if (suite === 'https') httpsReport = await httpsSuite(loadgen);
      else if (suite === 'algorithms') algorithms = await algorithmsSuite(loadgen);
      else if (suite === 'slow') slow = await slowSuite(loadgen);
      else tcp = await tcpSuite();
    } catch (err) {
      if (shuttingDown) return;
      errors[suite] = errorMessage(err);
      console.log(`\nsuite ${suite} failed: ${errors[suite]}`);
    }
  }
  if (shuttingDown) return;

  // ---- JSON results (peers at the top level, as before; the other suites in their own keys)
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${startedAt.toISOString().replace(/:/g, '-')}.json`);
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    suites: SUITES,
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
      bodyBytes,
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
    subjects: peers?.subjects ?? [],
    rounds: peers?.rounds ?? [],
    summary: peers?.summary ?? [],
    ratios: peers?.ratios ?? {},
    target: peers?.target ?? null,
    https: httpsReport,
    algorithms,
    slowOrigin: slow,
    tcp,
  };
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
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
