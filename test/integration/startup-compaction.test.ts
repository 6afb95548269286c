/**
 * Start-up's memory-reducing collection (src/util/heap.ts) runs before the process accepts a
 * connection: the gateway calls `beforeListening` once the first generation is built and before
 * any listener binds, and a worker or a lone `switchboard start` collects there, so a worker says
 * `ready` (and a replaced or upgraded process takes connections) only once it is done; a
 * supervisor collects before it forks its first worker. The
 * collection is synchronous (60-350 ms): it used to run 100 ms after start, while serving.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { startGateway } from '../../src/index.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';
import { Instance, type LogLine } from './helpers/instance.ts';
import { guard } from './helpers/guard.ts';

const dir = await mkdtemp(join(tmpdir(), 'switchboard-startup-compaction-'));
const instances: Instance[] = [];
const origins: Origin[] = [];
after(async () => {
  for (const i of instances) i.kill();
  await Promise.all(origins.map((o) => o.close()));
  await rm(dir, { recursive: true, force: true });
});

const COMPACTED = 'start-up heap compaction done, before listening';

/** Whether a TCP connection to 127.0.0.1:`port` is accepted (true) or refused (false). */
function connects(port: number): Promise<boolean> {
  return guard(
    new Promise<boolean>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve(false) : reject(err)));
    }),
    `a connection to port ${port}`,
    5000,
  );
}

function config(port: number, upstream: string, route = '/'): object {
  return {
    listeners: { web: { address: `127.0.0.1:${port}`, protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: upstream }] } },
    routes: { all: { match: { path: route }, upstream: 'app' } },
  };
}

test('beforeListening runs once, after the config loaded and before any listener accepts: a connection to the port is refused then, answered once started; a reload does not call it', async () => {
  const origin = await startOrigin('A');
  origins.push(origin);
  const port = await closedPort();
  const seen: Array<{ listening: boolean; debug: boolean }> = [];
  const gw = await startGateway({
    config: config(port, origin.url),
    accessLog: 'off',
    logLevel: 'silent',
    beforeListening: async (log) => {
      seen.push({ listening: await connects(port), debug: typeof log.debug === 'function' });
    },
  });
  try {
    assert.deepEqual(seen, [{ listening: false, debug: true }], 'called once, while nothing listened on the port');
    assert.equal(gw.address('web').port, port);
    assert.equal((await fetch(`${gw.url('web')}/x`)).status, 200, 'serves once started');
    const reloaded = await gw.reload(config(port, origin.url, '/y'));
    assert.ok(reloaded.ok, JSON.stringify(reloaded.errors));
    assert.equal(seen.length, 1, 'a reload does not call it again');
  } finally {
    await gw.stop({ drainTimeout: 2000 });
  }
});

test('a beforeListening that throws fails the start, and nothing is left listening', async () => {
  const port = await closedPort();
  const outcome = await startGateway({
    config: config(port, 'http://127.0.0.1:9'),
    accessLog: 'off',
    logLevel: 'silent',
    beforeListening: () => {
      throw new Error('no start today');
    },
  }).then(
    // A gateway that started anyway is stopped, so that the failure does not hold the test open.
    (gw) => gw.stop({ drainTimeout: 2000 }).then(() => 'started'),
    (err: Error) => err.message,
  );
  assert.equal(outcome, 'no start today');
  assert.equal(await connects(port), false, 'the port was never bound');
});

/** Index of the first line at or after `from` that passes `test`, or -1. */
function indexOf(lines: readonly LogLine[], test: (l: LogLine) => boolean, from = 0): number {
  for (let i = from; i < lines.length; i++) if (test(lines[i]!)) return i;
  return -1;
}

/** Asserts that the process `pid` logged the compaction before its "switchboard started" line. */
function compactedBeforeStarted(inst: Instance, pid: number, what: string): void {
  const compacted = indexOf(inst.lines, (l) => l.msg === COMPACTED && l.pid === pid);
  const started = indexOf(inst.lines, (l) => l.msg === 'switchboard started' && l.pid === pid);
  assert.ok(compacted >= 0, `${what} logged the start-up compaction`);
  assert.ok(started > compacted, `${what}: "switchboard started" (line ${started}) after the compaction (line ${compacted})`);
  assert.equal(typeof inst.lines[compacted]!.ms, 'number', 'the line says how long it took');
  assert.equal(inst.lines.filter((l) => l.msg === COMPACTED && l.pid === pid).length, 1, `${what} compacted at start once`);
}

/** `switchboard --log-level debug start` with `workers` (started, when more than one) and one listener in front of an origin of its own. */
async function startDebug(name: string, workers: number): Promise<Instance> {
  const origin = await startOrigin(name);
  origins.push(origin);
  const { inst } = await Instance.startWith(
    dir,
    name,
    `workers: ${workers}
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
routes:
  all: { match: { path: / }, upstream: app }
`,
    { global: ['--log-level', 'debug'] },
  );
  instances.push(inst);
  return inst;
}

test('workers: 2: each worker compacts before it starts serving and says ready (the supervisor counts it started after); a replacement after a crash too', async () => {
  const inst = await startDebug('workers', 2);
  const supervisorStarted = indexOf(inst.lines, (l) => l.msg === 'switchboard started' && l.worker === undefined);
  // The supervisor collects its own start-up garbage before it forks the first worker (whose
  // `memory` state calls it answers), once.
  const supervisorCompacted = indexOf(inst.lines, (l) => l.msg === COMPACTED && l.worker === undefined);
  const firstWorkerLine = indexOf(inst.lines, (l) => l.worker !== undefined);
  assert.ok(supervisorCompacted >= 0, 'the supervisor logged its start-up compaction');
  assert.ok(supervisorCompacted < firstWorkerLine, `the supervisor compacted (line ${supervisorCompacted}) before any worker logged (line ${firstWorkerLine})`);
  assert.equal(inst.lines.filter((l) => l.msg === COMPACTED && l.worker === undefined).length, 1, 'the supervisor compacted at start once');
  const pids = inst.workerPids();
  assert.equal(pids.length, 2, JSON.stringify(pids));
  for (const pid of pids) {
    compactedBeforeStarted(inst, pid, `worker ${pid}`);
    const compacted = indexOf(inst.lines, (l) => l.msg === COMPACTED && l.pid === pid);
    assert.ok(compacted < supervisorStarted, `worker ${pid} compacted before the supervisor counted it serving`);
  }

  process.kill(pids[0]!, 'SIGKILL');
  const replaced = await inst.next((l) => l.msg === 'switchboard started' && l.worker !== undefined && !pids.includes(l.pid!));
  compactedBeforeStarted(inst, replaced.pid!, `the replacement worker ${replaced.pid}`);
  assert.equal((await fetch(`${inst.url('web')}/`)).status, 200);
});

test('workers: 1 (a lone process): it compacts before it starts serving', async () => {
  const inst = await startDebug('lone', 1);
  const compacted = indexOf(inst.lines, (l) => l.msg === COMPACTED);
  const started = indexOf(inst.lines, (l) => l.msg === 'switchboard started');
  assert.ok(compacted >= 0, 'the lone process logged the start-up compaction');
  assert.ok(started > compacted, `"switchboard started" (line ${started}) after the compaction (line ${compacted})`);
  assert.equal((await fetch(`${inst.url('web')}/`)).status, 200);
});
