/**
 * Logs (docs/logging.md): the access log's formats for real requests, its lines for layer 4
 * connections and UDP sessions, the process log's pretty and JSON formats, and the reload line
 * that says what changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/index.ts';
import { prettyLine } from '../../src/observability/logger.ts';
import { parseAccessLogFormat } from '../../src/observability/access-log.ts';
import { closedPort, startOrigin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { MAIN, NODE, ROOT } from './helpers/paths.ts';

/** A scratch directory for a log file, removed after the test. */
async function scratch(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-logging-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The log file's lines once `done` holds for them (polled: the writer flushes within ~20 ms). */
async function linesWhen(file: string, done: (lines: string[]) => boolean, what: string): Promise<string[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const lines = text.split('\n').filter((l) => l !== '');
    if (done(lines)) return lines;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the log has:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One HTTP/1.1 GET with the given headers; resolves with the status once the body is read. */
function get(url: string, headers: Record<string, string>): Promise<number> {
  return guard(
    new Promise<number>((resolve, reject) => {
      const req = http.get(url, { headers, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    }),
    `GET ${url}`,
    10_000,
  );
}

async function httpGateway(t: { after(fn: () => Promise<void>): void }, opts: Partial<GatewayOptions>): Promise<{ gw: Gateway; file: string; origin: string }> {
  const file = join(await scratch(t), 'access.log');
  const origin = await startOrigin('A');
  t.after(() => origin.close());
  const gw = await startGateway({
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      routes: { app: { match: { path: '/app/' }, upstream: 'app' } },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
    },
    accessLog: file,
    logLevel: 'silent',
    ...opts,
  });
  t.after(() => gw.stop({ drainTimeout: 1000 }));
  return { gw, file, origin: origin.url };
}

const CLF = /^(\S+) (\S+) (\S+) \[(\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+|-)/;
const QUOTED = / "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;
const HEADERS = { referer: 'https://example.test/from', 'user-agent': 'probe/1.0 "quoted"' };

test('access log, common: one Common Log Format line per request', async (t) => {
  const { gw, file } = await httpGateway(t, { accessLogFormat: 'common' });
  assert.equal(await get(`${gw.url('web')}/app/page?x=1`, HEADERS), 200);
  assert.equal(await get(`${gw.url('web')}/nowhere`, HEADERS), 404);
  const lines = await linesWhen(file, (l) => l.length === 2, 'two lines');
  const [ok, missing] = lines.map((l) => CLF.exec(l));
  assert.ok(ok && missing, `Common Log Format lines:\n${lines.join('\n')}`);
  assert.deepEqual(ok.slice(1, 4), ['127.0.0.1', '-', '-']);
  assert.ok(Math.abs(Date.parse(ok[4]!.replace(':', ' ')) - Date.now()) < 60_000, `time ${ok[4]}`);
  assert.deepEqual(ok.slice(5, 9), ['GET', '/app/page?x=1', 'HTTP/1.1', '200']);
  assert.ok(Number(ok[9]) > 0, 'the body size');
  assert.deepEqual(missing.slice(5, 9), ['GET', '/nowhere', 'HTTP/1.1', '404']);
  assert.ok(!lines[0]!.includes('probe/1.0'), 'common has no User-Agent');
});

test('access log, combined: Common plus the Referer and User-Agent, quotes escaped', async (t) => {
  const { gw, file } = await httpGateway(t, { accessLogFormat: 'combined' });
  assert.equal(await get(`${gw.url('web')}/app/x`, HEADERS), 200);
  assert.equal(await get(`${gw.url('web')}/app/y`, {}), 200);
  const lines = await linesWhen(file, (l) => l.length === 2, 'two lines');
  const m = CLF.exec(lines[0]!);
  assert.ok(m, lines[0]);
  assert.deepEqual(m.slice(5, 9), ['GET', '/app/x', 'HTTP/1.1', '200']);
  assert.deepEqual(QUOTED.exec(lines[0]!)?.slice(1), ['https://example.test/from', 'probe/1.0 \\"quoted\\"']);
  assert.deepEqual(QUOTED.exec(lines[1]!)?.slice(1), ['-', '-'], 'absent headers are -');
});

test('access log, template: the fields named, in place, compiled once', async (t) => {
  const template = `c=\${client} m=\${method} p=\${path} s=\${status} u=\${upstream} e=\${endpoint} r=\${route} ua="\${userAgent}" id=\${requestId} tries=\${tries} ms=\${totalMs} $$x`;
  const { gw, file, origin } = await httpGateway(t, { accessLogFormat: parseAccessLogFormat(template) });
  assert.equal(await get(`${gw.url('web')}/app/z?q=1`, { ...HEADERS, 'x-request-id': 'rid-1' }), 200);
  const [line] = await linesWhen(file, (l) => l.length === 1, 'one line');
  const m = /^c=(\S+) m=(\S+) p=(\S+) s=(\d+) u=(\S+) e=(\S+) r=(\S+) ua="(.*)" id=(\S+) tries=(\d+) ms=([\d.]+) \$x$/.exec(line!);
  assert.ok(m, line);
  assert.deepEqual(m.slice(1, 11), ['127.0.0.1', 'GET', '/app/z', '200', 'app', origin, 'app', 'probe/1.0 \\"quoted\\"', 'rid-1', '1']);
  assert.ok(Number(m[11]) >= 0);
});

test('access log format: a bad format or an unknown field is refused, naming what is known', () => {
  assert.throws(() => parseAccessLogFormat('yaml'), /expected json, common, combined or a template/);
  assert.throws(() => parseAccessLogFormat(`\${client} \${nope}`), /unknown field "nope"; known fields: .*userAgent/);
  assert.throws(() => parseAccessLogFormat(`\${client`), /not closed/);
  assert.deepEqual(parseAccessLogFormat(`\${status}`), { template: `\${status}` });
});

/** A TCP origin that echoes, and ends when the client does. */
async function echoServer(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Connects, sends `text`, ends, and resolves with everything received once the connection closed. */
function exchange(port: number, text: string): Promise<string> {
  return guard(
    new Promise<string>((resolve) => {
      let got = '';
      const s = net.connect({ port, host: '127.0.0.1' }, () => s.end(text));
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('error', () => undefined);
      s.on('close', () => resolve(got));
    }),
    'a tcp exchange',
    10_000,
  );
}

test('access log: a tcp connection gets one line when it ends (json and common)', async (t) => {
  const echo = await echoServer(t);
  const dead = `tcp://127.0.0.1:${await closedPort()}`;
  const config = {
    listeners: {
      db: { address: '127.0.0.1:0', protocol: 'tcp', upstream: 'echo' },
      gone: { address: '127.0.0.1:0', protocol: 'tcp', upstream: 'dead' },
    },
    upstreams: { echo: { endpoints: [{ url: echo }] }, dead: { endpoints: [{ url: dead }] } },
  };
  const dir = await scratch(t);
  for (const format of ['json', 'common'] as const) {
    const file = join(dir, `${format}.log`);
    const gw = await startGateway({ config, accessLog: file, accessLogFormat: format, logLevel: 'silent' });
    t.after(() => gw.stop({ drainTimeout: 1000 }));
    assert.equal(await exchange(gw.address('db').port, 'ping-12345'), 'ping-12345');
    assert.equal(await exchange(gw.address('gone').port, 'x'), '');
    const lines = await linesWhen(file, (l) => l.length === 2, 'two connection lines');
    if (format === 'json') {
      const byListener = new Map(lines.map((l) => JSON.parse(l) as Record<string, unknown>).map((l) => [l.listener, l]));
      const ok = byListener.get('db')!;
      assert.equal(ok.protocol, 'tcp');
      assert.equal(ok.client, '127.0.0.1');
      assert.equal(typeof ok.clientPort, 'number');
      assert.equal(ok.upstream, 'echo');
      assert.equal(ok.endpoint, echo);
      assert.equal(ok.bytesIn, 10);
      assert.equal(ok.bytesOut, 10);
      assert.equal(ok.error, null);
      assert.ok((ok.totalMs as number) >= 0);
      const failed = byListener.get('gone')!;
      assert.equal(failed.upstream, 'dead');
      assert.equal(failed.endpoint, dead);
      assert.equal(failed.error, 'UPSTREAM_CONNECT_REFUSED');
      assert.equal(failed.bytesOut, 0);
    } else {
      const parsed = lines.map((l) => CLF.exec(l));
      assert.ok(parsed.every(Boolean), lines.join('\n'));
      const byListener = new Map(parsed.map((m) => [m![6], m!]));
      assert.deepEqual(byListener.get('db')!.slice(5, 10), ['TCP', 'db', echo, '200', '10']);
      assert.deepEqual(byListener.get('gone')!.slice(5, 10), ['TCP', 'gone', dead, '502', '-']);
    }
  }
});

test('access log: a UDP session gets one line when it ends', async (t) => {
  const origin = dgram.createSocket('udp4');
  origin.on('message', (msg, r) => origin.send(Buffer.concat([Buffer.from('re:'), msg]), r.port, r.address));
  await new Promise<void>((resolve) => origin.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => origin.close(() => resolve())));
  const endpoint = `udp://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  const file = join(await scratch(t), 'access.log');
  const gw = await startGateway({
    config: {
      listeners: { dns: { address: '127.0.0.1:0', protocol: 'udp', upstream: 'resolvers', udp: { sessionIdle: '100ms' } } },
      upstreams: { resolvers: { endpoints: [{ url: endpoint }] } },
    },
    accessLog: file,
    logLevel: 'silent',
  });
  t.after(() => gw.stop({ drainTimeout: 1000 }));
  const client = dgram.createSocket('udp4');
  t.after(() => new Promise<void>((resolve) => client.close(() => resolve())));
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  const reply = guard(new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString()))), 'the reply');
  client.send('query-1', gw.address('dns').port, '127.0.0.1');
  assert.equal(await reply, 're:query-1');
  // The session ends after sessionIdle of silence: then its line is written.
  const [line] = await linesWhen(file, (l) => l.length === 1, 'the session line');
  const l = JSON.parse(line!) as Record<string, unknown>;
  assert.equal(l.protocol, 'udp');
  assert.equal(l.listener, 'dns');
  assert.equal(l.client, '127.0.0.1');
  assert.equal(l.clientPort, (client.address() as AddressInfo).port);
  assert.equal(l.upstream, 'resolvers');
  assert.equal(l.endpoint, endpoint);
  assert.equal(l.bytesIn, 7);
  assert.equal(l.bytesOut, 10);
  assert.equal(l.error, null);
});

test('process log, pretty: time, level, message, then key=value; an error stack indented below', () => {
  const line = JSON.stringify({
    level: 40,
    time: '2030-01-02T03:04:05.678Z',
    name: 'switchboard',
    msg: 'endpoint down',
    upstream: 'app',
    reason: 'timed out after 2s',
    n: 3,
    err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.ts:1:1)' },
  });
  assert.equal(prettyLine(line), '03:04:05.678 WARN  endpoint down upstream=app reason="timed out after 2s" n=3 err=boom\n    Error: boom\n        at x (y.ts:1:1)\n');
  assert.ok(prettyLine(line, true).includes('\x1b[33mWARN '), 'a terminal gets colours');
  assert.equal(prettyLine('not json'), 'not json\n');
});

const CONFIG_YAML = (workers: number): string[] => [
  `workers: ${workers}`,
  'listeners:',
  '  web:',
  '    address: "127.0.0.1:0"',
  '    protocol: http',
  'routes:',
  '  all:',
  '    upstream: app',
  'upstreams:',
  '  app:',
];

/**
 * Runs `switchboard start` with `workers` (through `wrap` when given: a pseudo-terminal) until
 * the output (its stderr, or the terminal) matches `until`, then kills it; returns that output.
 */
async function startedOutput(
  t: { after(fn: () => Promise<void>): void },
  args: string[],
  opts: { workers: number; until: RegExp; wrap?: (cmd: string[]) => string[] },
): Promise<string> {
  const wrap = opts.wrap;
  const origin = await startOrigin('A');
  t.after(() => origin.close());
  const file = join(await scratch(t), 'switchboard.yaml');
  await writeFile(file, [...CONFIG_YAML(opts.workers), '    endpoints:', `      - url: ${origin.url}`, ''].join('\n'));
  const cmd = [NODE, MAIN, ...args, 'start', '-c', file, '--no-watch', '--access-log', 'off'];
  const [bin, ...rest] = wrap ? wrap(cmd) : cmd;
  const child = spawn(bin!, rest, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, NO_COLOR: '1' } });
  const kill = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
  };
  t.after(async () => kill());
  let out = '';
  const started = new Promise<void>((resolve) => {
    const read = (d: Buffer): void => {
      out += d.toString();
      if (opts.until.test(out)) resolve();
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
  });
  await guard(started, `"switchboard started" from ${cmd.join(' ')}`, 15_000).catch((err: Error) => {
    throw new Error(`${err.message}; output so far:\n${out}`);
  });
  kill();
  return out;
}

const PRETTY_STARTED = /^\d\d:\d\d:\d\d\.\d{3} INFO {2}switchboard started listeners=/m;

test('process log: JSON when stderr is not a terminal', async (t) => {
  const out = await startedOutput(t, [], { workers: 1, until: /switchboard started/ });
  const line = out.split('\n').find((l) => l.includes('switchboard started'))!;
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(parsed.msg, 'switchboard started');
  assert.equal(parsed.level, 30);
});

test('process log: --log-format pretty forces the human format on a pipe, in the supervisor and its workers', async (t) => {
  const out = await startedOutput(t, ['--log-format', 'pretty'], { workers: 2, until: /switchboard started .*workers=2/ });
  assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}switchboard started worker=1 pid=\d+ listeners=/m, 'a worker');
  assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}switchboard started listeners=\S+ workers=2 pid=\d+$/m, 'the supervisor');
  assert.ok(!out.includes('"msg"'), `no JSON line:\n${out}`);
});

test('process log: pretty by default when stderr is a terminal (script gives it one)', async (t) => {
  if (spawnSync('script', ['--version']).status !== 0) return t.skip('script (util-linux) is not installed');
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
  const out = await startedOutput(t, [], { workers: 1, until: /switchboard started/, wrap: (cmd) => ['script', '-qfec', cmd.map(quote).join(' '), '/dev/null'] });
  assert.match(out.replaceAll('\r', ''), PRETTY_STARTED);
  assert.ok(!out.includes('"msg":"switchboard started"'), 'not JSON');
});

test('reload: one info line lists the listeners, routes and upstreams added, removed and changed', async (t) => {
  const [a, b] = await Promise.all([startOrigin('A'), startOrigin('B')]);
  t.after(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const config = (v: 1 | 2): object => ({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' }, ...(v === 2 ? { more: { address: '127.0.0.1:0', protocol: 'http' } } : {}) },
    routes: {
      api: { match: { path: v === 1 ? '/api/' : '/v2/api/' }, upstream: 'app' },
      ...(v === 1 ? { old: { match: { path: '/old/' }, upstream: 'app' } } : { fresh: { match: { path: '/new/' }, upstream: 'other' } }),
      same: { match: { path: '/same/' }, upstream: 'app' },
    },
    upstreams: {
      app: { endpoints: v === 1 ? [{ url: a.url }] : [{ url: a.url }, { url: b.url }] },
      ...(v === 2 ? { other: { endpoints: [{ url: b.url }] } } : {}),
    },
  });
  const gw = await startGateway({ config: config(1), logger: pino({ level: 'info' }, sink) });
  t.after(() => gw.stop({ drainTimeout: 1000 }));
  assert.deepEqual((await gw.reload(config(2))).errors, []);
  assert.deepEqual((await gw.reload(config(2))).errors, []);
  const reloaded = lines.filter((l) => l.msg === 'config reloaded');
  assert.equal(reloaded.length, 2, JSON.stringify(lines));
  const [changed, same] = reloaded;
  assert.deepEqual(changed!.added, { listeners: ['more'], routes: ['fresh'], upstreams: ['other'] });
  assert.deepEqual(changed!.removed, { routes: ['old'] });
  assert.deepEqual(changed!.changed, { routes: ['api'], upstreams: ['app'] });
  assert.equal(changed!.settings, undefined);
  for (const key of ['added', 'removed', 'changed', 'settings']) assert.equal(same![key], undefined, `the same config again changes nothing (${key})`);
});
