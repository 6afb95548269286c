/**
 * A redis-server of the test's own, on a free port of 127.0.0.1 (the machine's Redis on 6379 is
 * others' and keeps running): started, stopped and restarted by the test, killed by PID in `after`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { guard } from './guard.ts';
import { closedPort } from './origin.ts';

/** A running redis-server; `stop` kills it by PID and waits for its exit. */
export interface RedisServer {
  port: number;
  url: string;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Whether a PING on a fresh connection gets +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: string) => {
      reply += d;
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
  });
}

/** Starts redis-server on `port` (a free one when not given), ready once it answers PING. */
export async function startRedis(port?: number): Promise<RedisServer> {
  const p = port ?? (await closedPort());
  const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let said: () => void = () => {};
  const onOutput = (d: string): void => {
    output += d;
    said();
  };
  child.stdout?.setEncoding('utf8').on('data', onOutput);
  child.stderr?.setEncoding('utf8').on('data', onOutput);
  const exited = once(child, 'exit').then(() => {
    throw new Error(`redis-server exited before it was ready: ${output}`);
  });
  // Ready means it answers: once it says it accepts connections, a PING must get PONG.
  const ready = (async () => {
    while (!output.includes('Ready to accept connections')) await new Promise<void>((r) => (said = r));
    if (!(await ping(p))) throw new Error(`redis-server on port ${p} said it was ready but does not answer PING`);
  })();
  await guard(Promise.race([ready, exited]), `redis-server on port ${p}`, 10_000);
  exited.catch(() => {});
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    child,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      process.kill(child.pid as number, signal);
      await guard(gone, 'redis-server exit', 5000);
    },
  };
}
