// Load generators, each in its own process so it never shares an event loop with a subject:
//   wrk         HTTP/1.1 (-t1), when installed: the default
//   autocannon  HTTP/1.1, the devDependency, without wrk (or BENCH_LOADGEN=autocannon)
//   h2load      HTTP/2 over TLS (suite https), when installed
//   tcp-client  bench/tcp-client.ts, layer 4 bulk and connection rate (suite tcp)
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, LOADGEN_PREF, NODE, REPO_DIR } from './env.ts';
import { runCollect, tmpDir } from './processes.ts';
import { log } from './report.ts';
import { findExecutable, versionOf } from './tools.ts';

/** The value at quantile `q` (0-1) of ascending `sorted` (nearest rank). */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface LoadResult {
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
  /** CPU seconds the load generator's process used during the run (wrk, autocannon), when sampled. */
  loadgenCpuS?: number | null;
  /** Responses by status code, when the load generator counts them (autocannon; wrk only counts non-2xx/3xx). */
  statusCodes?: Record<string, number>;
}

/**
 * `varyKey`: give each request a different consistent-hash key: a random `x-user` header
 * (`header`) or a random path `/u/<n>` (`path`). wrk does it with a Lua script; autocannon's CLI
 * cannot, so it sends one fixed key (see `varyKeySupport`).
 */
export interface RunOptions {
  varyKey?: 'header' | 'path';
  /**
   * Headers sent with every request, the same on all (the policies suite's Origin). wrk: set once in
   * a Lua script's top level (no per-request Lua unless varyKey); autocannon: `-H name=value`.
   */
  headers?: Readonly<Record<string, string>>;
  /**
   * The request-target of every request instead of the URL's path: absolute-form
   * (`http://127.0.0.1:P/`) through a forward proxy at the URL, with `Host` set to its authority
   * (suite forward). wrk: set once in a Lua script's top level (`wrk.path`, no Lua per request);
   * autocannon cannot send it (its CLI sends the URL's path): it throws.
   */
  absoluteTarget?: string;
  /** Set by runRounds on warm-up runs (a fixed-size load such as the tcp suite's 1 GiB runs for the warm-up's seconds instead). */
  warmup?: boolean;
}

export interface LoadGen {
  name: string;
  version: string;
  /** How `varyKey` is honoured: 'random per request' or 'fixed key'. */
  varyKeySupport: string;
  /** What `rps` and `requests` count, for the log lines: default 'req/s' and 'req' (tcp bulk: 'MiB/s', 'MiB'). */
  rateUnit?: string;
  unit?: string;
  run(url: string, seconds: number, connections: number, opts?: RunOptions): Promise<LoadResult>;
}

/** The HTTP/1.1 load generator of the suites: wrk when installed (unless BENCH_LOADGEN=autocannon), else autocannon. */
export function pickLoadgen(): LoadGen {
  const wrkBin = LOADGEN_PREF === 'autocannon' ? null : findExecutable('wrk');
  let loadgen: LoadGen | null = wrkBin ? makeWrk(wrkBin) : null;
  if (!loadgen) {
    if (LOADGEN_PREF === 'wrk') log('wrk requested (BENCH_LOADGEN=wrk) but not installed; falling back to autocannon');
    else if (LOADGEN_PREF !== 'autocannon') log('wrk is not installed; using autocannon (in a separate process)');
    loadgen = makeAutocannon();
  }
  if (!loadgen) throw new Error('no load generator: install wrk, or run npm install (autocannon devDependency)');
  return loadgen;
}

// ---------------------------------------------------------------- wrk

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

/**
 * A wrk Lua script: fixed `headers` set once at load (wrk then sends its one pre-built request, no
 * Lua per request), and with `kind` a random key per request (LuaJIT, so it costs wrk little).
 */
function wrkScript(kind: 'header' | 'path' | undefined, headers: Readonly<Record<string, string>>, absoluteTarget?: string): string {
  const fixed = Object.entries(headers);
  const what = [
    kind ? `a random ${kind === 'header' ? 'x-user header' : 'path'} per request` : '',
    fixed.length ? `fixed headers ${fixed.map(([k]) => k).join(', ')}` : '',
    absoluteTarget ? `absolute-form ${absoluteTarget}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  let lua = `-- generated by bench/run.ts: ${what}\n`;
  if (absoluteTarget) {
    lua += `wrk.path = ${JSON.stringify(absoluteTarget)}\nwrk.headers["Host"] = ${JSON.stringify(new URL(absoluteTarget).host)}\n`;
  }
  for (const [k, v] of fixed) lua += `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}\n`;
  if (kind) {
    const body =
      kind === 'header'
        ? `  wrk.headers["x-user"] = "u" .. math.random(1, 1000000)\n  return wrk.format()\n`
        : `  return wrk.format(nil, "/u/" .. math.random(1, 1000000))\n`;
    lua += `math.randomseed(os.time())\nrequest = function()\n${body}end\n`;
  }
  const file = path.join(tmpDir, `wrk-${createHash('sha1').update(lua).digest('hex').slice(0, 12)}.lua`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, lua);
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
      const headers = opts?.headers ?? {};
      if (opts?.varyKey || opts?.absoluteTarget || Object.keys(headers).length > 0) args.push('-s', wrkScript(opts?.varyKey, headers, opts?.absoluteTarget));
      args.push(url);
      const r = await runCollect(bin, args, (seconds + 30) * 1000);
      if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      return { ...parseWrk(r.stdout), loadgenCpuS: r.cpuS };
    },
  };
}

// ---------------------------------------------------------------- autocannon

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
      if (opts?.absoluteTarget) throw new Error('absolute-form requests (a forward proxy) need wrk: autocannon\u2019s CLI sends the URL\u2019s path');
      // Separate process, so the load generator never shares an event loop with a subject.
      const args = [cli, '-c', String(connections), '-d', String(seconds), '-j', '-n'];
      if (opts?.varyKey === 'header') args.push('-H', 'x-user=bench-fixed-user');
      for (const [k, v] of Object.entries(opts?.headers ?? {})) args.push('-H', `${k}=${v}`);
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
        statusCodeStats?: Record<string, { count: number }>;
      };
      const statusCodes: Record<string, number> = {};
      for (const [code, { count }] of Object.entries(j.statusCodeStats ?? {})) statusCodes[code] = count;
      return {
        rps: j.duration > 0 ? j.requests.total / j.duration : j.requests.average,
        p50Ms: j.latency.p50,
        p90Ms: j.latency.p90,
        p99Ms: j.latency.p99,
        requests: j.requests.total,
        errors: j.errors + j.timeouts,
        non2xx: j.non2xx,
        loadgenCpuS: r.cpuS,
        statusCodes,
      };
    },
  };
}

// ---------------------------------------------------------------- h2load

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
export function makeH2load(bin: string, streams: number): LoadGen {
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

// ---------------------------------------------------------------- tcp-client

/** The tcp suite's two tests. */
export type TcpTest = 'bulk' | 'rate';

/** bench/tcp-client.ts's options for the forward suite: CONNECT tunnels, a count-first sink. */
export interface TcpClientOptions {
  /** Open every connection as a CONNECT tunnel to this authority (`host:port`) through the proxy the URL names. */
  connect?: string;
  /** Bulk to tcp-origin --mode=count: the byte count first, no half-close. */
  framed?: boolean;
}

/**
 * The tcp suite's load generator: bench/tcp-client.ts in a child process. `bulk` writes
 * `totalBytes` over `connections` connections to a sink (for a warm-up: for `seconds`) and
 * reports MiB/s as `rps` and MiB as `requests` (so runRounds' CPU us/req is CPU us per MiB);
 * `rate` opens and closes connections for `seconds` with `connections` loops: conn/s and latency.
 */
export function makeTcpClient(test: TcpTest, totalBytes: number, through: TcpClientOptions = {}): LoadGen {
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
          ? { mode: 'bulk', port, connections, ...(timed ? { seconds } : { bytes: totalBytes }), ...through }
          : { mode: 'rate', port, concurrency: connections, seconds, connect: through.connect };
      // A fixed-size run has no duration: allow 10 MiB/s at the very least.
      const timeoutMs = timed ? (seconds + 30) * 1000 : 30_000 + (totalBytes / (10 * 2 ** 20)) * 1000;
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
