// Experiment (issue 15 §7, issue 11 §5): how much of a proxied request's CPU is node:http's server
// side and how much undici's client side, against what a proxy that owned its HTTP/1.1 code could
// spend? Not part of the tests nor of `npm run bench`; run it by hand:
//
//   node bench/experiments/own-http.ts                      # OH_ROUNDS=8 OH_DURATION=4 (about 4 minutes)
//   OH_SUBJECTS=node-undici,raw-raw node bench/experiments/own-http.ts
//
// The clients hand the servers the response's headers without Content-Length, which the servers
// write from the body they got. Every subject is one process forwarding `GET http://127.0.0.1:<origin>/` (absolute-form, as a
// forward proxy receives it; wrk -t1 -c64, keep-alive) to the same origin (bench/origin.ts, a
// ~100-byte body with Content-Length), keep-alive to it too. They differ in who speaks HTTP/1.1:
//
//   node-undici   node:http server + undici Pool.dispatch: the stack Switchboard runs on (what
//                 bench/minimal-forwarder.ts does, with a dispatch handler as Switchboard's)
//   node-undici-stream  the same, the response streamed: writeHead at its head, res.write per
//                 chunk, res.end at its end (as Switchboard and bench/minimal-forwarder.ts do)
//   node-raw      node:http server + a client written here: a list of idle net.Sockets, the request
//                 head written as one string, the response head found with indexOf(CRLFCRLF)
//   raw-undici    a server written here (net.Server, the head parsed by indexOf and split) + undici
//   raw-raw       both written here
//   switchboard   the CLI, one `protocol: forward` listener allowing 127.0.0.0/8, access log off
//   squid         Squid 6 as bench/suites/forward.ts runs it (cache deny all, access log off)
//
// The "raw" parts are the floor of what such code costs, not a proxy: they read only GET without
// a body, Content-Length responses, no validation, no limits, no timeouts. What they show is the
// room there is under node:http and undici, which is what a decision to own the HTTP/1.1 path
// needs; they do not show what a strict parser (EDGE-CASES 1-20) would cost on top.
//
// Reported per subject: the median over rounds of req/s and of the process's CPU (user + system,
// /proc) per request, and that CPU relative to Squid's and to node-undici's. Rounds rotate the
// subjects (the order reversed every other round), as the bench suites do.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { freePort } from '../lib/probes.ts';

const SELF = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SELF), '..', '..');
const NODE = process.execPath;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

// ================================================================ the forwarders (role proxy)

type Respond = (status: number, headers: string[], body: Buffer) => void;
type Send = (path: string, host: string, headers: string[], respond: Respond) => void;

/** The client written here: idle keep-alive sockets to one origin, one request at a time on each. */
function rawClient(origin: URL): Send {
  const idle: RawUpstream[] = [];
  class RawUpstream {
    readonly socket: net.Socket;
    respond: Respond | undefined = undefined;
    head: Buffer | undefined = undefined;
    constructor() {
      this.socket = net.connect(Number(origin.port), origin.hostname);
      this.socket.setNoDelay(true);
      this.socket.on('data', (chunk: Buffer) => this.data(chunk));
      this.socket.on('error', () => this.fail());
      this.socket.on('close', () => this.fail());
    }
    data(chunk: Buffer): void {
      const buf = this.head === undefined ? chunk : Buffer.concat([this.head, chunk]);
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        this.head = buf;
        return;
      }
      const lines = buf.toString('latin1', 0, end).split('\r\n');
      const status = Number(lines[0].slice(9, 12));
      const headers: string[] = [];
      let length = 0;
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(':');
        const name = lines[i].slice(0, colon).toLowerCase();
        const value = lines[i].slice(colon + 1).trim();
        if (name === 'content-length') length = Number(value);
        else if (!HOP.has(name)) headers.push(name, value);
      }
      if (buf.length < end + 4 + length) {
        this.head = buf;
        return;
      }
      this.head = undefined;
      const respond = this.respond!;
      this.respond = undefined;
      idle.push(this);
      respond(status, headers, buf.subarray(end + 4, end + 4 + length));
    }
    fail(): void {
      const i = idle.indexOf(this);
      if (i >= 0) idle.splice(i, 1);
      const respond = this.respond;
      this.respond = undefined;
      respond?.(502, [], Buffer.alloc(0));
    }
  }
  return (p, host, headers, respond) => {
    const up = idle.pop() ?? new RawUpstream();
    up.respond = respond;
    let head = `GET ${p} HTTP/1.1\r\nhost: ${host}\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    up.socket.write(`${head}\r\n`, 'latin1');
  };
}

/** undici, as Switchboard uses it: Pool.dispatch with a handler (no stream, the body collected). */
function undiciClient(origin: URL): Send {
  const pool = new Pool(origin.origin, { connections: 128, keepAliveTimeout: 60_000 });
  return (p, _host, headers, respond) => {
    let status = 0;
    let out: string[] = [];
    const chunks: Buffer[] = [];
    pool.dispatch(
      { path: p, method: 'GET', headers },
      {
        onRequestStart() {},
        onResponseStart(_c, statusCode, h) {
          status = statusCode;
          out = [];
          for (const name of Object.keys(h)) if (!HOP.has(name) && name !== 'content-length') out.push(name, String(h[name]));
        },
        onResponseData(_c, chunk) {
          chunks.push(chunk);
        },
        onResponseEnd() {
          respond(status, out, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
        },
        onResponseError() {
          respond(502, [], Buffer.alloc(0));
        },
      },
    );
  };
}

/** The path of an absolute-form target (`http://host:port/path` → `/path`), or the target itself. */
function pathOf(target: string): string {
  if (target.charCodeAt(0) === 47) return target;
  const slash = target.indexOf('/', target.indexOf('//') + 2);
  return slash < 0 ? '/' : target.slice(slash);
}

/** A node:http request's headers to send on: flat name/value pairs, without Host and hop-by-hop ones. */
function requestHeaders(req: http.IncomingMessage): string[] {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name !== 'host' && !HOP.has(name)) headers.push(name, raw[i + 1]);
  }
  return headers;
}

function nodeServer(send: Send): net.Server {
  return http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const headers = requestHeaders(req);
    send(pathOf(req.url ?? '/'), req.headers.host ?? '', headers, (status, out, body) => {
      out.push('content-length', String(body.length));
      res.writeHead(status, out);
      res.end(body);
    });
  });
}

/** The server written here: a head at a time (indexOf CRLFCRLF), answered in order on its socket. */
function rawServer(send: Send): net.Server {
  return net.createServer((socket) => {
    socket.setNoDelay(true);
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const end = buf.indexOf(CRLFCRLF);
        if (end < 0) break;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        buf = buf.subarray(end + 4);
        const sp1 = lines[0].indexOf(' ');
        const target = lines[0].slice(sp1 + 1, lines[0].lastIndexOf(' '));
        const headers: string[] = [];
        let host = '';
        for (let i = 1; i < lines.length; i++) {
          const colon = lines[i].indexOf(':');
          const name = lines[i].slice(0, colon).toLowerCase();
          const value = lines[i].slice(colon + 1).trim();
          if (name === 'host') host = value;
          else if (!HOP.has(name)) headers.push(name, value);
        }
        send(pathOf(target), host, headers, (status, out, body) => {
          let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`;
          for (let i = 0; i < out.length; i += 2) head += `${out[i]}: ${out[i + 1]}\r\n`;
          socket.cork();
          socket.write(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1');
          socket.write(body);
          process.nextTick(() => socket.uncork());
        });
      }
      pending = buf.length > 0 ? buf : undefined;
    });
    socket.on('error', () => socket.destroy());
  });
}

/**
 * node:http + undici streaming the response as it comes (writeHead at the head, res.write per
 * chunk, res.end at the end), as Switchboard and bench/minimal-forwarder.ts do, instead of one
 * res.end(body).
 */
function nodeStreaming(origin: URL): net.Server {
  const pool = new Pool(origin.origin, { connections: 128, keepAliveTimeout: 60_000 });
  return http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const headers = requestHeaders(req);
    pool.dispatch(
      { path: pathOf(req.url ?? '/'), method: 'GET', headers },
      {
        onRequestStart() {},
        onResponseStart(_c, statusCode, h) {
          const out: string[] = [];
          for (const name of Object.keys(h)) if (!HOP.has(name)) out.push(name, String(h[name]));
          res.writeHead(statusCode, out);
        },
        onResponseData(_c, chunk) {
          res.write(chunk);
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError() {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        },
      },
    );
  });
}

function runProxy(kind: string, origin: URL): void {
  if (kind === 'node-undici-stream') {
    const st = nodeStreaming(origin);
    st.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (st.address() as net.AddressInfo).port })}\n`));
    process.on('SIGTERM', () => process.exit(0));
    return;
  }
  const [server, client] = kind.split('-');
  const send = client === 'raw' ? rawClient(origin) : undiciClient(origin);
  const s = server === 'raw' ? rawServer(send) : nodeServer(send);
  s.listen(0, '127.0.0.1', () => {
    const a = s.address() as net.AddressInfo;
    process.stdout.write(`${JSON.stringify({ port: a.port })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

// ================================================================ the harness (role main)

interface Subject {
  name: string;
  port: number;
  proc: ChildProcess;
}

const kids: ChildProcess[] = [];
function track(cp: ChildProcess): ChildProcess {
  kids.push(cp);
  return cp;
}
process.on('exit', () => {
  for (const k of kids) if (k.exitCode === null) k.kill('SIGTERM');
});

function firstLine(cp: ChildProcess): Promise<{ port: number }> {
  return new Promise((resolve, reject) => {
    let text = '';
    cp.stdout!.on('data', (d: Buffer) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(text.slice(0, nl)) as { port: number });
    });
    cp.once('exit', (code) => reject(new Error(`exited (${code}) before it listened`)));
  });
}

async function waitListening(port: number, cp: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && cp.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startSubject(name: string, origin: string, tmp: string): Promise<Subject> {
  if (name === 'switchboard') {
    const port = await freePort();
    const conf = path.join(tmp, 'switchboard.yaml');
    fs.writeFileSync(
      conf,
      `workers: 1\nlisteners:\n  proxy:\n    address: "127.0.0.1:${port}"\n    protocol: forward\n    forward:\n      rules:\n        - { action: allow, destinations: ["127.0.0.0/8"] }\n`,
    );
    const cli = path.join(REPO, 'src', 'cli', 'main.ts');
    const proc = track(
      spawn(NODE, [cli, '--log-level', 'warn', 'start', '-c', conf, '--access-log', 'off', '--no-watch'], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, NODE_ENV: 'production' },
      }),
    );
    await waitListening(port, proc);
    return { name, port, proc };
  }
  if (name === 'squid') {
    const port = await freePort();
    const dir = path.join(tmp, 'squid');
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o777);
    const conf = path.join(dir, 'squid.conf');
    fs.writeFileSync(
      conf,
      `http_port 127.0.0.1:${port}\nworkers 1\ncache deny all\ncache_mem 8 MB\nhttp_access allow localhost\nhttp_access deny all\naccess_log none\npid_filename ${dir}/squid.pid\ncache_log ${dir}/cache.log\ncoredump_dir ${dir}\npinger_enable off\nshutdown_lifetime 1 seconds\n`,
    );
    const proc = track(spawn('squid', ['-N', '-f', conf], { stdio: 'ignore' }));
    await waitListening(port, proc);
    return { name, port, proc };
  }
  const proc = track(spawn(NODE, [SELF, 'proxy', name, origin], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const { port } = await firstLine(proc);
  return { name, port, proc };
}

/** CPU seconds (user + system) of a process and its children that it waited for. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function wrk(port: number, seconds: number, lua: string): { rps: number; requests: number } {
  const out = execFileSync('wrk', ['-t1', '-c64', `-d${seconds}s`, '-s', lua, `http://127.0.0.1:${port}/`]).toString();
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) throw new Error(`${non2xx[1]} responses were not 2xx:\n${out}`);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), requests: Number(/(\d+) requests in/.exec(out)![1]) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const rounds = Number(process.env.OH_ROUNDS ?? 8);
  const duration = Number(process.env.OH_DURATION ?? 4);
  const hasSquid = spawnSync('squid', ['-v']).status === 0;
  const names = (process.env.OH_SUBJECTS ?? `node-undici,node-undici-stream,node-raw,raw-undici,raw-raw,switchboard${hasSquid ? ',squid' : ''}`).split(',');
  if (spawnSync('wrk', ['-v']).error) throw new Error('wrk is needed (apt-get install wrk)');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'own-http-'));
  const originProc = track(spawn(NODE, [path.join(REPO, 'bench', 'origin.ts')], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const origin = `http://127.0.0.1:${(await firstLine(originProc)).port}`;
  const lua = path.join(tmp, 'absolute.lua');
  fs.writeFileSync(lua, `wrk.path = "${origin}/"\nwrk.headers["Host"] = "${new URL(origin).host}"\n`);
  const subjects: Subject[] = [];
  for (const name of names) subjects.push(await startSubject(name, origin, tmp));
  console.log(`own-http: ${rounds} rounds x ${duration} s, wrk -t1 -c64, GET ${origin}/ (absolute-form), ${os.cpus().length} cores, Node ${process.version}`);
  for (const s of subjects) wrk(s.port, 2, lua); // warm-up
  const runs = new Map<string, Array<{ rps: number; us: number }>>(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
      const before = cpuSeconds(s.proc.pid!);
      const w = wrk(s.port, duration, lua);
      const us = ((cpuSeconds(s.proc.pid!) - before) * 1e6) / w.requests;
      runs.get(s.name)!.push({ rps: w.rps, us });
      console.log(`  round ${r + 1} ${s.name.padEnd(12)} ${w.rps.toFixed(0).padStart(7)} req/s ${us.toFixed(1).padStart(7)} CPU us/req`);
    }
  }
  const us = (n: string): number => median(runs.get(n)!.map((x) => x.us));
  console.log('\n| subject | req/s | CPU us/req | vs node-undici | vs squid |\n|---|--:|--:|--:|--:|');
  for (const n of names) {
    const ratio = (other: string): string => (runs.has(other) ? (us(n) / us(other)).toFixed(2) : '-');
    console.log(`| ${n} | ${median(runs.get(n)!.map((x) => x.rps)).toFixed(0)} | ${us(n).toFixed(1)} | ${ratio('node-undici')} | ${ratio('squid')} |`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}

if (process.argv[2] === 'proxy') runProxy(process.argv[3], new URL(process.argv[4]));
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
