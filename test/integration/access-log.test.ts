/**
 * The access log: one JSON line per finished request, with the fields operators grep for, to a
 * file through the API and to stdout (or nowhere) through the CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../../src/index.ts';
import { closedPort, startOrigin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { MAIN, NODE, ROOT } from './helpers/paths.ts';

interface Sent {
  status: number;
  requestId: string;
  bodySize: number;
}

function send(url: string, init?: RequestInit): Promise<Sent> {
  const exchange = async (): Promise<Sent> => {
    const res = await fetch(url, init);
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, requestId: res.headers.get('x-request-id') ?? '', bodySize: body.length };
  };
  return guard(exchange(), `${init?.method ?? 'GET'} ${url}`, 10_000);
}

type Line = Record<string, unknown>;

function parseLines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);
}

interface Scenario {
  lines: Line[];
  byId: Map<unknown, Line>;
  host: string;
  originUrl: string;
  deadUrl: string;
  ok: Sent;
  notFound: Sent;
  badGateway: Sent;
  post: Sent;
}

/** A 200, a 404 (no route), a 502 (refused endpoint) and a POST with a body; then stop and read the file. */
async function fileScenario(): Promise<Scenario> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-access-'));
  const logFile = join(dir, 'logs', 'access.log');
  const origin = await startOrigin('A');
  const dead = await closedPort();
  const gw = await startGateway({
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      routes: {
        ok: { match: { path: '/ok/' }, upstream: 'app' },
        broken: { match: { path: '/dead/' }, upstream: 'gone' },
      },
      upstreams: {
        app: { endpoints: [{ url: origin.url }] },
        gone: { endpoints: [{ url: `http://127.0.0.1:${dead}` }] },
      },
    },
    accessLog: logFile,
    logLevel: 'silent',
  });
  let stopped = false;
  try {
    const url = gw.url('web');
    const { port } = gw.address('web');
    const ok = await send(`${url}/ok/page?x=1`);
    const notFound = await send(`${url}/nowhere`);
    const badGateway = await send(`${url}/dead/x`);
    const post = await send(`${url}/ok/submit`, {
      method: 'POST',
      body: 'p'.repeat(1234),
      headers: { 'content-type': 'text/plain', 'x-request-id': 'client-chosen-id' },
    });
    assert.deepEqual([ok.status, notFound.status, badGateway.status, post.status], [200, 404, 502, 200]);
    assert.equal(post.requestId, 'client-chosen-id');

    // stop() flushes the access log.
    await guard(gw.stop({ drainTimeout: 2000 }), 'the gateway to stop', 10_000);
    stopped = true;
    const lines = parseLines(await readFile(logFile, 'utf8'));
    const byId = new Map(lines.map((l) => [l.requestId, l]));
    return { lines, byId, host: `127.0.0.1:${port}`, originUrl: origin.url, deadUrl: `http://127.0.0.1:${dead}`, ok, notFound, badGateway, post };
  } finally {
    if (!stopped) await gw.stop({ drainTimeout: 2000 });
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
}

let scenario: Promise<Scenario> | undefined;
const runScenario = (): Promise<Scenario> => (scenario ??= fileScenario());

test('access log file: one JSON line per request with the request, routing, timing and error fields', async () => {
  const { lines, byId, host, originUrl, deadUrl, ok, notFound, badGateway, post } = await runScenario();
  assert.equal(lines.length, 4, `one line per request:\n${JSON.stringify(lines, null, 1)}`);
  for (const sent of [ok, notFound, badGateway, post]) assert.ok(sent.requestId && byId.has(sent.requestId), `a line for ${sent.requestId}`);

  for (const l of lines) {
    assert.equal(typeof l.time, 'string');
    assert.ok(Math.abs(Date.parse(l.time as string) - Date.now()) < 60_000, `time ${String(l.time)}`);
    assert.equal(l.client, '127.0.0.1');
    assert.equal(l.host, host);
    assert.equal(typeof l.totalMs, 'number');
    assert.ok((l.totalMs as number) >= 0);
  }

  const lOk = byId.get(ok.requestId)!;
  assert.equal(lOk.method, 'GET');
  assert.equal(lOk.path, '/ok/page');
  assert.equal(lOk.status, 200);
  assert.equal(lOk.bytesIn, 0);
  assert.ok(ok.bodySize > 0);
  assert.equal(lOk.bytesOut, ok.bodySize);
  assert.equal(lOk.route, 'ok');
  assert.equal(lOk.upstream, 'app');
  assert.equal(lOk.endpoint, originUrl);
  assert.equal(typeof lOk.upstreamMs, 'number');
  assert.ok((lOk.upstreamMs as number) <= (lOk.totalMs as number));
  assert.equal(lOk.error ?? null, null);
  assert.equal(lOk.tries, 1);
  assert.equal(lOk.protocol, 'HTTP/1.1');

  const l404 = byId.get(notFound.requestId)!;
  assert.equal(l404.method, 'GET');
  assert.equal(l404.path, '/nowhere');
  assert.equal(l404.status, 404);
  assert.equal(l404.error, 'ROUTE_NOT_FOUND');
  assert.equal(l404.route ?? null, null);
  assert.equal(l404.upstream ?? null, null);
  assert.equal(l404.endpoint ?? null, null);
  assert.equal(l404.upstreamMs ?? null, null);
  assert.equal(l404.tries, 0);

  const l502 = byId.get(badGateway.requestId)!;
  assert.equal(l502.path, '/dead/x');
  assert.equal(l502.status, 502);
  assert.equal(l502.error, 'UPSTREAM_CONNECT_REFUSED');
  assert.equal(l502.route, 'broken');
  assert.equal(l502.upstream, 'gone');
  assert.equal(l502.endpoint, deadUrl);
  assert.equal(l502.upstreamMs ?? null, null, 'no response headers ever came');

  const lPost = byId.get(post.requestId)!;
  assert.equal(lPost.method, 'POST');
  assert.equal(lPost.path, '/ok/submit');
  assert.equal(lPost.status, 200);
  assert.equal(lPost.bytesIn, 1234);
  assert.equal(lPost.bytesOut, post.bodySize);
  assert.equal(lPost.route, 'ok');
  assert.equal(lPost.endpoint, originUrl);
  assert.equal(lPost.error ?? null, null);
});

test('access log file: bytesOut of an error response is the size of the error body sent', async () => {
  const { byId, notFound, badGateway } = await runScenario();
  assert.ok(notFound.bodySize > 0 && badGateway.bodySize > 0);
  assert.equal(byId.get(notFound.requestId)!.bytesOut, notFound.bodySize);
  assert.equal(byId.get(badGateway.requestId)!.bytesOut, badGateway.bodySize);
});

/**
 * Runs `switchboard start` with an access log target and makes two requests; with `live`, waits for
 * both lines to reach stdout while the process still runs. Then SIGTERM; returns all of stdout.
 */
async function cliStdout(accessLog: string, live: boolean): Promise<{ stdout: string; ids: string[]; code: number | string }> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-access-cli-'));
  const file = join(dir, 'switchboard.yaml');
  const origin = await startOrigin('A');
  await writeFile(
    file,
    [
      'listeners:',
      '  web:',
      '    address: "127.0.0.1:0"',
      '    protocol: http',
      'routes:',
      '  all:',
      '    upstream: app',
      'upstreams:',
      '  app:',
      '    endpoints:',
      `      - url: ${origin.url}`,
      '',
    ].join('\n'),
  );
  const child = spawn(NODE, [MAIN, 'start', '-c', file, '--no-watch', '--access-log', accessLog], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let stdout = '';
    let stderr = '';
    let onStdout = (): void => undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      onStdout();
    });
    // 'close', not 'exit': both pipes have been read to the end.
    const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
    const url = await guard(
      new Promise<string>((resolve, reject) => {
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
          const m = /"listeners":\{"web":"(http:\/\/[^"]+)"\}/.exec(stderr);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
      }),
      'the started line',
      15_000,
    );
    const a = await send(`${url}/one`);
    const b = await send(`${url}/two`, { method: 'POST', body: 'abc' });
    assert.deepEqual([a.status, b.status], [200, 200]);
    if (live) {
      await guard(
        new Promise<void>((resolve) => {
          onStdout = () => {
            if (stdout.includes(b.requestId) && stdout.includes(a.requestId)) resolve();
          };
          onStdout();
        }),
        'both access log lines on stdout while running',
        10_000,
      );
    }
    child.kill('SIGTERM');
    const code = await guard(exited, 'the process to exit', 10_000);
    return { stdout, ids: [a.requestId, b.requestId], code };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('CLI: --access-log stdout prints one JSON line per request on stdout, while running', async () => {
  const { stdout, ids, code } = await cliStdout('stdout', true);
  assert.equal(code, 0);
  const lines = parseLines(stdout);
  assert.deepEqual(
    lines.map((l) => [l.requestId, l.method, l.path, l.status]),
    [
      [ids[0], 'GET', '/one', 200],
      [ids[1], 'POST', '/two', 200],
    ],
  );
  assert.equal(lines[1]!.bytesIn, 3);
});

test('CLI: --access-log off prints nothing on stdout', async () => {
  const { stdout, code } = await cliStdout('off', false);
  assert.equal(code, 0);
  assert.equal(stdout, '');
});
