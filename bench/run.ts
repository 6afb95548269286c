// Switchboard benchmark: `npm run bench` (node bench/run.ts). Not part of the tests.
//
// Measures, interleaved in rounds, the req/s, p50/p99 latency, RSS and CPU of:
//   direct        one origin, no proxy
//   switchboard   our gateway (bench/switchboard-child.ts), access log on
//   node-minimal  ~30-line node:http + undici forwarder (bench/minimal-forwarder.ts), the floor of Node's overhead
//   nginx         reverse proxy, 1 worker, upstream keepalive (when installed)
//   haproxy       reverse proxy, 1 thread, http-reuse (when installed)
// See bench/README.md for the knobs (BENCH_DURATION, BENCH_ROUNDS, BENCH_CONNECTIONS, ...).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- configuration

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_DIR = path.resolve(BENCH_DIR, '..');
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const NODE = process.execPath; // the Node 24 running this script (node_modules/.bin/node under npm run)

function envNumber(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`);
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

function httpGet(url: string, timeoutMs = 2000): Promise<HttpProbe> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls `url` until it answers 200, the process dies, or the deadline passes. */
async function waitReady(url: string, cp: ChildProcess, logFile: string, timeoutMs = 10_000): Promise<HttpProbe> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(cp)) throw new Error(`exited (code ${cp.exitCode}, signal ${cp.signalCode}) ${tail(logFile)}`);
    try {
      const probe = await httpGet(url);
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
): Promise<{ cp: ChildProcess; port: number; logFile: string }> {
  const logFile = path.join(tmpDir, `${logName}.log`);
  const errFd = fs.openSync(logFile, 'a');
  const cp = track(
    spawn(NODE, [path.join(BENCH_DIR, script), ...args], {
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
  p99Ms: number;
  requests: number;
  errors: number;
  non2xx: number;
}

interface LoadGen {
  name: string;
  version: string;
  run(url: string, seconds: number, connections: number): Promise<LoadResult>;
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
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`could not parse wrk output:\n${out}`);
  return {
    rps: Number(rps[1]),
    p50Ms: wrkDurationMs(p50[1], p50[2]),
    p99Ms: wrkDurationMs(p99[1], p99[2]),
    requests: total ? Number(total[1]) : Number.NaN,
    errors: sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

function makeWrk(bin: string): LoadGen {
  return {
    name: 'wrk',
    version: versionOf(bin, ['--version']),
    async run(url, seconds, connections) {
      const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url];
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
    async run(url, seconds, connections) {
      // Separate process, so the load generator never shares an event loop with a subject.
      const args = [cli, '-c', String(connections), '-d', String(seconds), '-j', '-n', url];
      const r = await runCollect(NODE, args, (seconds + 30) * 1000);
      const start = r.stdout.indexOf('{');
      if (r.code !== 0 || start < 0) throw new Error(`autocannon exited ${r.code}: ${r.stderr.trim().slice(-500)}`);
      const j = JSON.parse(r.stdout.slice(start)) as {
        duration: number;
        errors: number;
        timeouts: number;
        non2xx: number;
        latency: { p50: number; p99: number };
        requests: { total: number; average: number };
      };
      return {
        rps: j.duration > 0 ? j.requests.total / j.duration : j.requests.average,
        p50Ms: j.latency.p50,
        p99Ms: j.latency.p99,
        requests: j.requests.total,
        errors: j.errors + j.timeouts,
        non2xx: j.non2xx,
      };
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
}

const nginxBin = findExecutable('nginx');
const haproxyBin = findExecutable('haproxy');

function nginxSupportsDashE(versionLine: string): boolean {
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(versionLine);
  if (!m) return false;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 1 || (maj === 1 && (min > 19 || (min === 19 && patch >= 5)));
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
      const accessLog = path.join(tmpDir, 'switchboard-access.log');
      const arg = JSON.stringify({ origins: origins.map((o) => o.url), accessLog });
      const { cp, port, logFile } = await spawnNodeChild('switchboard-child.ts', [arg], 'switchboard');
      const url = `http://127.0.0.1:${port}/`;
      await waitReady(url, cp, logFile).catch(async (err: unknown) => {
        await stopProcess(cp);
        throw err;
      });
      return { url, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile };
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
    async start(origins) {
      const bin = nginxBin as string;
      const dir = path.join(tmpDir, 'nginx');
      fs.mkdirSync(dir, { recursive: true });
      const port = await freePort();
      const accessLog = path.join(dir, 'access.log');
      const errorLog = path.join(dir, 'error.log');
      const conf = path.join(dir, 'nginx.conf');
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
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origins;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
      );
      const logFile = path.join(tmpDir, 'nginx.log');
      const fd = fs.openSync(logFile, 'a');
      const args = ['-p', `${dir}/`, '-c', conf];
      if (nginxSupportsDashE(versionOf(bin, ['-v']))) args.push('-e', errorLog);
      const cp = track(spawn(bin, args, { stdio: ['ignore', fd, fd] }));
      fs.closeSync(fd);
      const url = `http://127.0.0.1:${port}/`;
      try {
        await waitReady(url, cp, logFile);
      } catch (err) {
        await stopProcess(cp);
        throw new Error(`${errorMessage(err)} ${tail(errorLog)}`);
      }
      return { url, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile };
    },
  },
  {
    name: 'haproxy',
    description: 'HAProxy, mode http, nbthread 1, http-reuse always, access log ON (stdout to a file)',
    unavailable: () => (haproxyBin ? null : 'haproxy is not installed'),
    async start(origins) {
      const bin = haproxyBin as string;
      const port = await freePort();
      const conf = path.join(tmpDir, 'haproxy.cfg');
      fs.writeFileSync(
        conf,
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
      const accessLog = path.join(tmpDir, 'haproxy-access.log');
      const logFile = path.join(tmpDir, 'haproxy.log');
      const outFd = fs.openSync(accessLog, 'a');
      const errFd = fs.openSync(logFile, 'a');
      const cp = track(spawn(bin, ['-db', '-f', conf], { stdio: ['ignore', outFd, errFd] }));
      fs.closeSync(outFd);
      fs.closeSync(errFd);
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
  subject: string;
  rssMB: number | null;
  cpuPct: number | null;
  accessLogBytes: number | null;
  startedAt: string;
}

interface SubjectSummary {
  subject: string;
  rounds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  rssMB: number | null;
  cpuPct: number | null;
  errors: number;
  non2xx: number;
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

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const startedAt = new Date();
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-'));

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
  };

  console.log('Switchboard benchmark');
  console.log(
    `  ${ROUNDS} round(s) x ${DURATION_S}s per subject (+${WARMUP_S}s warm-up each, ${FIRST_WARMUP_S}s in round 1), ${CONNECTIONS} connections, ` +
      `${ORIGIN_COUNT} origin(s), load generator: ${loadgen.name}${loadgen.name === 'wrk' ? ' -t1' : ''}`,
  );
  console.log(`  machine: ${os.cpus().length} core(s) (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}, node ${process.version}`);
  console.log('  equal footing: nginx runs 1 worker process, haproxy 1 thread, because Node is single-threaded.');
  console.log('  access log: ON for switchboard, nginx, haproxy (to files); OFF for node-minimal (the floor) and direct.');
  console.log('  note: load generator, origins and proxy share this machine\u2019s cores; compare ratios, not absolutes.\n');

  // Origins: one child process each.
  const origins: Origin[] = [];
  const statuses: SubjectStatus[] = [];
  const running = new Map<string, Started>();
  const rounds: RoundResult[] = [];
  let expectedBody = '';

  try {
    for (let i = 0; i < ORIGIN_COUNT; i++) {
      const { cp, port, logFile } = await spawnNodeChild('origin.ts', [], `origin-${i + 1}`);
      const url = `http://127.0.0.1:${port}`;
      origins.push({ url, port, proc: cp, logFile });
    }
    expectedBody = (await waitReady(`${origins[0].url}/`, origins[0].proc, origins[0].logFile)).body;
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
      try {
        const st = await s.start(origins);
        const probe = await httpGet(st.url);
        if (probe.status !== 200 || probe.body !== expectedBody) {
          if (st.owned) await stopProcess(st.proc);
          throw new Error(`sanity check failed: HTTP ${probe.status}, ${probe.body.length}-byte body (expected 200 with ${expectedBody.length} bytes)`);
        }
        running.set(s.name, st);
        statuses.push({ name: s.name, description: s.description, status: 'ok' });
        log(`started ${s.name}: ${st.url} (pid ${st.pid})`);
      } catch (err) {
        const reason = `failed to start: ${errorMessage(err).trim()}`;
        console.log(`skipping ${s.name}: ${reason}`);
        statuses.push({ name: s.name, description: s.description, status: 'failed', reason });
      }
    }
    if (running.size === 0) throw new Error('no subject could be started');

    const order = subjects.map((s) => s.name).filter((n) => running.has(n));
    const total = order.length * (ROUNDS * (DURATION_S + WARMUP_S) + FIRST_WARMUP_S - WARMUP_S);
    log(`\nrunning ${order.join(', ')}; about ${Math.ceil(total)} s in total\n`);

    for (let round = 1; round <= ROUNDS; round++) {
      // Rotate the order each round so no subject always goes first.
      const shift = (round - 1) % order.length;
      const thisRound = [...order.slice(shift), ...order.slice(0, shift)];
      for (const name of thisRound) {
        if (shuttingDown) return;
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
          const warmup = round === 1 ? FIRST_WARMUP_S : WARMUP_S;
          if (warmup > 0) await loadgen.run(st.url, warmup, CONNECTIONS);
          const cpu0 = cpuSeconds(st.pid);
          const t0 = process.hrtime.bigint();
          const at = new Date().toISOString();
          const r = await loadgen.run(st.url, DURATION_S, CONNECTIONS);
          const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
          const cpu1 = cpuSeconds(st.pid);
          const rss = rssMB(st.pid);
          let accessLogBytes: number | null = null;
          if (st.accessLog) {
            try {
              accessLogBytes = fs.statSync(st.accessLog).size;
            } catch {
              accessLogBytes = 0;
            }
          }
          const cpuPct = cpu0 !== null && cpu1 !== null && wallS > 0 ? ((cpu1 - cpu0) / wallS) * 100 : null;
          const rr: RoundResult = { round, subject: name, ...r, rssMB: rss, cpuPct, accessLogBytes, startedAt: at };
          rounds.push(rr);
          const warn = r.errors + r.non2xx > 0 ? `  (!) ${r.errors} socket errors, ${r.non2xx} non-2xx` : '';
          log(
            `  round ${round}/${ROUNDS}  ${name.padEnd(12)} ${fmt(r.rps, 0).padStart(8)} req/s  p50 ${fmt(r.p50Ms, 2)} ms  ` +
              `p99 ${fmt(r.p99Ms, 2)} ms  rss ${fmt(rss, 1)} MB  cpu ${fmt(cpuPct, 0)}%${warn}`,
          );
        } catch (err) {
          if (shuttingDown) return;
          log(`  round ${round}/${ROUNDS}  ${name}: load run failed: ${errorMessage(err)}`);
        }
      }
    }
  } finally {
    if (!shuttingDown) {
      await Promise.all([...running.values()].filter((s) => s.owned).map((s) => stopProcess(s.proc)));
      await Promise.all(origins.map((o) => stopProcess(o.proc)));
    }
  }
  if (shuttingDown) return;

  // ---- summary
  const summary: SubjectSummary[] = [];
  for (const s of subjects) {
    const rs = rounds.filter((r) => r.subject === s.name);
    if (rs.length === 0) continue;
    const nums = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
    const rss = nums(rs.map((r) => r.rssMB));
    const cpu = nums(rs.map((r) => r.cpuPct));
    summary.push({
      subject: s.name,
      rounds: rs.length,
      rps: median(rs.map((r) => r.rps)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      rssMB: rss.length ? median(rss) : null,
      cpuPct: cpu.length ? median(cpu) : null,
      errors: rs.reduce((a, r) => a + r.errors, 0),
      non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    });
  }

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

  const ratios: Record<string, Record<string, { rps: number; p50: number; p99: number; rss: number }>> = {};
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
  let target: { ratio: number; met: boolean } | null = null;
  console.log('');
  if (sb && nm) {
    const ratio = sb.rps / nm.rps;
    target = { ratio, met: ratio >= 0.9 };
    console.log(`switchboard / node-minimal req/s = ${ratio.toFixed(2)} (target >= 0.90)${ratio >= 0.9 ? '' : '  BELOW TARGET'}`);
  } else {
    console.log(`switchboard / node-minimal req/s = n/a (target >= 0.90): ${!sb ? 'switchboard' : 'node-minimal'} did not run`);
  }
  for (const st of statuses) if (st.status !== 'ok') console.log(`  ${st.name}: ${st.status} (${st.reason})`);

  // ---- JSON results
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${startedAt.toISOString().replace(/:/g, '-')}.json`);
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    config: {
      durationS: DURATION_S,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      warmupS: WARMUP_S,
      firstWarmupS: FIRST_WARMUP_S,
      origins: ORIGIN_COUNT,
      loadgen: loadgen.name,
      subjectsFilter: SUBJECT_FILTER,
      bodyBytes: Buffer.byteLength(expectedBody),
    },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      totalMemMB: Math.round(os.totalmem() / 2 ** 20),
      platform: os.platform(),
      release: os.release(),
      versions,
    },
    subjects: statuses,
    rounds,
    summary,
    ratios,
    target,
  };
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nraw rounds and summary written to ${path.relative(process.cwd(), file)}`);
}

try {
  await main();
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
} finally {
  if (!shuttingDown) await cleanup();
}
