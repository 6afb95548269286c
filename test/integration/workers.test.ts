/**
 * Workers (issue 11): `switchboard start` with `workers: 2` runs a supervisor and two worker
 * processes. Real processes, real signals, a steady load of real requests.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { Instance, type StartArgs } from './helpers/instance.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';
import { named } from './helpers/traffic.ts';
import { SteadyLoad } from './helpers/steady-load.ts';
import { guard } from './helpers/guard.ts';
import { runCli } from './helpers/run-cli.ts';
import { loadConfigObject } from '../../src/index.ts';

const dir = await mkdtemp(join(tmpdir(), 'switchboard-workers-'));
const instances: Instance[] = [];
const origins: Origin[] = [];
after(async () => {
  for (const i of instances) i.kill();
  await Promise.all(origins.map((o) => o.close()));
  await rm(dir, { recursive: true, force: true });
});

function config(upstreamUrl: string, extra = ''): string {
  return `workers: 2
drainTimeout: 10s
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${upstreamUrl}" }] }
routes:
  all: { match: { path: / }, upstream: app }
${extra}`;
}

async function start(name: string, text: string, args: StartArgs = {}): Promise<{ inst: Instance; file: string }> {
  const started = await Instance.startWith(dir, name, text, args);
  instances.push(started.inst);
  return started;
}

async function origin(name: string): Promise<Origin> {
  const o = await startOrigin(name, named(name));
  origins.push(o);
  return o;
}

test('two workers start under one supervisor; a SIGKILLed worker loses only its own requests and is replaced at once', async () => {
  const a = await origin('A');
  const { inst } = await start('crash', config(a.url));
  const before = inst.workerPids();
  assert.equal(before.length, 2, `two workers: ${JSON.stringify(before)}`);

  const load = new SteadyLoad(inst.url('web'), { keepAlive: 2, fresh: 2 });
  try {
    await load.more(200);
    const victim = before[0]!;
    const killedAt = performance.now();
    process.kill(victim, 'SIGKILL');
    const replaced = await inst.next((l) => l.msg === 'switchboard started' && l.worker !== undefined && !before.includes(l.pid!));
    const replacedAt = performance.now();
    await load.more(300);
    await load.stop();
    const after = inst.workerPids();
    assert.equal(after.length, 2, `two workers again: ${JSON.stringify(after)}`);
    assert.ok(!after.includes(victim) && after.includes(replaced.pid!), 'the dead worker was replaced');
    // Only requests in flight on the dead worker's connections may fail: at most one per loop,
    // and none that started after it was gone.
    const failed = load.failures();
    assert.ok(failed.length <= 4, `at most the 4 loops' in-flight requests failed: ${JSON.stringify(failed)}`);
    for (const f of failed)
      assert.ok(f.startedAt <= killedAt + 50 || f.startedAt < replacedAt, `failed request started after the kill was handled: ${JSON.stringify(f)}`);
    const late = load.outcomes.filter((o) => o.startedAt > replacedAt);
    assert.ok(late.length >= 300 && late.every((o) => o.ok), 'every request after the replacement succeeded');
  } finally {
    await load.stop();
  }
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('reload (SIGHUP) and upgrade (SIGUSR2) under a steady load of keep-alive and new connections: every request answered', async () => {
  const a = await origin('A');
  const b = await origin('B');
  const { inst, file } = await start('reload', config(a.url));
  const load = new SteadyLoad(inst.url('web'), { keepAlive: 4, fresh: 4 });
  try {
    await load.more(200);
    // Reload to origin B: validated once by the supervisor, swapped in by both workers.
    await writeFile(file, config(b.url));
    inst.signal('SIGHUP');
    const reloaded = await inst.next((l) => l.msg === 'config reloaded' && l.worker === undefined);
    // What changed is logged once, by the supervisor (docs/logging.md); the workers' own lines are debug.
    assert.deepEqual((reloaded as unknown as { changed: unknown }).changed, { upstreams: ['app'] });
    assert.ok(!inst.lines.some((l) => l.msg === 'config reloaded' && l.worker !== undefined), 'no worker logs the reload at info');
    const reloadedAt = performance.now();
    await load.more(300);
    // Upgrade: a new Switchboard from the code on disk (its own supervisor and workers) takes the
    // listening sockets over; then this one drains and exits 0.
    const old = inst.workerPids();
    inst.signal('SIGUSR2');
    const handed = await inst.next((l) => l.msg === 'upgrade: the new Switchboard serves; this one drains', 60_000);
    const successor = handed.pid!;
    assert.notEqual(successor, inst.child.pid, 'a new supervisor process');
    assert.equal(await inst.exited(30_000), 0, 'the old supervisor drained and exited 0');
    // The old workers drained and exited; the new supervisor's two serve.
    for (const pid of old) await inst.next((l) => l.msg === 'switchboard stopped' && l.pid === pid, 20_000, 0);
    const fresh = inst.workerPids();
    assert.equal(fresh.length, 2, `the new workers: ${JSON.stringify(fresh)}`);
    assert.ok(
      fresh.every((p) => !old.includes(p)),
      `new worker processes: ${JSON.stringify({ old, fresh })}`,
    );
    await load.more(300);
    await load.stop();
    assert.deepEqual(load.failures(), [], 'no request failed');
    const afterReload = load.outcomes.filter((o) => o.startedAt > reloadedAt);
    assert.ok(afterReload.length > 0 && afterReload.every((o) => o.origin === 'B'), 'after the reload, B answers');
    // The new supervisor stops as the old one did (it is in the test's process group as well).
    const from = inst.lines.length;
    process.kill(successor, 'SIGTERM');
    await inst.next((l) => l.msg === 'switchboard stopped' && l.worker === undefined, 30_000, from);
  } finally {
    await load.stop();
  }
});

test('upgrade (SIGUSR2) of a lone process (workers: 1): the new process takes the sockets and the PID file; every request answered', async () => {
  const a = await origin('A');
  const pidFile = join(dir, 'lone.pid');
  const { inst } = await start('lone', config(a.url, 'admin: { address: "127.0.0.1:0" }').replace('workers: 2', 'workers: 1'), {
    start: ['--pid-file', pidFile],
  });
  assert.equal((await readFile(pidFile, 'utf8')).trim(), String(inst.child.pid));
  const admin = inst.lines.find((l) => l.msg === 'switchboard started')!.admin as string;
  const load = new SteadyLoad(inst.url('web'), { keepAlive: 2, fresh: 2 });
  try {
    await load.more(200);
    inst.signal('SIGUSR2');
    const handed = await inst.next((l) => l.msg === 'upgrade: the new Switchboard serves; this one drains', 60_000);
    const successor = handed.pid!;
    assert.notEqual(successor, inst.child.pid);
    assert.equal((await readFile(pidFile, 'utf8')).trim(), String(successor), 'the PID file names the new process before the old one goes');
    assert.equal(await inst.exited(30_000), 0, 'the old process drained and exited 0');
    const gone = performance.now();
    await load.more(300);
    await load.stop();
    assert.deepEqual(load.failures(), [], 'no request failed');
    assert.ok(
      load.outcomes.some((o) => o.startedAt > gone && o.ok),
      'the new process answers',
    );
    assert.equal((await readFile(pidFile, 'utf8')).trim(), String(successor), 'the old process left the PID file alone');
    // The admin socket was handed over too: with the old process gone, the same port (0 in the
    // config) answers.
    const ready = await fetch(new URL('/readyz', admin));
    assert.equal(ready.status, 200);
    const from = inst.lines.length;
    process.kill(successor, 'SIGTERM');
    await inst.next((l) => l.msg === 'switchboard stopped', 30_000, from);
  } finally {
    await load.stop();
  }
});

test('an upgrade whose old process is killed before the new one serves: the new process serves on (it does not crash on the closed channel)', async () => {
  const a = await origin('A');
  const { inst } = await start('orphan', config(a.url).replace('workers: 2', 'workers: 1'));
  const url = inst.url('web');
  inst.signal('SIGUSR2');
  const spawned = await inst.next((l) => l.msg === 'upgrade: started a new Switchboard from the code on disk', 60_000);
  const successor = spawned.pid!;
  // The old process goes before the new one can say it is ready: the new one finds the channel closed.
  const from = inst.lines.length;
  process.kill(inst.child.pid!, 'SIGKILL');
  try {
    // A lone process logs no pid: after the kill, only the new process can say it started.
    await inst.next((l) => l.msg === 'switchboard started', 60_000, from);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'A');
    }
    // It stops as usual, which a crashed process would never log.
    const stopping = inst.lines.length;
    process.kill(successor, 'SIGTERM');
    await inst.next((l) => l.msg === 'switchboard stopped', 30_000, stopping);
  } finally {
    try {
      process.kill(successor, 'SIGKILL');
    } catch {
      // stopped already
    }
  }
});

test('an upgrade whose new process cannot start (a bad config on disk) changes nothing: the old one serves on', async () => {
  const a = await origin('A');
  const { inst, file } = await start('upgrade-bad', config(a.url), { start: ['--no-watch'] });
  const workers = inst.workerPids();
  await writeFile(file, `${config(a.url)}\nnonsense: [`);
  inst.signal('SIGUSR2');
  const failed = await inst.next((l) => l.msg === 'upgrade failed: the new Switchboard did not start; this one keeps serving', 60_000);
  assert.match(String(failed.reason), /exited \(code 2\)/, 'the new process refused the config (exit 2)');
  const res = await fetch(inst.url('web'));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'A');
  assert.deepEqual(inst.workerPids().sort(), workers.sort(), 'the same workers serve');
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('a bad config on SIGHUP is refused by the supervisor; the workers keep serving the old one', async () => {
  const a = await origin('A');
  const { inst, file } = await start('bad', config(a.url));
  await writeFile(file, config(a.url).replace('upstream: app', 'upstream: nope'));
  inst.signal('SIGHUP');
  const rejected = await inst.next((l) => l.msg === 'config rejected; the running config keeps serving');
  assert.match(JSON.stringify(rejected.errors), /routes\.all\.upstream/);
  assert.equal(rejected.worker, undefined, 'the supervisor validated it');
  const res = await fetch(inst.url('web'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-origin'), 'A');
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('a second switchboard start on the same address exits with a clear error; the first keeps serving', async () => {
  const a = await origin('A');
  const { inst } = await start('first', config(a.url));
  const port = new URL(inst.url('web')).port;
  const second = join(dir, 'second.yaml');
  await writeFile(second, config(a.url).replace('127.0.0.1:0', `127.0.0.1:${port}`));
  for (const workers of ['2', '1']) {
    await writeFile(second, config(a.url).replace('127.0.0.1:0', `127.0.0.1:${port}`).replace('workers: 2', `workers: ${workers}`));
    const { code, stderr } = await runCli(['start', '-c', second, '--access-log', 'off'], { ms: 20_000 });
    assert.equal(code, 1, `workers: ${workers}`);
    assert.match(stderr, new RegExp(`listener web: 127\\.0\\.0\\.1:${port} is already in use .*reusePort: true`));
  }
  const res = await fetch(inst.url('web'));
  assert.equal(res.status, 200);
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('every worker writes whole lines to one access log; SIGUSR1 reopens it after logrotate moved it', async () => {
  const a = await origin('A');
  const log = join(dir, 'access.log');
  const { inst } = await start('logs', config(a.url), { start: ['--access-log', log] });
  const first = new SteadyLoad(inst.url('web'), { keepAlive: 0, fresh: 4, limit: 400 });
  await first.more(400);
  await first.stop();
  assert.deepEqual(first.failures(), []);
  await rename(log, `${log}.1`);
  const reopenFrom = inst.lines.length;
  inst.signal('SIGUSR1');
  await inst.next((l) => l.msg === 'reopening log files', 5000, reopenFrom);
  // The workers reopen on the supervisor's message: requests from now may still land in the old
  // file until each worker has it; wait until the new file gets lines.
  const second = new SteadyLoad(inst.url('web'), { keepAlive: 0, fresh: 2, limit: 10_000 });
  try {
    await guard(
      (async () => {
        for (;;) {
          await second.more(20);
          const text = await readFile(log, 'utf8').catch(() => '');
          if (text.split('\n').filter(Boolean).length >= 20) return;
        }
      })(),
      'lines in the reopened access.log',
      15_000,
    );
  } finally {
    await second.stop();
  }
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
  // Both files: every line is one whole JSON object, and the requests of both workers are there.
  const old = (await readFile(`${log}.1`, 'utf8')).split('\n').filter(Boolean);
  const fresh = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  assert.ok(old.length >= 400, `old file: ${old.length} lines`);
  for (const line of [...old, ...fresh]) assert.doesNotThrow(() => JSON.parse(line), `a whole line: ${line.slice(0, 80)}`);
  assert.equal(
    old.length + fresh.length,
    first.outcomes.length + second.outcomes.length,
    `one line per request: ${old.length} + ${fresh.length} lines for ${first.outcomes.length} + ${second.outcomes.length} requests (${second.failures().length} failed)`,
  );
});

test('a worker over workerMemoryLimit is drained and replaced while the others serve: no request fails', async () => {
  const a = await origin('A');
  // 1 MiB: every worker is over it, so each is replaced after three reports (about 6 s).
  const { inst } = await start('memory', config(a.url).replace('drainTimeout: 10s', 'drainTimeout: 10s\nworkerMemoryLimit: 1MiB'));
  const before = inst.workerPids();
  const load = new SteadyLoad(inst.url('web'), { keepAlive: 2, fresh: 2 });
  try {
    const over = await inst.next((l) => l.msg === 'worker over workerMemoryLimit: replacing it', 20_000);
    assert.ok(before.includes(over.pid as number), 'a worker of the first set');
    await inst.next((l) => l.msg === 'switchboard stopped' && l.pid === over.pid, 20_000);
    const fresh = inst.workerPids();
    assert.ok(!fresh.includes(over.pid as number) && fresh.length >= 2, `replaced: ${JSON.stringify({ before, fresh })}`);
    await load.more(100);
    await load.stop();
    assert.deepEqual(load.failures(), [], inst.lines.map((l) => JSON.stringify(l)).join('\n'));
  } finally {
    await load.stop();
  }
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('reusePort: true on both sides lets a second instance share the port on purpose', async () => {
  const a = await origin('A');
  const b = await origin('B');
  const port = await closedPort();
  const shared = (o: Origin): string =>
    config(o.url).replace('web: { address: "127.0.0.1:0", protocol: http }', `web: { address: "127.0.0.1:${port}", protocol: http, reusePort: true }`);
  const { inst: one } = await start('share-1', shared(a));
  const { inst: two } = await start('share-2', shared(b));
  assert.equal(one.url('web'), `http://127.0.0.1:${port}`);
  assert.equal(two.url('web'), `http://127.0.0.1:${port}`);
  // The kernel spreads new connections over every worker of both instances.
  const seen = new Set<string>();
  for (let i = 0; i < 200 && seen.size < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
    seen.add(res.headers.get('x-origin') ?? '');
    await res.arrayBuffer();
  }
  assert.deepEqual([...seen].sort(), ['A', 'B']);
  one.signal('SIGTERM');
  two.signal('SIGTERM');
  assert.equal(await one.exited(), 0);
  assert.equal(await two.exited(), 0);
});

test('overlapping addresses in one config (127.0.0.1:P and 0.0.0.0:P) are a config error', () => {
  const result = loadConfigObject({
    listeners: { a: { address: '127.0.0.1:8080', protocol: 'http' }, b: { address: '0.0.0.0:8080', protocol: 'http' }, c: { address: '0.0.0.0:8081', protocol: 'http' } },
  });
  assert.equal(result.ok, false);
  const messages = result.ok ? [] : result.errors.map((e) => e.message);
  assert.equal(messages.length, 1, messages.join('\n'));
  assert.match(messages[0]!, /listeners\.b\.address: expected an address that does not overlap listener "a" at 127\.0\.0\.1:8080 .*found "0\.0\.0\.0:8080"/);
});

test('every worker serves layer 4 listeners too: tcp through the shared socket, udp with a socket per worker', async () => {
  const tcpOrigin = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => tcpOrigin.listen(0, '127.0.0.1', resolve));
  const udpOrigin = dgram.createSocket('udp4');
  udpOrigin.on('message', (m, r) => udpOrigin.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
  await new Promise<void>((resolve) => udpOrigin.bind(0, '127.0.0.1', resolve));
  const udpPort = await freeUdpPort();
  const { inst } = await start(
    'l4',
    `workers: 2
listeners:
  tcp: { address: "127.0.0.1:0", protocol: tcp, upstream: echo }
  udp: { address: "127.0.0.1:${udpPort}", protocol: udp, upstream: dgram }
upstreams:
  echo: { endpoints: [{ url: "tcp://127.0.0.1:${(tcpOrigin.address() as AddressInfo).port}" }] }
  dgram: { endpoints: [{ url: "udp://127.0.0.1:${(udpOrigin.address() as AddressInfo).port}" }] }
`,
  );
  try {
    const tcpPort = Number(new URL(inst.url('tcp')).port);
    for (let i = 0; i < 10; i++) {
      const echoed = await guard(
        new Promise<string>((resolve, reject) => {
          const c = net.connect(tcpPort, '127.0.0.1', () => c.end(`hello ${i}`));
          let got = '';
          c.setEncoding('utf8').on('data', (d: string) => (got += d));
          c.on('end', () => resolve(got));
          c.on('error', reject);
        }),
        'a tcp echo',
        5000,
      );
      assert.equal(echoed, `hello ${i}`);
    }
    // Several clients (source ports): each is kept on one worker by the kernel and answered.
    for (let i = 0; i < 6; i++) {
      const client = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const reply = guard(new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString()))), 'a udp reply', 5000);
      client.send(`ping ${i}`, udpPort, '127.0.0.1');
      assert.equal(await reply, `echo:ping ${i}`);
      client.close();
    }
    // A second instance on the same udp address is refused, though workers bind udp with SO_REUSEPORT.
    const second = join(dir, 'l4-second.yaml');
    await writeFile(
      second,
      `workers: 2\nlisteners:\n  udp: { address: "127.0.0.1:${udpPort}", protocol: udp, upstream: dgram }\nupstreams:\n  dgram: { endpoints: [{ url: "udp://127.0.0.1:${(udpOrigin.address() as AddressInfo).port}" }] }\n`,
    );
    const { code, stderr } = await runCli(['start', '-c', second, '--access-log', 'off'], { ms: 20_000 });
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`listener udp: 127\\.0\\.0\\.1:${udpPort} is already in use`));
  } finally {
    tcpOrigin.close();
    udpOrigin.close();
  }
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

/** A UDP port nothing is bound to now (bound, read, released). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
