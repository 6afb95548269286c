// A redis-server of the bench's own (suite gateway): on a free port of 127.0.0.1, no persistence
// (`--save '' --appendonly no`), tracked like every child and stopped by PID at the end; and the
// few commands the bench sends it itself (PING, INFO commandstats) over a raw socket, so the bench
// process loads no Redis client.
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './probes.ts';
import { isRunning, sleep, spawnToLog, stopProcess, tail, tmpDir } from './processes.ts';
import { errorMessage } from './report.ts';
import { findExecutable, versionOf } from './tools.ts';

export const redisServerBin = findExecutable('redis-server');

export interface BenchRedis {
  url: string;
  port: number;
  pid: number;
  proc: ChildProcess;
  logFile: string;
  version: string;
}

/** One RESP reply: a simple string, an integer, a bulk string (null when nil); an error reply throws. Arrays are not needed here. */
function parseReply(buf: Buffer): { value: string | number | null; done: true } | { done: false } {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return { done: false };
  const head = buf.subarray(1, eol).toString('utf8');
  switch (String.fromCharCode(buf[0])) {
    case '+':
      return { value: head, done: true };
    case ':':
      return { value: Number(head), done: true };
    case '-':
      throw new Error(`redis: ${head}`);
    case '$': {
      const n = Number(head);
      if (n < 0) return { value: null, done: true };
      if (buf.length < eol + 2 + n + 2) return { done: false };
      return { value: buf.subarray(eol + 2, eol + 2 + n).toString('utf8'), done: true };
    }
    default:
      throw new Error(`redis: unexpected reply ${JSON.stringify(buf.subarray(0, 40).toString('latin1'))}`);
  }
}

/** Sends one command on a fresh connection and returns its reply. */
export function redisCommand(port: number, args: readonly string[], timeoutMs = 2000): Promise<string | number | null> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => sock.destroy(new Error(`redis ${args[0]}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const done = (err: Error | null, value?: string | number | null): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value ?? null);
    };
    sock.once('connect', () => sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const r = parseReply(buf);
        if (r.done) done(null, r.value);
      } catch (err) {
        done(err as Error);
      }
    });
    sock.on('error', (err) => done(err));
    sock.once('close', () => done(new Error(`redis ${args[0]}: connection closed before the reply`)));
  });
}

/** Calls so far per command (`INFO commandstats`, names lower-case as Redis gives them: `evalsha`, `config|resetstat`). */
export async function commandCalls(port: number): Promise<Map<string, number>> {
  const info = String(await redisCommand(port, ['INFO', 'commandstats']));
  const calls = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1], Number(m[2]));
  return calls;
}

/** Starts redis-server on a free port; ready once it answers PING (within 10 s). */
export async function startRedis(name: string): Promise<BenchRedis> {
  if (redisServerBin === null) throw new Error('redis-server is not installed');
  const port = await freePort();
  const logFile = path.join(tmpDir, `${name}.log`);
  const proc = spawnToLog(redisServerBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], logFile);
  const deadline = Date.now() + 10_000;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(proc)) throw new Error(`redis-server exited (code ${proc.exitCode}, signal ${proc.signalCode}) ${tail(logFile)}`);
    try {
      if ((await redisCommand(port, ['PING'], 1000)) === 'PONG') {
        return { url: `redis://127.0.0.1:${port}`, port, pid: proc.pid ?? 0, proc, logFile, version: versionOf(redisServerBin, ['--version']) };
      }
    } catch (err) {
      last = errorMessage(err);
    }
    await sleep(100);
  }
  await stopProcess(proc);
  throw new Error(`redis-server on port ${port} not ready after 10 s (${last}) ${tail(logFile)}`);
}
