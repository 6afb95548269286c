/**
 * Two Switchboard instances behind one virtual address held by keepalived (VRRPv3), on a LAN of
 * network namespaces built for this test: a bridge, a client, balancer A (priority 150) and balancer
 * B (priority 100), each balancer with its own origin that answers with the balancer's name. A client
 * sends a request every 20 ms (a new connection each); the test SIGKILLs A's process group, then
 * measures the time until B serves the virtual address and counts the requests that failed.
 * Skipped, saying why, where network namespaces or keepalived are not available (CI installs
 * keepalived and iproute2: .ci/run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkScript, keepalivedArgs, keepalivedConfig, vrrpState } from './helpers/keepalived.ts';
import { findTool, Lan, netnsUnavailable, waitForLines, type NsProcess } from './helpers/netns.ts';
import { MAIN, NODE, ROOT } from './helpers/paths.ts';

const VIP = '10.200.0.100';
const PORT = 8080; // inside the test's own namespaces only
const ORIGIN_PORT = 9000;
const EVERY_MS = 20;
const TIMEOUT_MS = 500;
const GAP_LIMIT_MS = 3000;

// The same file for both instances: each balancer proxies to the origin on its own loopback.
const CONFIG = `listeners:
  web: { address: "0.0.0.0:${PORT}", protocol: http }
upstreams:
  app: { endpoints: [{ url: "http://127.0.0.1:${ORIGIN_PORT}" }] }
routes:
  all: { match: { path: / }, upstream: app }
`;

interface Result {
  start: number;
  end: number;
  ok: boolean;
  by?: string;
  error?: string;
}

/** One balancer "machine": its origin, its Switchboard and its keepalived with the VRRP state it last logged. */
interface Balancer {
  origin: NsProcess;
  switchboard: NsProcess;
  keepalived: NsProcess;
  state(): string | undefined;
}

/** The request a line of failover-load.ts reports, or undefined for any other line. */
function parseResult(line: string | undefined): Result | undefined {
  return line?.startsWith('{') ? (JSON.parse(line) as Result) : undefined;
}

/** Waits until `count` requests in a row that started at or after `since` succeeded, served by `by`. */
function servedInARow(load: NsProcess, by: string, since: number, count: number, ms: number): Promise<void> {
  let row = 0;
  return load.until(
    (line) => {
      const r = parseResult(line);
      if (r === undefined || r.start < since) return false;
      row = r.ok && r.by === by ? row + 1 : 0;
      return row >= count;
    },
    `${count} requests in a row served by ${by}`,
    ms,
  );
}

test('keepalived pair: when the active Switchboard dies, the standby serves the virtual address within 3 s', { timeout: 40_000 }, async (t) => {
  const unavailable = netnsUnavailable();
  if (unavailable !== undefined) return t.skip(`network namespaces unavailable on this machine: ${unavailable}`);
  const keepalived = findTool('keepalived');
  if (keepalived === undefined) return t.skip('keepalived is not installed (apt-get install keepalived; .ci/run installs it)');

  const dir = await mkdtemp(join(tmpdir(), 'switchboard-ha-'));
  let lan: Lan | undefined;
  t.after(async () => {
    await lan?.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  lan = await Lan.create({ client: '10.200.0.10/24', a: '10.200.0.11/24', b: '10.200.0.12/24' });

  const config = join(dir, 'switchboard.yaml');
  const check = join(dir, 'check-switchboard.sh');
  await writeFile(config, CONFIG);
  await writeFile(check, checkScript(PORT));
  await chmod(check, 0o755);

  // Both balancers start at once: origin, Switchboard and keepalived each.
  const startBalancer = async (name: string, priority: number): Promise<Balancer> => {
    const conf = join(dir, `keepalived-${name}.conf`);
    await writeFile(conf, keepalivedConfig({ iface: 'eth0', vip: `${VIP}/24`, routerId: 51, priority, advertInt: 0.25, check }));
    const origin = lan.spawn(name, `origin ${name}`, NODE, [join(ROOT, 'test/integration/helpers/name-origin.ts'), name, '127.0.0.1', String(ORIGIN_PORT)]);
    const switchboard = lan.spawn(name, `switchboard ${name}`, NODE, [MAIN, 'start', '-c', config, '--access-log', 'off', '--no-watch']);
    const vrrp = lan.spawn(name, `keepalived ${name}`, keepalived, keepalivedArgs(conf, dir, `keepalived-${name}`));
    let state: string | undefined;
    vrrp.onLine((line) => (state = vrrpState(line) ?? state));
    return { origin, switchboard, keepalived: vrrp, state: () => state };
  };
  const [a, b] = await Promise.all([startBalancer('a', 150), startBalancer('b', 100)]);
  const started = Date.now();
  await Promise.all([a, b].map((x) => x.origin.until((l) => l.startsWith('listening'), `${x.origin.label} to listen`, 15_000)));
  // A holds the address and B stands by (BACKUP, not FAULT: its own Switchboard answers its check).
  // Each keepalived enters a state only after its check passed once (init_fail).
  await waitForLines([a.keepalived, b.keepalived], () => a.state() === 'MASTER' && b.state() === 'BACKUP', 'A master and B backup', 15_000);
  t.diagnostic(`pair ready ${Date.now() - started} ms after start`);

  const results: Result[] = [];
  const load = lan.spawn('client', 'client', NODE, [
    join(ROOT, 'test/integration/helpers/failover-load.ts'),
    `http://${VIP}:${PORT}/`,
    String(EVERY_MS),
    String(TIMEOUT_MS),
    '25000',
  ]);
  load.onLine((line) => {
    const r = parseResult(line);
    if (r !== undefined) results.push(r);
  });
  await servedInARow(load, 'a', 0, 25, 10_000);

  const killedAt = Date.now();
  await a.switchboard.killGroup();
  const deadAt = Date.now();
  await servedInARow(load, 'b', killedAt, 25, 10_000);
  await load.killGroup();

  // Requests that ended before the kill, and those that ended after A's exit (A may still answer between the two).
  const before = results.filter((r) => r.end <= killedAt);
  const after = results.filter((r) => r.end > killedAt);
  const firstB = after.find((r) => r.ok && r.by === 'b');
  assert.ok(firstB, 'B never served');
  const gap = firstB.end - killedAt;
  const failed = after.filter((r) => !r.ok);
  const byError = new Map<string, number>();
  for (const r of failed) byError.set(r.error ?? '?', (byError.get(r.error ?? '?') ?? 0) + 1);
  const errors = [...byError].map(([error, n]) => `${n} ${error}`).join(', ');
  t.diagnostic(`failover: B served ${gap} ms after A was killed; ${failed.length} of ${after.length} requests failed meanwhile (${errors || 'none'})`);

  assert.ok(before.length >= 25, `only ${before.length} requests before the kill`);
  assert.deepEqual(
    before.filter((r) => !r.ok || r.by !== 'a'),
    [],
    'before the kill, every request succeeds and A serves it',
  );
  assert.deepEqual(
    after.filter((r) => r.ok && r.by !== 'b' && r.end > deadAt),
    [],
    'once A has exited, only B serves',
  );
  assert.ok(gap <= GAP_LIMIT_MS, `B served ${gap} ms after the kill (limit ${GAP_LIMIT_MS} ms)`);
  // Once B has served, requests that start afterwards all succeed (none lingers on A's address).
  assert.deepEqual(
    after.filter((r) => r.start > firstB.end && !r.ok),
    [],
    'requests after the failover all succeed',
  );
});
