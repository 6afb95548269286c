/**
 * The `switchboard start` process and its signals: SIGTERM drains (in-flight requests finish with
 * `Connection: close`, new connections are refused, exit 0), SIGHUP reloads, and the drain timeout
 * bounds how long a stuck request can hold the shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { MAIN, NODE, ROOT } from './helpers/paths.ts';

interface Cli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** Resolves with the first stderr JSON log line that satisfies `pred`. */
  logLine: (pred: (line: Record<string, unknown>) => boolean, what: string) => Promise<Record<string, unknown>>;
  kill: () => void;
}

function runCli(args: string[]): Cli {
  const child = spawn(NODE, [MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of watchers) w();
  });
  // 'close', not 'exit': both pipes have been read to the end.
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
  const logLine = (pred: (line: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> => {
    let w: () => void = () => undefined;
    const found = new Promise<Record<string, unknown>>((resolve, reject) => {
      w = () => {
        for (const raw of err.split('\n')) {
          if (!raw.startsWith('{')) continue;
          let line: Record<string, unknown>;
          try {
            line = JSON.parse(raw) as Record<string, unknown>;
          } catch {
            continue;
          }
          if (pred(line)) return resolve(line);
        }
      };
      watchers.add(w);
      w();
      void exited.then((code) => reject(new Error(`process exited (${code}) before ${what}; stderr:\n${err}`)));
    });
    return guard(found, what, 15_000).finally(() => watchers.delete(w));
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    logLine,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Starts `switchboard start` and resolves with the `web` listener's port, from the started log line. */
async function started(cli: Cli): Promise<number> {
  const line = await cli.logLine((l) => l.msg === 'switchboard started' && typeof l.listeners === 'object', 'the started line');
  const url = (line.listeners as Record<string, string>).web!;
  return Number(new URL(url).port);
}

function yaml(origin: Origin, extra = ''): string {
  return [
    'listeners:',
    '  web:',
    '    address: "127.0.0.1:0"',
    '    protocol: http',
    'routes:',
    '  all:',
    '    match: { path: / }',
    '    upstream: app',
    'upstreams:',
    '  app:',
    '    endpoints:',
    `      - url: ${origin.url}`,
    extra,
    '',
  ].join('\n');
}

/** A held origin: answers each request only when the test releases it (or never). */
async function holdingOrigin(name: string): Promise<{ origin: Origin; arrived: Promise<void>; release: () => void }> {
  let arrived!: () => void;
  const arrivedP = new Promise<void>((r) => (arrived = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const origin = await startOrigin(name, (_req, res) => {
    arrived();
    void released.then(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': name });
      res.end('finally');
    });
  });
  return { origin, arrived: arrivedP, release };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      // Accepted by the kernel: see whether the server keeps it or resets it.
      s.once('close', () => resolve('closed'));
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      s.once('data', () => {
        s.destroy();
        resolve('answered');
      });
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

async function tmpConfig(): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-lifecycle-'));
  return { dir, file: join(dir, 'switchboard.yaml') };
}

test('SIGTERM drains: the in-flight request completes with Connection: close, new connections are refused, exit 0', async () => {
  const { dir, file } = await tmpConfig();
  const held = await holdingOrigin('slow');
  await writeFile(file, yaml(held.origin));
  const cli = runCli(['start', '-c', file, '--no-watch', '--access-log', 'off']);
  try {
    const port = await started(cli);
    // Keep-alive agent: without draining, the response would say keep-alive.
    const agent = new http.Agent({ keepAlive: true });
    const slow = request(port, '/slow', agent);
    await guard(held.arrived, 'the slow request to reach its origin', 5000);

    cli.child.kill('SIGTERM');
    await cli.logLine((l) => l.msg === 'draining' && l.signal === 'SIGTERM', 'the draining line');
    const fresh = await tryConnect(port);
    assert.ok(['ECONNREFUSED', 'ECONNRESET'].includes(fresh), `a new connection during the drain: ${fresh}`);
    assert.equal(cli.child.exitCode, null, 'still draining while the request is in flight');

    held.release();
    const answer = await guard(slow, 'the slow response', 5000);
    agent.destroy();
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'finally');
    assert.equal(answer.headers['x-origin'], 'slow');
    assert.equal(answer.headers.connection, 'close');

    assert.equal(await guard(cli.exited, 'the process to exit', 10_000), 0);
    assert.match(cli.stderr(), /switchboard stopped/);
  } finally {
    held.release();
    cli.kill();
    await held.origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGHUP reloads the config file (with --no-watch)', async () => {
  const { dir, file } = await tmpConfig();
  const [a, b] = await Promise.all([startOrigin('A'), startOrigin('B')]);
  await writeFile(file, yaml(a));
  const cli = runCli(['start', '-c', file, '--no-watch', '--access-log', 'off']);
  try {
    const port = await started(cli);
    assert.equal((await request(port, '/')).headers['x-origin'], 'A');

    await writeFile(file, yaml(b));
    // --no-watch: the edit alone changes nothing.
    assert.equal((await request(port, '/')).headers['x-origin'], 'A');

    cli.child.kill('SIGHUP');
    await cli.logLine((l) => l.msg === 'config reloaded', 'the reloaded line');
    const answer = await request(port, '/after-hup');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['x-origin'], 'B');
    assert.equal(cli.child.exitCode, null, 'SIGHUP does not stop the process');

    cli.child.kill('SIGTERM');
    assert.equal(await guard(cli.exited, 'the process to exit', 10_000), 0);
  } finally {
    cli.kill();
    await Promise.all([a.close(), b.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});

test('the drain timeout bounds shutdown: a request that never completes does not hold SIGTERM', async () => {
  const { dir, file } = await tmpConfig();
  const held = await holdingOrigin('never'); // never released
  await writeFile(file, yaml(held.origin, 'drainTimeout: 300ms'));
  const cli = runCli(['start', '-c', file, '--no-watch', '--access-log', 'off']);
  try {
    const port = await started(cli);
    const stuck = request(port, '/stuck').then(
      (a) => `answered ${a.status}`,
      (err: NodeJS.ErrnoException) => `failed ${err.code ?? err.message}`,
    );
    await guard(held.arrived, 'the stuck request to reach its origin', 5000);

    cli.child.kill('SIGTERM');
    // The default drain timeout is 30s; the config's 300ms must apply. 10s is only a failure guard.
    assert.equal(await guard(cli.exited, 'the process to exit', 10_000), 0);
    const outcome = await guard(stuck, 'the stuck request to end', 5000);
    assert.notEqual(outcome, 'answered 200', 'the origin never answered');
  } finally {
    held.release();
    cli.kill();
    await held.origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});
