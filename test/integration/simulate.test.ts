/** `switchboard simulate` as a user runs it: reports, determinism, the HTML file, bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliRun } from './helpers/run-cli.ts';

/** Runs `switchboard simulate` to completion. */
const run = (args: string[]): Promise<CliRun> => runCli(['simulate', ...args], { ms: 20_000 });

test('simulate --scenario all: every scenario and algorithm, byte-identical for a seed, different for another', async () => {
  const [a, b, c] = await Promise.all([
    run(['--scenario', 'all', '--requests', '3000', '--seed', '1']),
    run(['--scenario', 'all', '--requests', '3000', '--seed', '1']),
    run(['--scenario', 'all', '--requests', '3000', '--seed', '2']),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.notEqual(a.stdout, c.stdout);
  for (const name of ['equal', 'half-speed', 'slowdown', 'heavy-clients', 'failure']) {
    assert.match(a.stdout, new RegExp(`^=== ${name} ===$`, 'm'));
    assert.match(a.stdout, new RegExp(`^Summary: ${name}$`, 'm'));
  }
  const algorithms = ['round-robin', 'weighted-round-robin', 'least-connections', 'least-response-time', 'random', 'power-of-two', 'ip-hash', 'consistent-hash'];
  for (const algorithm of algorithms) assert.equal(a.stdout.match(new RegExp(`^${algorithm}$`, 'gm'))?.length, 5, algorithm);
  assert.match(a.stdout, /^What this shows:$/m);
});

test('simulate: the default scenario, --algorithms, --list', async () => {
  const def = await run(['--requests', '2000', '--algorithms', 'round-robin,least-connections']);
  assert.equal(def.code, 0, def.stderr);
  assert.match(def.stdout, /^=== equal ===$/m);
  assert.match(def.stdout, /^round-robin$/m);
  assert.match(def.stdout, /^least-connections$/m);
  assert.doesNotMatch(def.stdout, /^random$/m);

  const list = await run(['--list']);
  assert.equal(list.code, 0);
  assert.deepEqual(
    list.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0]),
    ['equal', 'half-speed', 'slowdown', 'heavy-clients', 'failure'],
  );
});

test('simulate: unknown scenario or algorithm, bad numbers: exit 2 with the valid names', async () => {
  const scenario = await run(['--scenario', 'nope']);
  assert.equal(scenario.code, 2);
  assert.match(scenario.stderr, /unknown scenario "nope"; valid scenarios: equal, half-speed, slowdown, heavy-clients, failure, all/);
  const algorithm = await run(['--algorithms', 'round-robin,fastest']);
  assert.equal(algorithm.code, 2);
  assert.match(algorithm.stderr, /unknown algorithm "fastest"; valid algorithms: round-robin, .*consistent-hash/);
  const seed = await run(['--seed', 'x']);
  assert.equal(seed.code, 2);
  assert.match(seed.stderr, /--seed: expected a whole number/);
  const option = await run(['--nope']);
  assert.equal(option.code, 2);
  assert.equal(option.stdout, '');
});

test('simulate -c: a scenario file runs; a bad one exits 2 with file:line:column and the key path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-simulate-'));
  try {
    const good = join(dir, 'good.yaml');
    await writeFile(
      good,
      `name: "<script>alert(1)</script>"
description: two servers
requests: 2000
rate: 150
endpoints:
  - { name: a, capacity: 2, service: { distribution: exponential, mean: 20ms } }
  - { name: b, capacity: 2, service: { distribution: lognormal, mean: 20ms, p99: 80ms } }
events:
  - { type: slowdown, endpoint: b, at: 30%, until: 60%, factor: 4 }
algorithms: [round-robin, least-response-time]
`,
    );
    const html = join(dir, 'report.html');
    const ok = await run(['-c', good, '--html', html]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^=== <script>alert\(1\)<\/script> ===$/m, 'plain text is not escaped');
    assert.match(ok.stdout, /^least-response-time$/m);
    assert.doesNotMatch(ok.stderr, /warning/, '150 req/s on a fleet of 200 req/s is no overload');
    const page = await readFile(html, 'utf8');
    assert.match(page, /<svg /);
    assert.doesNotMatch(page, /<script>/);
    assert.match(page, /&#60;script&#62;/);

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'name: x\nrate: 100\nendpoints:\n  - { name: a, capacity: many, service: { distribution: constant, mean: 5ms } }\n');
    const ko = await run(['-c', bad]);
    assert.equal(ko.code, 2);
    assert.match(ko.stderr, /bad\.yaml:4:26: endpoints\[0\]\.capacity: expected a number, found "many"/);
    assert.match(ko.stderr, /1 problem in .*bad\.yaml/);
    assert.equal(ko.stdout, '');

    const missing = await run(['-c', join(dir, 'absent.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.yaml: expected a readable scenario file, found .*ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("simulate -c: offered load above the fleet's capacity is warned about (and still run)", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-simulate-'));
  try {
    const file = join(dir, 'overload.yaml');
    // Two endpoints of 2 slots at 20 ms each: 200 req/s at most; 500 are offered.
    await writeFile(
      file,
      `name: overload
description: too much traffic
requests: 1000
rate: 500
endpoints:
  - { name: a, capacity: 2, queueLimit: 20, service: { distribution: exponential, mean: 20ms } }
  - { name: b, capacity: 2, queueLimit: 20, service: { distribution: exponential, mean: 20ms } }
algorithms: [round-robin]
`,
    );
    const html = join(dir, 'report.html');
    const r = await run(['-c', file, '--html', html]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: scenario overload offers 500 req\/s but its fleet serves at most 200 req\/s /m);
    assert.match(r.stdout, /^=== overload ===$/m);
    const page = await readFile(html, 'utf8');
    assert.match(page, /<p class="warn">Warning: scenario overload offers 500 req\/s/);
    assert.match(page, /500 \/ 200 <strong class="warn">overloaded<\/strong>/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
