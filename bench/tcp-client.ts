// Benchmark TCP load generator (suites `tcp` and `forward`), run as its own child process by the bench (makeTcpClient, bench/lib/loadgen.ts).
// Usage: node bench/tcp-client.ts '<json>'; prints one JSON line with the result on stdout.
//
//   {"mode":"bulk","port":P,"connections":4,"bytes":1073741824}       bulk throughput
//   {"mode":"bulk","port":P,"connections":4,"seconds":2}              bulk for a time (warm-up)
//       opens `connections` connections to bench/tcp-origin.ts --mode=sink (directly or through a
//       proxy) and writes `bytes` in total, split evenly, as fast as each socket takes them; then
//       half-closes each one and waits for the sink's answer (the byte count it received) and the
//       close. Wall time: from the first connect to the last answer. Every count is checked.
//       -> {"bytes","seconds","mibPerS","errors"}
//   {"mode":"rate","port":P,"concurrency":16,"seconds":5}             connection rate
//       `concurrency` loops, each: connect, write one byte, read the byte back (tcp-origin --mode=byte
//       closes after it), close, again; for `seconds`. Latency: connect start to the byte read.
//       -> {"connections","seconds","connPerS","p50Ms","p90Ms","p99Ms","errors"}
//
// Options of both (suite `forward`):
//   "connect":"127.0.0.1:P"   each connection is a CONNECT tunnel to that authority through a
//                             forward proxy at `port`: the bytes above start after its 200 (the
//                             request and the 200 count in the latency and the wall time)
//   "framed":true             bulk to tcp-origin --mode=count: each connection first sends its byte
//                             count and a newline, and never half-closes (Squid closes a tunnel on
//                             the client's FIN); a timed run announces an endless count and stops
//                             at the deadline, so its bytes are the ones written, unacknowledged
import net from 'node:net';

interface Args {
  mode: 'bulk' | 'rate';
  host?: string;
  port: number;
  connections?: number;
  bytes?: number;
  seconds?: number;
  concurrency?: number;
  chunk?: number;
  connect?: string;
  framed?: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const host = args.host ?? '127.0.0.1';
const now = (): number => Number(process.hrtime.bigint()) / 1e6; // ms

// ---------------------------------------------------------------- CONNECT

const connectRequest = args.connect ? Buffer.from(`CONNECT ${args.connect} HTTP/1.1\r\nHost: ${args.connect}\r\n\r\n`, 'latin1') : null;

/**
 * Connects to `port`; with `connect`, sends the CONNECT request and waits for the proxy's 200 head.
 * `ready` gets the socket and what arrived after the head (tunnel bytes); the socket's errors and
 * a refusal go to `fail`.
 */
function open(ready: (sock: net.Socket, rest: Buffer) => void, fail: (err: Error) => void): net.Socket {
  const sock = net.connect({ host, port: args.port, noDelay: true });
  if (!connectRequest) {
    sock.once('connect', () => ready(sock, Buffer.alloc(0)));
    return sock;
  }
  let head: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 8192) fail(new Error('CONNECT: no end of the response head in 8 KiB'));
      return;
    }
    sock.off('data', onData);
    const status = head.subarray(0, Math.min(end, 200)).toString('latin1');
    if (!/^HTTP\/1\.[01] 200[ \r]/.test(status)) return fail(new Error(`CONNECT refused: ${JSON.stringify(status.split('\r\n')[0])}`));
    ready(sock, head.subarray(end + 4));
  };
  sock.once('connect', () => sock.write(connectRequest));
  sock.on('data', onData);
  return sock;
}

// ---------------------------------------------------------------- bulk

/**
 * Writes `bytes` (or until `deadline`, ms) on one connection, then half-closes (framed: sends the
 * count first, no half-close); returns the count the sink acknowledged (a timed framed run: the
 * bytes written, as nothing acknowledges them).
 */
function bulkOne(bytes: number, deadline: number, chunk: Buffer): Promise<{ sent: number; acked: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answer = '';
    let failed = false;
    let stopped = false; // a timed framed run reached its deadline
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      sock.destroy();
      reject(err);
    };
    const pump = (): void => {
      for (;;) {
        const left = bytes - sent;
        if (left <= 0 || (deadline > 0 && now() >= deadline)) {
          if (!args.framed) sock.end();
          else if (left > 0) {
            stopped = true;
            sock.destroy();
          }
          return;
        }
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        sent += piece.length;
        if (!sock.write(piece)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    const sock = open((s, rest) => {
      answer += rest.toString('latin1');
      s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      if (args.framed) s.write(`${deadline > 0 ? Number.MAX_SAFE_INTEGER : bytes}\n`);
      pump();
    }, fail);
    sock.on('error', fail);
    sock.once('close', () => {
      if (failed) return;
      if (stopped) return resolve({ sent, acked: sent });
      const acked = Number(answer.trim());
      if (!/^\d+\n$/.test(answer)) return fail(new Error(`no byte count from the sink (got ${JSON.stringify(answer.slice(0, 80))}) after sending ${sent}`));
      resolve({ sent, acked });
    });
  });
}

async function bulk(): Promise<object> {
  const n = args.connections ?? 4;
  const chunk = Buffer.alloc(args.chunk ?? 64 * 1024, 0x61);
  const timed = args.bytes === undefined;
  const total = timed ? Number.MAX_SAFE_INTEGER : (args.bytes as number);
  const t0 = now();
  const deadline = timed ? t0 + (args.seconds ?? 1) * 1000 : 0;
  const shares = Array.from({ length: n }, (_, i) => (timed ? total : Math.floor(total / n) + (i < total % n ? 1 : 0)));
  const results = await Promise.allSettled(shares.map((b) => bulkOne(b, deadline, chunk)));
  const seconds = (now() - t0) / 1000;
  let bytes = 0;
  let errors = 0;
  const problems: string[] = [];
  for (const r of results) {
    if (r.status === 'rejected') {
      errors++;
      problems.push(String(r.reason instanceof Error ? r.reason.message : r.reason));
    } else {
      bytes += r.value.acked;
      if (r.value.acked !== r.value.sent) {
        errors++;
        problems.push(`sent ${r.value.sent}, the sink acknowledged ${r.value.acked}`);
      }
    }
  }
  return { mode: 'bulk', connections: n, bytes, seconds, mibPerS: bytes / 2 ** 20 / seconds, errors, problems: problems.slice(0, 5) };
}

// ---------------------------------------------------------------- rate

const ONE = Buffer.from('x');

/** One connect (+ CONNECT) + one-byte exchange + close; resolves the latency (ms) to the byte, rejects on error. */
function exchange(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    let latency = -1;
    let failed = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      sock.destroy();
      reject(err);
    };
    const got = (): void => {
      if (latency >= 0) return;
      latency = now() - t0;
      sock.end();
    };
    // The byte origin answers only after our byte: nothing can follow the 200 yet.
    const sock = open((s) => {
      s.once('data', got);
      s.write(ONE);
    }, fail);
    sock.on('error', fail);
    sock.once('close', () => {
      if (failed) return;
      if (latency < 0) fail(new Error('closed before the byte came back'));
      else resolve(latency);
    });
  });
}

async function rate(): Promise<object> {
  const c = args.concurrency ?? 16;
  const t0 = now();
  const end = t0 + (args.seconds ?? 5) * 1000;
  let samples = new Float64Array(1 << 16);
  let count = 0;
  let errors = 0;
  const problems = new Set<string>();
  const loop = async (): Promise<void> => {
    while (now() < end) {
      try {
        const ms = await exchange();
        if (count === samples.length) {
          const bigger = new Float64Array(samples.length * 2);
          bigger.set(samples);
          samples = bigger;
        }
        samples[count++] = ms;
      } catch (err) {
        errors++;
        if (problems.size < 5) problems.add(err instanceof Error ? err.message : String(err));
        await new Promise((r) => setTimeout(r, 1)); // do not spin on a refusing target
      }
    }
  };
  await Promise.all(Array.from({ length: c }, loop));
  const seconds = (now() - t0) / 1000;
  const sorted = samples.subarray(0, count).sort();
  const q = (p: number): number => (count === 0 ? Number.NaN : sorted[Math.min(count - 1, Math.max(0, Math.ceil(p * count) - 1))]);
  return {
    mode: 'rate',
    concurrency: c,
    connections: count,
    seconds,
    connPerS: count / seconds,
    p50Ms: q(0.5),
    p90Ms: q(0.9),
    p99Ms: q(0.99),
    errors,
    problems: [...problems],
  };
}

try {
  const result = args.mode === 'bulk' ? await bulk() : args.mode === 'rate' ? await rate() : null;
  if (!result) throw new Error(`unknown mode ${JSON.stringify(args.mode)}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (err) {
  process.stderr.write(`tcp-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
