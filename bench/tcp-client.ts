// Benchmark TCP load generator (suite `tcp`), run as its own child process by the bench (makeTcpClient, bench/lib/loadgen.ts).
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
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const host = args.host ?? '127.0.0.1';
const now = (): number => Number(process.hrtime.bigint()) / 1e6; // ms

// ---------------------------------------------------------------- bulk

/** Writes `bytes` (or until `deadline`, ms) on one connection, half-closes, returns the count the sink acknowledged. */
function bulkOne(bytes: number, deadline: number, chunk: Buffer): Promise<{ sent: number; acked: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port: args.port, noDelay: true });
    let sent = 0;
    let answer = '';
    let failed = false;
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
          sock.end();
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
    sock.once('connect', pump);
    sock.setEncoding('latin1');
    sock.on('data', (s: string) => (answer += s));
    sock.on('error', fail);
    sock.once('close', () => {
      if (failed) return;
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

/** One connect + one-byte exchange + close; resolves the latency (ms) to the byte, rejects on error. */
function exchange(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    let latency = -1;
    const sock = net.connect({ host, port: args.port, noDelay: true });
    sock.once('connect', () => sock.write(ONE));
    sock.once('data', () => {
      latency = now() - t0;
      sock.end();
    });
    sock.on('error', (err) => {
      sock.destroy();
      reject(err);
    });
    sock.once('close', (hadError) => {
      if (hadError) return; // the 'error' handler rejected
      if (latency < 0) reject(new Error('closed before the byte came back'));
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
