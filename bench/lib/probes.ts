// Is it up and answering: free ports, one HTTP(S) GET, one TCP exchange, and waiting for a
// freshly started process to answer either.
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { TcpTest } from './loadgen.ts';
import { isRunning, sleep, tail } from './processes.ts';
import { errorMessage } from './report.ts';

/** A port that was free a moment ago: bind 127.0.0.1:0, read it back, close. */
export function freePort(): Promise<number> {
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

export interface HttpProbe {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * GET over HTTP/1.1; an https:// URL is verified against `ca` (the bench's throwaway CA). `headers`
 * go on the request (a subject's API key or bearer token).
 */
export function httpGet(url: string, timeoutMs = 2000, ca?: string, headers?: Readonly<Record<string, string>>): Promise<HttpProbe> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const req = url.startsWith('https:')
      ? https.get(url, { agent: false, timeout: timeoutMs, ca, servername: 'localhost', headers }, onResponse)
      : http.get(url, { agent: false, timeout: timeoutMs, headers }, onResponse);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls `url` (with `headers`) until it answers 200, the process dies, or the deadline passes. */
export async function waitReady(
  url: string,
  cp: ChildProcess,
  logFile: string,
  timeoutMs = 10_000,
  ca?: string,
  headers?: Readonly<Record<string, string>>,
): Promise<HttpProbe> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(cp)) throw new Error(`exited (code ${cp.exitCode}, signal ${cp.signalCode}) ${tail(logFile)}`);
    try {
      const probe = await httpGet(url, 2000, ca, headers);
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
 * One exchange with a tcp-origin, directly or through a proxy: `bulk` sends 64 KiB, half-closes and
 * expects the sink's "65536\n"; `rate` sends one byte and expects it back and the close.
 */
export function tcpProbe(port: number, test: TcpTest, timeoutMs = 2000): Promise<void> {
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
export async function waitTcpReady(port: number, cp: ChildProcess, logFile: string, timeoutMs = 10_000): Promise<void> {
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
