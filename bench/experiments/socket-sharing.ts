// Experiment (issue 11 §1): how should worker processes share a listening socket? Not part of the
// tests nor of `npm run bench`; run it by hand:
//
//   node bench/experiments/socket-sharing.ts                 # everything (about 6 minutes, more on a busy machine: up to SS_QUIET_WAIT=30 s before each run)
//   SS_ROUNDS=1 SS_DURATION=4 node bench/experiments/socket-sharing.ts   # quick look
//   SS_PARTS=load | SS_PARTS=replace                         # only one of the two parts
//
// The proxy is the same small forwarder in every mode (node:http + one undici Pool to the origin,
// like bench/minimal-forwarder.ts), run as:
//   single     one process
//   none       node:cluster, 2 workers, cluster.SCHED_NONE: the primary binds the socket and hands
//              it to the workers, which all accept on it (one accept queue, the kernel picks a waiter)
//   rr         node:cluster, 2 workers, cluster.SCHED_RR (Node's default on Linux): the primary
//              accepts every connection and passes it to a worker over IPC, round robin
//   reuseport  node:cluster, 2 workers, each `listen({ port, reusePort: true, exclusive: true })`:
//              one socket (and accept queue) per worker, the kernel hashes each new connection to one
//
// Part `load`: wrk against each mode with (a) 100 keep-alive connections and (b) a new connection per
// request (`Connection: close`), interleaved rounds. Reported per run: req/s, p99, the CPU time of
// every process of the proxy (primary included) per request, the CPU each party used (proxy,
// origin, wrk: who saturated), and how connections and requests spread over the workers.
//
// Part `replace`: a Node client (this file, role `client`) opens a new connection per request from
// 64 loops; meanwhile the primary replaces its oldest worker 5 times (fork a new one, wait until it
// listens, then close the old one's listener and let it finish). Counted: requests answered, and
// failures by error code (ECONNRESET, ECONNREFUSED, ...), for `none`, `rr` and `reuseport`, the
// last with net.ipv4.tcp_migrate_req 0 and 1 when this process may write that sysctl (it restores it).
//
// Origin: nginx answering a fixed 100-byte body (`return 200`, one worker) when installed, the
// cheapest origin there is, so that the proxy, not the origin, is what the cores are spent on;
// else bench/origin.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { freePort } from '../lib/probes.ts';
import { sleep } from '../lib/processes.ts';

const SELF = fileURLToPath(import.meta.url);
const BENCH_DIR = path.resolve(path.dirname(SELF), '..');
const role = process.argv[2] ?? 'main';
const opt = (name: string, fallback: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;

type Mode = 'single' | 'none' | 'rr' | 'reuseport';
const MODES: Mode[] = ['single', 'none', 'rr', 'reuseport'];

/** What a worker counted since its start or the last reset: per worker, never shared. */
interface WorkerStats {
  pid: number;
  conns: number;
  reqs: number;
}

// ================================================================ role proxy (primary and workers)

function runWorker(mode: Mode, port: number, origin: string): void {
  const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 60_000 });
  const stats: WorkerStats = { pid: process.pid, conns: 0, reqs: 0 };
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    stats.reqs++;
    pool
      .stream({ path: req.url ?? '/', method: 'GET', headers: { host: req.headers.host ?? '' } }, ({ statusCode, headers }) => {
        res.writeHead(statusCode, { 'content-type': String(headers['content-type'] ?? 'text/plain'), 'content-length': String(headers['content-length'] ?? '') });
        return res;
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
  });
  server.on('connection', () => stats.conns++);
  const send = (m: unknown): void => {
    if (process.send) process.send(m);
  };
  const listenOpts: net.ListenOptions = mode === 'reuseport' ? { port, host: '127.0.0.1', reusePort: true, exclusive: true } : { port, host: '127.0.0.1' };
  server.listen(listenOpts, () => send({ ready: process.pid }));
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stats') send({ stats: { ...stats } });
    else if (m.cmd === 'reset') {
      stats.conns = 0;
      stats.reqs = 0;
      send({ stats: { ...stats } });
    } else if (m.cmd === 'close') {
      // Stop accepting; let open connections finish (they are Connection: close in that test), then go.
      server.close(() => void pool.close().finally(() => process.exit(0)));
      server.closeIdleConnections();
    }
  });
}

/** The primary: forks the workers, answers the orchestrator's commands over IPC (stats, reset, replace). */
function runPrimary(mode: Mode, workers: number, port: number, origin: string): void {
  cluster.schedulingPolicy = mode === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  cluster.setupPrimary({ exec: SELF, args: ['proxy', `--mode=${mode}`, `--port=${port}`, `--origin=${origin}`, '--worker=1'] });
  const live: Worker[] = [];
  const fork = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      w.once('message', (m: { ready?: number }) => (m.ready ? resolve(w) : reject(new Error('unexpected message'))));
      w.once('exit', (code) => reject(new Error(`worker exited (${code}) before listening`)));
      live.push(w);
      w.once('exit', () => live.splice(live.indexOf(w), 1));
    });
  const ask = (w: Worker, cmd: string): Promise<WorkerStats> =>
    new Promise((resolve) => {
      const on = (m: { stats?: WorkerStats }): void => {
        if (!m.stats) return;
        w.off('message', on);
        resolve(m.stats);
      };
      w.on('message', on);
      w.send({ cmd });
    });
  const reply = (m: unknown): void => {
    if (process.send) process.send(m);
  };
  process.on('message', async (m: { cmd: string }) => {
    if (m.cmd === 'stats' || m.cmd === 'reset') {
      reply({ primary: process.pid, workers: await Promise.all(live.map((w) => ask(w, m.cmd))) });
    } else if (m.cmd === 'replace') {
      const old = live[0];
      const t0 = performance.now();
      await fork();
      const listening = performance.now() - t0;
      const exited = new Promise<void>((resolve) => old.once('exit', () => resolve()));
      old.send({ cmd: 'close' });
      await exited;
      reply({ replaced: { listeningMs: listening, totalMs: performance.now() - t0 } });
    }
  });
  void Promise.all(Array.from({ length: workers }, fork)).then(() => reply({ ready: process.pid }));
  const stop = (): void => {
    for (const w of live) w.process.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
}

// ================================================================ role client (replacement test)

/** Loops of connect, GET, read, close; counts answers and failures by code; prints JSON on SIGTERM. */
function runClient(port: number, concurrency: number): void {
  let ok = 0;
  let bad = 0;
  const errors: Record<string, number> = {};
  let stopping = false;
  const once = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else bad++;
          resolve();
        });
        res.on('error', (err: NodeJS.ErrnoException) => {
          errors[err.code ?? err.message] = (errors[err.code ?? err.message] ?? 0) + 1;
          resolve();
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        errors[err.code ?? err.message] = (errors[err.code ?? err.message] ?? 0) + 1;
        resolve();
      });
    });
  const loop = async (): Promise<void> => {
    while (!stopping) await once();
  };
  const loops = Array.from({ length: concurrency }, loop);
  process.on('SIGTERM', () => {
    stopping = true;
    void Promise.all(loops).then(() => {
      process.stdout.write(`${JSON.stringify({ ok, non200: bad, errors })}\n`);
      process.exit(0);
    });
  });
  process.send?.({ ready: true });
}

// ================================================================ role main (orchestrator)

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) of `pid` so far; `children` adds those of its waited-for children. */
function cpuOf(statLine: string, children = false): number {
  const f = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  const own = Number(f[11]) + Number(f[12]);
  return (children ? own + Number(f[13]) + Number(f[14]) : own) / CLK_TCK;
}
function cpuSeconds(pid: number): number {
  try {
    return cpuOf(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return Number.NaN;
  }
}
/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function machineJiffies(): { busy: number; total: number } {
  const f = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total }; // idle and iowait are not busy
}
function rssMB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

const children = new Set<ChildProcess>();
function track(cp: ChildProcess): ChildProcess {
  children.add(cp);
  cp.once('exit', () => children.delete(cp));
  return cp;
}
process.on('exit', () => {
  for (const cp of children) if (cp.pid) process.kill(cp.pid, 'SIGKILL');
});
if (role === 'main') {
  // So that 'exit' (above) runs: the children are killed by pid.
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
}

function which(bin: string): string | null {
  for (const d of ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin', '/sbin']) if (fs.existsSync(path.join(d, bin))) return path.join(d, bin);
  return null;
}

interface OriginProc {
  url: string;
  pids: () => number[];
  stop: () => void;
}

/** nginx `return 200` with a 100-byte body (one worker: master + worker), or bench/origin.ts. */
async function startOrigin(tmp: string): Promise<OriginProc> {
  const port = await freePort();
  const nginx = which('nginx');
  let cp: ChildProcess;
  if (nginx) {
    const dir = path.join(tmp, 'nginx');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'nginx.conf'),
      `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 65s;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  server { listen 127.0.0.1:${port}; default_type text/plain; location / { return 200 '${'x'.repeat(99)}\n'; } } }
`,
    );
    cp = track(spawn(nginx, ['-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { stdio: 'ignore' }));
  } else {
    cp = track(spawn(process.execPath, [path.join(BENCH_DIR, 'origin.ts')], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const line = await new Promise<string>((r) => cp.stdout?.once('data', (d: Buffer) => r(d.toString())));
    const url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
    return { url, pids: () => [cp.pid ?? 0], stop: () => cp.kill('SIGTERM') };
  }
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${url}/`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(50);
  }
  return { url, pids: () => [cp.pid ?? 0], stop: () => cp.kill('SIGTERM') };
}

interface Proxy {
  mode: Mode;
  port: number;
  cp: ChildProcess;
  request<T>(cmd: string): Promise<T>;
  /** Primary + workers: the processes whose CPU is the proxy's. */
  pids(): Promise<number[]>;
}

async function startProxy(mode: Mode, origin: string): Promise<Proxy> {
  const port = await freePort();
  const args = mode === 'single' ? ['proxy', '--mode=single'] : ['proxy', `--mode=${mode}`, '--workers=2'];
  const cp = track(spawn(process.execPath, [SELF, ...args, `--port=${port}`, `--origin=${origin}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await new Promise<void>((resolve, reject) => {
    cp.once('message', () => resolve());
    cp.once('exit', (c) => reject(new Error(`proxy ${mode} exited (${c})`)));
  });
  const request = <T>(cmd: string): Promise<T> =>
    new Promise((resolve) => {
      const on = (m: Record<string, unknown>): void => {
        if ((cmd === 'replace') !== 'replaced' in m) return;
        cp.off('message', on);
        resolve(m as T);
      };
      cp.on('message', on);
      cp.send({ cmd });
    });
  const pids = async (): Promise<number[]> => {
    if (mode === 'single') return [cp.pid ?? 0];
    const s = await request<{ primary: number; workers: WorkerStats[] }>('stats');
    return [s.primary, ...s.workers.map((w) => w.pid)];
  };
  return { mode, port, cp, request, pids };
}

/** Stats of a single-process proxy are its own (it answers `stats` as a worker would). */
async function workerStats(p: Proxy, cmd: 'stats' | 'reset'): Promise<WorkerStats[]> {
  if (p.mode === 'single') {
    const m = await new Promise<{ stats: WorkerStats }>((resolve) => {
      const on = (x: { stats?: WorkerStats }): void => {
        if (!x.stats) return;
        p.cp.off('message', on);
        resolve(x as { stats: WorkerStats });
      };
      p.cp.on('message', on);
      p.cp.send({ cmd });
    });
    return [m.stats];
  }
  return (await p.request<{ workers: WorkerStats[] }>(cmd)).workers;
}

interface WrkResult {
  rps: number;
  p99Ms: number;
  requests: number;
  errors: number;
  cpuS: number;
}

/** wrk -t1 in a shell that prints its own /proc stat after wrk exits: cutime/cstime = wrk's CPU. */
function runWrk(url: string, seconds: number, connections: number, close: boolean): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), url];
  return new Promise((resolve, reject) => {
    const cp = track(spawn('sh', ['-c', 'wrk "$@"; s=$?; cat /proc/$$/stat >&2; exit $s', 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    cp.stdout?.on('data', (d: Buffer) => (out += d));
    cp.stderr?.on('data', (d: Buffer) => (err += d));
    cp.once('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk: ${code} ${out} ${err}`));
      const unit = (v: string, u: string): number => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[u] ?? Number.NaN);
      const p99 = /^\s*99%\s+([\d.]+)(us|ms|s)/m.exec(out);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const statLine = err.trim().split('\n').at(-1) ?? '';
      resolve({
        rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
        p99Ms: p99 ? unit(p99[1], p99[2]) : Number.NaN,
        requests: Number(/(\d+) requests in/.exec(out)?.[1]),
        errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
        cpuS: cpuOf(statLine, true),
      });
    });
  });
}

/**
 * Waits (up to SS_QUIET_WAIT seconds, default 30) until the machine's busy CPU over one second is
 * under SS_QUIET_BUSY percent (default 30, of 100 per core), i.e. other processes leave the cores to
 * this run; returns the last busy figure seen. The machine is shared: a run measured while others
 * compile or test says little.
 */
async function waitQuiet(): Promise<number> {
  const limit = Number(process.env.SS_QUIET_BUSY ?? 30);
  const deadline = Date.now() + Number(process.env.SS_QUIET_WAIT ?? 30) * 1000;
  let busy = Number.NaN;
  do {
    const a = machineJiffies();
    await sleep(1000);
    const b = machineJiffies();
    busy = ((b.busy - a.busy) / (b.total - a.total)) * os.cpus().length * 100;
  } while (busy > limit && Date.now() < deadline);
  return busy;
}

const DURATION = Number(process.env.SS_DURATION ?? 8);
const WARMUP = Number(process.env.SS_WARMUP ?? 2);
const ROUNDS = Number(process.env.SS_ROUNDS ?? 3);
const PARTS = (process.env.SS_PARTS ?? 'load,replace').split(',');
const LOADS = [
  { name: 'keepalive', connections: 100, close: false },
  { name: 'close', connections: 100, close: true },
] as const;

interface LoadRow {
  round: number;
  mode: Mode;
  load: string;
  rps: number;
  p99Ms: number;
  errors: number;
  proxyCpuPct: number;
  proxyUsPerReq: number;
  originCpuPct: number;
  wrkCpuPct: number;
  /** The machine's busy CPU during the run (all cores, 100 = one core), and what neither party used: other processes. */
  machineCpuPct: number;
  othersCpuPct: number;
  /** The machine's busy CPU in the second before the warm-up (waitQuiet). */
  busyBeforePct: number;
  spreadConns: number[];
  spreadReqs: number[];
  rssMB: number[];
}

async function measureLoad(origin: OriginProc): Promise<LoadRow[]> {
  const rows: LoadRow[] = [];
  const proxies = new Map<Mode, Proxy>();
  for (const m of MODES) proxies.set(m, await startProxy(m, origin.url));
  for (let round = 1; round <= ROUNDS; round++) {
    const order = [...MODES.slice((round - 1) % MODES.length), ...MODES.slice(0, (round - 1) % MODES.length)];
    for (const load of LOADS) {
      for (const mode of order) {
        const p = proxies.get(mode) as Proxy;
        const url = `http://127.0.0.1:${p.port}/`;
        const quietBusy = await waitQuiet();
        await runWrk(url, WARMUP, load.connections, load.close);
        await workerStats(p, 'reset');
        const pids = await p.pids();
        const opids = origin.pids();
        const c0 = pids.map(cpuSeconds);
        const o0 = opids.map(cpuSeconds);
        const m0 = machineJiffies();
        const t0 = performance.now();
        const r = await runWrk(url, DURATION, load.connections, load.close);
        const wall = (performance.now() - t0) / 1000;
        const c1 = pids.map(cpuSeconds);
        const o1 = opids.map(cpuSeconds);
        const m1 = machineJiffies();
        const machineCpuPct = ((m1.busy - m0.busy) / (m1.total - m0.total)) * os.cpus().length * 100;
        const ws = await workerStats(p, 'stats');
        const proxyCpu = c1.reduce((a, x, i) => a + x - c0[i], 0);
        const originCpu = o1.reduce((a, x, i) => a + x - o0[i], 0);
        const row: LoadRow = {
          round,
          mode,
          load: load.name,
          rps: r.rps,
          p99Ms: r.p99Ms,
          errors: r.errors,
          proxyCpuPct: (proxyCpu / wall) * 100,
          proxyUsPerReq: (proxyCpu * 1e6) / r.requests,
          originCpuPct: (originCpu / wall) * 100,
          wrkCpuPct: (r.cpuS / wall) * 100,
          machineCpuPct,
          busyBeforePct: quietBusy,
          othersCpuPct: machineCpuPct - ((proxyCpu + originCpu + r.cpuS) / wall) * 100,
          spreadConns: ws.map((w) => w.conns),
          spreadReqs: ws.map((w) => w.reqs),
          rssMB: pids.map(rssMB),
        };
        rows.push(row);
        process.stderr.write(
          `round ${round} ${load.name.padEnd(9)} ${mode.padEnd(9)} ${row.rps.toFixed(0).padStart(6)} req/s p99 ${row.p99Ms.toFixed(2)} ms  ` +
            `cpu proxy ${row.proxyCpuPct.toFixed(0)}% (${row.proxyUsPerReq.toFixed(1)} us/req) origin ${row.originCpuPct.toFixed(0)}% wrk ${row.wrkCpuPct.toFixed(0)}% others ${row.othersCpuPct.toFixed(0)}% (busy before ${row.busyBeforePct.toFixed(0)}%)  ` +
            `conns ${row.spreadConns.join('/')} reqs ${row.spreadReqs.join('/')} errors ${row.errors}\n`,
        );
      }
    }
  }
  for (const p of proxies.values()) p.cp.kill('SIGTERM');
  return rows;
}

interface ReplaceRow {
  mode: Mode;
  migrateReq: string;
  ok: number;
  non200: number;
  errors: Record<string, number>;
  replacements: { listeningMs: number; totalMs: number }[];
}

const REPLACEMENTS = Number(process.env.SS_REPLACEMENTS ?? 5);

async function measureReplace(origin: OriginProc, mode: Mode, migrateReq: string): Promise<ReplaceRow> {
  await waitQuiet();
  const p = await startProxy(mode, origin.url);
  const client = track(spawn(process.execPath, [SELF, 'client', `--port=${p.port}`, '--concurrency=64'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }));
  let out = '';
  client.stdout?.on('data', (d: Buffer) => (out += d));
  await new Promise<void>((r) => client.once('message', () => r()));
  await sleep(1500);
  const replacements: ReplaceRow['replacements'] = [];
  for (let i = 0; i < REPLACEMENTS; i++) {
    replacements.push((await p.request<{ replaced: { listeningMs: number; totalMs: number } }>('replace')).replaced);
    await sleep(700);
  }
  const done = new Promise<void>((r) => client.once('close', () => r()));
  client.kill('SIGTERM');
  await done;
  p.cp.kill('SIGTERM');
  const res = JSON.parse(out.trim()) as { ok: number; non200: number; errors: Record<string, number> };
  const row: ReplaceRow = { mode, migrateReq, ...res, replacements };
  process.stderr.write(`replace ${mode} (tcp_migrate_req=${migrateReq}): ${res.ok} ok, ${res.non200} non-200, errors ${JSON.stringify(res.errors)}\n`);
  return row;
}

function readSysctl(): string | null {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return null;
  }
}
function writeSysctl(v: string): boolean {
  try {
    fs.writeFileSync('/proc/sys/net/ipv4/tcp_migrate_req', v);
    return readSysctl() === v;
  } catch {
    return false;
  }
}

const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'socket-sharing-'));
  const origin = await startOrigin(tmp);
  console.log(
    `socket-sharing: ${os.cpus().length} cores, node ${process.version}, origin ${origin.url} (${which('nginx') ? 'nginx return 200' : 'bench/origin.ts'}), load avg ${os.loadavg()[0].toFixed(2)}`,
  );
  const result: Record<string, unknown> = { cores: os.cpus().length, node: process.version, loadAvgStart: os.loadavg() };
  try {
    if (PARTS.includes('load')) {
      if (!which('wrk')) throw new Error('part load needs wrk (apt-get install wrk)');
      const rows = await measureLoad(origin);
      result.load = rows;
      console.log(
        `\nmedian of ${ROUNDS} round(s) x ${DURATION}s, 100 connections, wrk -t1; CPU % = CPU time / wall time (100 = one core; the machine has ${os.cpus().length * 100})`,
      );
      console.log('load       mode       req/s   p99 ms  proxy us/req  proxy %  origin %  wrk %  others %  machine %  busiest worker: % of conns, % of reqs');
      for (const load of LOADS) {
        for (const mode of MODES) {
          const rs = rows.filter((r) => r.mode === mode && r.load === load.name);
          const m = (f: (r: LoadRow) => number): number => med(rs.map(f));
          // The busiest worker's share, in percent: median over rounds and the worst round (50 = even with 2 workers).
          // Which worker is the busy one changes from run to run, so per-worker medians would hide it.
          const spread = (f: (r: LoadRow) => number[]): string => {
            const shares = rs.map(f).map(
              (xs) =>
                (Math.max(...xs) /
                  Math.max(
                    1,
                    xs.reduce((a, b) => a + b, 0),
                  )) *
                100,
            );
            return `${med(shares).toFixed(0)} (max ${Math.max(...shares).toFixed(0)})`;
          };
          console.log(
            `${load.name.padEnd(10)} ${mode.padEnd(9)} ${m((r) => r.rps)
              .toFixed(0)
              .padStart(6)}  ${m((r) => r.p99Ms)
              .toFixed(2)
              .padStart(6)}  ${m((r) => r.proxyUsPerReq)
              .toFixed(1)
              .padStart(12)}  ` +
              `${m((r) => r.proxyCpuPct)
                .toFixed(0)
                .padStart(7)}  ${m((r) => r.originCpuPct)
                .toFixed(0)
                .padStart(8)}  ${m((r) => r.wrkCpuPct)
                .toFixed(0)
                .padStart(5)}  ${m((r) => r.othersCpuPct)
                .toFixed(0)
                .padStart(8)}  ${m((r) => r.machineCpuPct)
                .toFixed(0)
                .padStart(9)}  ` +
              `${spread((r) => r.spreadConns).padStart(16)}  ${spread((r) => r.spreadReqs).padStart(16)}`,
          );
        }
        const single = med(rows.filter((r) => r.mode === 'single' && r.load === load.name).map((r) => r.rps));
        console.log(
          `  ${load.name}: 2 workers / 1 process req/s = ${(['none', 'rr', 'reuseport'] as Mode[]).map((m) => `${m} ${(med(rows.filter((r) => r.mode === m && r.load === load.name).map((r) => r.rps)) / single).toFixed(2)}`).join(', ')}`,
        );
      }
    }
    if (PARTS.includes('replace')) {
      const rows: ReplaceRow[] = [];
      const before = readSysctl();
      try {
        for (const mode of ['none', 'rr'] as Mode[]) rows.push(await measureReplace(origin, mode, before ?? '?'));
        if (before !== null && writeSysctl('0')) rows.push(await measureReplace(origin, 'reuseport', '0'));
        else rows.push(await measureReplace(origin, 'reuseport', before ?? '?'));
        if (before !== null && writeSysctl('1')) rows.push(await measureReplace(origin, 'reuseport', '1'));
        else console.log('(cannot write net.ipv4.tcp_migrate_req: reuseport measured only with its current value)');
      } finally {
        if (before !== null) writeSysctl(before);
      }
      result.replace = rows;
      console.log(`\nworker replacement under load: 64 client loops, a new connection per request, ${REPLACEMENTS} replacements per run`);
      console.log('mode       tcp_migrate_req     ok  failed  errors');
      for (const r of rows) {
        const failed = r.non200 + Object.values(r.errors).reduce((a, b) => a + b, 0);
        console.log(`${r.mode.padEnd(10)} ${r.migrateReq.padStart(15)}  ${String(r.ok).padStart(6)}  ${String(failed).padStart(6)}  ${JSON.stringify(r.errors)}`);
      }
    }
  } finally {
    origin.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const out = path.join(BENCH_DIR, 'results', `socket-sharing-${new Date().toISOString().replace(/:/g, '-')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nraw rows written to ${path.relative(process.cwd(), out)}`);
}

// ================================================================ dispatch

if (role === 'proxy') {
  const mode = opt('mode', 'single') as Mode;
  const port = Number(opt('port', '0'));
  const origin = opt('origin', '');
  if (mode === 'single') {
    runWorker('single', port, origin); // one process, answering the orchestrator itself
    process.on('disconnect', () => process.exit(0));
  } else if (cluster.isPrimary) runPrimary(mode, Number(opt('workers', '2')), port, origin);
  else runWorker(mode, port, origin);
} else if (role === 'client') {
  runClient(Number(opt('port', '0')), Number(opt('concurrency', '64')));
} else {
  await main();
  process.exit(0);
}
