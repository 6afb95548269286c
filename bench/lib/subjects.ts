// What the suites measure and what they measure it over: the origins (bench/origin.ts), and the
// subjects started over them: Switchboard (a bench/switchboard-child.ts child, or the CLI from a
// YAML config), node-minimal, nginx and HAProxy; starting a subject with a sanity check, stopping them all.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BenchCerts } from '../tls.ts';
import { CPU_PROF_DIR, NODE, REPO_DIR, SWITCHBOARD_NODE_FLAGS } from './env.ts';
import type { LoadGen, RunOptions, TcpTest } from './loadgen.ts';
import { freePort, httpGet, waitReady, waitTcpReady } from './probes.ts';
import { isRunning, processTree, runCollect, shuttingDown, spawnNodeChild, spawnToLog, stopProcess, tail, tmpDir, track } from './processes.ts';
import { errorMessage, log } from './report.ts';
import { haproxyBin, nginxBin, versionOf } from './tools.ts';

export interface Started {
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
  /** Load options of this subject's runs, over the plan's (policies: an Origin header on every request). */
  load?: RunOptions;
  /**
   * Every process of the subject (supervisor or master first, then its workers), listed again at
   * each run: its CPU is the sum over them, and each one's CPU and RSS is recorded (suite workers).
   * Absent: `pid` alone.
   */
  processes?: () => number[];
  /**
   * Counters of something beside the subject (the gateway suite's Redis: its commands and CPU),
   * read just before and just after each measured run (not the warm-up); the differences go into
   * the run's `counters`.
   */
  counters?: () => Promise<Record<string, number>>;
}

export interface SubjectStatus {
  name: string;
  description: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
}

/** The lines every nginx the bench runs has in `http {}`: scratch paths under `dir` (it runs unprivileged), long keep-alive. */
function nginxHttpCommon(dir: string): string {
  return `  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 65s;
  keepalive_requests 10000000;`;
}

// ---------------------------------------------------------------- origins

export interface Origin {
  url: string;
  port: number;
  proc: ChildProcess;
  logFile: string;
  /** Delay the origin adds to every response (bench/origin.ts --delay-ms), 0 = answers at once. */
  delayMs: number;
}

/** Starts one origin child per entry of `delaysMs` (0 = answers at once), each with `extraArgs` (bench/origin.ts's --body-bytes, --max-age). */
export async function startOrigins(prefix: string, delaysMs: number[], extraArgs: string[] = []): Promise<Origin[]> {
  const origins: Origin[] = [];
  try {
    for (let i = 0; i < delaysMs.length; i++) {
      const args = [...(delaysMs[i] > 0 ? [`--delay-ms=${delaysMs[i]}`] : []), ...extraArgs];
      const { cp, port, logFile } = await spawnNodeChild('origin.ts', args, `${prefix}-${i + 1}`);
      origins.push({ url: `http://127.0.0.1:${port}`, port, proc: cp, logFile, delayMs: delaysMs[i] });
    }
  } catch (err) {
    await Promise.all(origins.map((o) => stopProcess(o.proc)));
    throw err;
  }
  return origins;
}

/** bench/origin.ts's body, which the nginx origins answer too. */
const ORIGIN_BODY = 'Hello from the Switchboard benchmark origin. This body is a fixed one hundred bytes long, padded:ok\n';

/**
 * `count` nginx origins (one process each, master_process off, access log off) answering every
 * request with bench/origin.ts's 100-byte body (`return 200`): a cheaper origin than Node's, so
 * more of the cores go to the subject (suite workers). They have no /__bench/stats: no per-origin
 * shares. Their files go to <tmp>/<prefix>-<i>/.
 */
export async function startNginxOrigins(prefix: string, count: number): Promise<Origin[]> {
  const origins: Origin[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      const dir = path.join(tmpDir, `${prefix}-${i}`);
      fs.mkdirSync(dir, { recursive: true });
      const port = await freePort();
      const conf = path.join(dir, 'nginx.conf');
      // The body as a JSON string: nginx reads its \n, in a quoted string, as a newline.
      fs.writeFileSync(
        conf,
        `# generated by bench/run.ts: an origin
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
${nginxHttpCommon(dir)}
  default_type text/plain;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 ${JSON.stringify(ORIGIN_BODY)}; }
  }
}
`,
      );
      const logFile = path.join(tmpDir, `${prefix}-${i}.log`);
      const args = ['-p', `${dir}/`, '-c', conf];
      if (nginxSupportsDashE(versionOf(nginxBin as string, ['-v']))) args.push('-e', path.join(dir, 'error.log'));
      const cp = spawnToLog(nginxBin as string, args, logFile);
      const url = `http://127.0.0.1:${port}`;
      origins.push({ url, port, proc: cp, logFile, delayMs: 0 });
      await waitReady(`${url}/`, cp, logFile);
    }
  } catch (err) {
    await Promise.all(origins.map((o) => stopProcess(o.proc)));
    throw err;
  }
  return origins;
}

let bodyBytes: number | null = null;

/**
 * Waits until the first of `origins` answers and returns its body: what every subject over them
 * must answer (startChecked). The first one seen is the results' `config.bodyBytes`.
 */
export async function originBody(origins: Origin[]): Promise<string> {
  const body = (await waitReady(`${origins[0].url}/`, origins[0].proc, origins[0].logFile)).body;
  bodyBytes ??= Buffer.byteLength(body);
  return body;
}

/** The size of the origins' body (originBody), null when no suite started HTTP origins. */
export function originBodyBytes(): number | null {
  return bodyBytes;
}

/** Requests each origin has answered so far (its /__bench/stats), or null if one cannot say. */
export async function originCounts(origins: Origin[]): Promise<number[] | null> {
  try {
    const probes = await Promise.all(origins.map((o) => httpGet(`${o.url}/__bench/stats`)));
    return probes.map((p) => (JSON.parse(p.body) as { requests: number }).requests);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- Switchboard

export interface SwitchboardOptions {
  balancer?: string;
  hashKey?: string;
  weights?: number[];
  accessLog: boolean;
  /** The config's `policies` map. */
  policies?: Record<string, { type: string } & Record<string, unknown>>;
  /** The route's `policies` list (names in `policies`). */
  routePolicies?: string[];
  /** Registers a pass-through response-body policy type of this name in the child (bench/switchboard-child.ts). */
  passThroughType?: string;
  /** Top-level config sections added as they are (`admin`, `tracing`, `consumers`, `state`). */
  config?: Record<string, unknown>;
  /**
   * Headers every request to it carries (an API key, a bearer token): the readiness probe's, the
   * sanity check's (startChecked) and the load's (`Started.load`).
   */
  headers?: Readonly<Record<string, string>>;
}

/** Child arguments longer than this go through a file (`@<file>`): one argv string is limited to 128 KiB on Linux. */
const MAX_INLINE_ARG = 32 * 1024;

/** How long to wait for a Switchboard process to exit cleanly (longer with BENCH_CPU_PROF: it writes its profile). */
export const SWITCHBOARD_GRACE_MS = CPU_PROF_DIR ? 30_000 : undefined;

/** Node flags of a Switchboard child: BENCH_SWITCHBOARD_NODE_FLAGS, and a CPU profile named after `name` (BENCH_CPU_PROF). */
function switchboardArgv(name: string): string[] {
  const prof = CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${name}.${process.pid}.cpuprofile`] : [];
  return [...SWITCHBOARD_NODE_FLAGS, ...prof];
}

/** A Switchboard child (bench/switchboard-child.ts) over `origins`, ready to serve. */
export async function startSwitchboard(name: string, origins: Origin[], o: SwitchboardOptions): Promise<Started> {
  const accessLog = o.accessLog ? path.join(tmpDir, `${name}-access.log`) : undefined;
  const arg = JSON.stringify({
    origins: origins.map((x) => x.url),
    accessLog,
    balancer: o.balancer,
    hashKey: o.hashKey,
    weights: o.weights,
    policies: o.policies,
    routePolicies: o.routePolicies,
    passThroughType: o.passThroughType,
    config: o.config,
  });
  let argv = arg;
  if (arg.length > MAX_INLINE_ARG) {
    const file = path.join(tmpDir, `${name}-args.json`);
    fs.writeFileSync(file, arg);
    argv = `@${file}`;
  }
  const { cp, port, logFile } = await spawnNodeChild('switchboard-child.ts', [argv], name, 15_000, switchboardArgv(name));
  const url = `http://127.0.0.1:${port}/`;
  await waitReady(url, cp, logFile, 10_000, undefined, o.headers).catch(async (err: unknown) => {
    await stopProcess(cp);
    throw err;
  });
  const st: Started = { url, pid: cp.pid ?? 0, proc: cp, owned: true, accessLog, logFile, graceMs: SWITCHBOARD_GRACE_MS };
  if (o.headers !== undefined) st.load = { headers: o.headers };
  return st;
}

let distCli: Promise<string> | undefined;

/**
 * Compiles src/ (`tsc -p tsconfig.build.json`, what `npm run build` emits) into <tmp>/dist-build/dist,
 * beside a copy of package.json and a link to node_modules, as an installed package has them, once
 * per bench run; returns its CLI (what `bin/switchboard.js` runs). Suites memory and workers.
 */
export function buildDistCli(): Promise<string> {
  distCli ??= (async () => {
    const root = path.join(tmpDir, 'dist-build');
    fs.mkdirSync(root, { recursive: true });
    fs.copyFileSync(path.join(REPO_DIR, 'package.json'), path.join(root, 'package.json'));
    fs.symlinkSync(path.join(REPO_DIR, 'node_modules'), path.join(root, 'node_modules'));
    const tsc = path.join(REPO_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
    log('compiling src/ into a dist/ of the run (tsc)…');
    const r = await runCollect(NODE, [tsc, '-p', path.join(REPO_DIR, 'tsconfig.build.json'), '--outDir', path.join(root, 'dist'), '--sourceMap', 'false'], 180_000);
    if (r.code !== 0) throw new Error(`tsc failed (${r.code}): ${(r.stdout + r.stderr).slice(0, 2000)}`);
    return path.join(root, 'dist', 'cli', 'main.js');
  })();
  return distCli;
}

/**
 * Switchboard started with its CLI, in one process: `switchboard start -c <yaml> --access-log
 * <accessLog> --no-watch` (src/cli/main.ts), `config` written to <tmp>/<name>.yaml, its output to
 * <tmp>/<name>.log. `accessLog`: a file or 'off'. Not waited for: the caller probes it.
 */
export function spawnSwitchboardCli(
  name: string,
  config: string,
  accessLog: string,
  cli = path.join(REPO_DIR, 'src', 'cli', 'main.ts'),
): { cp: ChildProcess; conf: string; logFile: string } {
  const conf = path.join(tmpDir, `${name}.yaml`);
  fs.writeFileSync(conf, config);
  const logFile = path.join(tmpDir, `${name}.log`);
  const args = [...switchboardArgv(name), cli, '--log-level', 'warn', 'start', '-c', conf, '--access-log', accessLog, '--no-watch'];
  const cp = spawnToLog(NODE, args, logFile, { ...process.env, NODE_ENV: 'production' });
  return { cp, conf, logFile };
}

// ---------------------------------------------------------------- node-minimal

/** bench/minimal-forwarder.ts over `origins`: round robin, no logging, the floor of Node's overhead. */
export async function startNodeMinimal(origins: Origin[]): Promise<Started> {
  const { cp, port, logFile } = await spawnNodeChild(
    'minimal-forwarder.ts',
    origins.map((o) => o.url),
    'node-minimal',
  );
  return { url: `http://127.0.0.1:${port}/`, pid: cp.pid ?? 0, proc: cp, owned: true, logFile };
}

// ---------------------------------------------------------------- nginx

function nginxSupportsDashE(versionLine: string): boolean {
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(versionLine);
  if (!m) return false;
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 1 || (maj === 1 && (min > 19 || (min === 19 && patch >= 5)));
}

/**
 * nginx in one process (master_process off, one worker's worth of work: Node is single-threaded),
 * upstream keepalive, access log on, over `origins`. With `certs`, it terminates TLS on an
 * `ssl http2` listener (ALPN h2 and http/1.1) instead of listening in plain HTTP. With `workers`, a
 * master and that many worker processes instead (`worker_processes N`; the workers share the one
 * listening socket, nginx's default), listed in `processes`.
 * Its files go to <tmp>/<name>/ and its output to <tmp>/<name>.log.
 */
export async function startNginx(name: string, origins: Origin[], certs?: BenchCerts, workers?: number): Promise<Started> {
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
master_process ${workers === undefined ? 'off' : 'on'};
worker_processes ${workers ?? 1};
pid ${dir}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 4096; }
http {
  access_log ${accessLog};
${nginxHttpCommon(dir)}
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
  const pid = cp.pid ?? 0;
  return { url, pid, proc: cp, owned: true, accessLog, logFile, ca: certs?.ca, processes: workers === undefined ? undefined : () => processTree(pid) };
}

/**
 * nginx in one process (master_process off, one worker) with `http` as the inside of its `http {}`
 * block (after the scratch paths and keep-alive lines every bench nginx has), given the port it must
 * listen on and its directory <tmp>/<name>/ (for a cache, a root); `path` is what the readiness
 * probe asks for. Suites cache (proxy_cache) and static (root).
 */
export async function startNginxHttp(name: string, http: (port: number, dir: string) => string, probePath = '/'): Promise<Started> {
  const bin = nginxBin as string;
  const dir = path.join(tmpDir, name);
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
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
${nginxHttpCommon(dir)}
${http(port, dir)}
}
`,
  );
  const logFile = path.join(tmpDir, `${name}.log`);
  const args = ['-p', `${dir}/`, '-c', conf];
  if (nginxSupportsDashE(versionOf(bin, ['-v']))) args.push('-e', errorLog);
  const cp = spawnToLog(bin, args, logFile);
  const url = `http://127.0.0.1:${port}${probePath}`;
  try {
    await waitReady(url, cp, logFile);
  } catch (err) {
    await stopProcess(cp);
    throw new Error(`${errorMessage(err)} ${tail(errorLog)}`);
  }
  return { url, pid: cp.pid ?? 0, proc: cp, owned: true, logFile };
}

// ---------------------------------------------------------------- HAProxy

/**
 * HAProxy in the foreground (-db) with `config` written to <tmp>/<name>.cfg; its stdout (where a
 * `log stdout` access log goes) to <tmp>/<name>-access.log, its stderr to <tmp>/<name>.log.
 */
export function spawnHaproxy(name: string, config: string): { cp: ChildProcess; accessLog: string; logFile: string } {
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

/**
 * HAProxy `mode http` over `origins`: nbthread `threads` (1 by default, as Node is single-threaded;
 * threads of one process), round robin, http-reuse always, access log on (stdout, to a file).
 */
export async function startHaproxy(name: string, origins: Origin[], threads = 1): Promise<Started> {
  const port = await freePort();
  const { cp, accessLog, logFile } = spawnHaproxy(
    name,
    `# generated by bench/run.ts
global
  nbthread ${threads}
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
}

// ---------------------------------------------------------------- layer 4 (suites tcp and forward)

/** A layer-4 subject started over a sink and a byte origin (suites tcp and forward). */
export interface TcpTargets {
  /** The port a client uses for each test (the sink / the byte origin, or a proxy's listener in front of it). */
  ports: Record<TcpTest, number>;
  started: Started;
}

/**
 * Switchboard with two `protocol: tcp` listeners (bulk -> the sink, rate -> the byte origin), each
 * over a one-endpoint round-robin upstream, started from a YAML file with the CLI in one process
 * (`workers: 1`: the default, `auto`, would measure an idle supervisor over one worker per core),
 * as in the https suite (`sinkPort`: tcp-origin's sink, or its count mode in suite forward). Access log off: tcp listeners write none yet (docs/layer4.md).
 */
export async function startSwitchboardTcp(name: string, suite: string, sinkPort: number, bytePort: number): Promise<TcpTargets> {
  const ports = { bulk: await freePort(), rate: await freePort() };
  const q = (s: string): string => JSON.stringify(s);
  const { cp, conf, logFile } = spawnSwitchboardCli(
    name,
    `# generated by bench/run.ts (suite ${suite})
workers: 1
listeners:
  bulk: { address: ${q(`127.0.0.1:${ports.bulk}`)}, protocol: tcp, upstream: sink }
  rate: { address: ${q(`127.0.0.1:${ports.rate}`)}, protocol: tcp, upstream: byte }
upstreams:
  sink: { balancer: round-robin, endpoints: [ { url: ${q(`tcp://127.0.0.1:${sinkPort}`)} } ] }
  byte: { balancer: round-robin, endpoints: [ { url: ${q(`tcp://127.0.0.1:${bytePort}`)} } ] }
`,
    'off',
  );
  try {
    await waitTcpReady(ports.rate, cp, logFile);
  } catch (err) {
    await stopProcess(cp);
    throw new Error(`${errorMessage(err)}${isRunning(cp) ? '' : `\n    (BENCH_KEEP_TMP=1 keeps ${conf})`}`);
  }
  return { ports, started: { url: `tcp://127.0.0.1:${ports.rate}`, pid: cp.pid ?? 0, proc: cp, owned: true, logFile, graceMs: SWITCHBOARD_GRACE_MS } };
}

/** HAProxy `mode tcp`, nbthread 1 (as in peers), balance roundrobin, a frontend per test; no log (Switchboard's tcp listeners write none). */
export async function startHaproxyTcp(name: string, suite: string, sinkPort: number, bytePort: number): Promise<TcpTargets> {
  const ports = { bulk: await freePort(), rate: await freePort() };
  const { cp, logFile } = spawnHaproxy(
    name,
    `# generated by bench/run.ts (suite ${suite})
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

// ---------------------------------------------------------------- starting and stopping

/** Starts a subject, checks it answers the origin's body (to a request with its load's headers), and records its status. */
export async function startChecked(
  name: string,
  description: string,
  start: () => Promise<Started>,
  expectedBody: string,
  running: Map<string, Started>,
  statuses: SubjectStatus[],
): Promise<void> {
  try {
    const st = await start();
    const probe = await httpGet(st.url, 2000, st.ca, st.load?.headers).catch((err: unknown) => ({ status: 0, body: errorMessage(err) }));
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

/** A subject a suite may start: what it is, why it cannot run here (null when it can), how it starts. */
export interface StartableSubject {
  name: string;
  description: string;
  unavailable(): string | null;
  start(origins: Origin[]): Promise<Started>;
}

/**
 * Starts every subject once (startChecked): one that cannot run here is reported and skipped, and
 * one `excluded` says why (e.g. not in BENCH_SUBJECTS) is skipped quietly. Throws when none started.
 */
export async function startSubjects(
  subjects: readonly StartableSubject[],
  origins: Origin[],
  expectedBody: string,
  running: Map<string, Started>,
  statuses: SubjectStatus[],
  excluded: (s: StartableSubject) => string | null = () => null,
): Promise<void> {
  for (const s of subjects) {
    const left = excluded(s);
    if (left) {
      statuses.push({ name: s.name, description: s.description, status: 'skipped', reason: left });
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
}

/** Stops the subjects of `running` it owns and the origins (unless a signal's clean-up owns them now). */
export async function stopAll(running: Map<string, Started>, origins: Origin[]): Promise<void> {
  if (shuttingDown) return; // the signal handler's cleanup() owns them now
  await Promise.all([...running.values()].filter((s) => s.owned).map((s) => stopProcess(s.proc, s.graceMs)));
  await Promise.all(origins.map((o) => stopProcess(o.proc)));
}
