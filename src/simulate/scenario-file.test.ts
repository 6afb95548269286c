/** Scenario files: the built-in shape in YAML, every problem reported with its line, column and key path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScenario } from './scenario-file.ts';
import { lognormalSigma } from './model.ts';

const GOOD = `name: mixed
description: two big servers and a small one
requests: 5000
rate: 300
clients: { count: 50, heavy: { clients: 2, share: 0.5 } }
keys: { count: 200, zipf: 1 }
hashTable: maglev
endpoints:
  - { name: big1, weight: 2, capacity: 8, service: { distribution: lognormal, mean: 20ms, p99: 100ms } }
  - { name: big2, weight: 2, capacity: 8, service: { distribution: constant, mean: 0.02s } }
  - { name: small, capacity: 2, queueLimit: 10, service: { distribution: exponential, mean: 20 } }
events:
  - { type: slowdown, endpoint: small, at: 40%, until: 60%, factor: 5 }
  - { type: fail, endpoint: big1, at: 3s, recover: 80% }
algorithms: [round-robin, least-response-time]
`;

test('a good file gives the scenario, with defaults filled in and units converted', () => {
  const r = parseScenario(GOOD, 'good.yaml');
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  const s = r.scenario;
  assert.equal(s.name, 'mixed');
  assert.equal(s.hashTable, 'maglev');
  assert.deepEqual(s.clients, { count: 50, heavy: { clients: 2, share: 0.5 } });
  assert.deepEqual(s.endpoints[0].service, { distribution: 'lognormal', mean: 20, sigma: lognormalSigma(20, 100) });
  assert.deepEqual(s.endpoints[1], { name: 'big2', weight: 2, capacity: 8, service: { distribution: 'constant', mean: 20 } });
  assert.equal(s.endpoints[2].queueLimit, 10);
  assert.deepEqual(s.events, [
    { type: 'slowdown', endpoint: 'small', at: { percent: 40 }, until: { percent: 60 }, factor: 5 },
    { type: 'fail', endpoint: 'big1', at: { ms: 3000 }, recover: { percent: 80 }, detectAfter: 2000 },
  ]);
  assert.deepEqual(s.algorithms, ['round-robin', 'least-response-time']);

  const minimal = parseScenario('name: m\nrate: 10\nendpoints: [{ name: a, service: { distribution: constant, mean: 5ms } }]\n', 'm.yaml');
  assert.ok(minimal.ok);
  assert.equal(minimal.scenario.requests, 20_000);
  assert.deepEqual(minimal.scenario.events, []);
  assert.equal(minimal.scenario.algorithms, undefined);
});

test('a bad file: every problem at file:line:column with its key path and what was expected', () => {
  const bad = `name: x
rate: fast
clients: { count: 0 }
endpoints:
  - name: a
    capacity: 2.5
    colour: red
    service: { distribution: expo, mean: 20 seconds }
events:
  - { type: explode, endpoint: a, at: 40% }
  - { type: slowdown, endpoint: a, at: soon, factor: 2 }
algorithms: [round-robin, fastest]
`;
  const r = parseScenario(bad, 'bad.yaml');
  assert.ok(!r.ok);
  const expected = [
    /^bad\.yaml:2:7: rate: expected a number, found "fast"$/,
    /^bad\.yaml:3:19: clients\.count: expected a number above 0, found 0$/,
    /^bad\.yaml:6:15: endpoints\[0\]\.capacity: expected a whole number, found 2\.5$/,
    /^bad\.yaml:7:5: endpoints\[0\]\.colour: expected one of the keys name, weight, capacity, queueLimit, service, found "colour"$/,
    /^bad\.yaml:8:30: endpoints\[0\]\.service\.distribution: expected one of "exponential", "lognormal", "constant", found "expo"$/,
    /^bad\.yaml:8:42: endpoints\[0\]\.service\.mean: expected a duration such as 20ms or 2s, found "20 seconds"$/,
    /^bad\.yaml:10:13: events\[0\]\.type: expected one of "slowdown", "fail", found "explode"$/,
    /^bad\.yaml:11:40: events\[1\]\.at: expected a percentage of the run such as 40%, .*found "soon"$/,
    /^bad\.yaml:12:27: algorithms\[1\]: expected one of "round-robin", .*"consistent-hash", found "fastest"$/,
  ];
  for (const re of expected)
    assert.ok(
      r.errors.some((e) => re.test(e)),
      `${re}\n${r.errors.join('\n')}`,
    );
  assert.equal(r.errors.length, expected.length, r.errors.join('\n'));
});

test('checks across keys: endpoint names unique, events name an endpoint, lognormal needs one of p99 and sigma', () => {
  const r = parseScenario(
    `name: x
rate: 10
endpoints:
  - { name: a, service: { distribution: lognormal, mean: 20ms } }
  - { name: a, service: { distribution: lognormal, mean: 20ms, p99: 10ms } }
events:
  - { type: fail, endpoint: b, at: 50% }
`,
    'x.yaml',
  );
  assert.ok(!r.ok);
  assert.ok(
    r.errors.some((e) => /^x\.yaml:4:\d+: endpoints\[0\]\.service: expected a lognormal service with exactly one of p99 and sigma/.test(e)),
    r.errors.join('\n'),
  );
  assert.ok(
    r.errors.some((e) => /^x\.yaml:5:\d+: endpoints\[1\]\.service\.p99: expected a p99 above the mean/.test(e)),
    r.errors.join('\n'),
  );

  const names = parseScenario(
    `name: x
rate: 10
endpoints:
  - { name: a, service: { distribution: constant, mean: 20ms } }
  - { name: a, service: { distribution: constant, mean: 20ms } }
events:
  - { type: fail, endpoint: b, at: 50% }
`,
    'y.yaml',
  );
  assert.ok(!names.ok);
  assert.ok(
    names.errors.some((e) => /^y\.yaml:5:\d+: endpoints\[1\]\.name: expected a name no other endpoint has, found "a"$/.test(e)),
    names.errors.join('\n'),
  );
  assert.ok(
    names.errors.some((e) => /^y\.yaml:7:\d+: events\[0\]\.endpoint: expected the name of an endpoint \(a, a\), found "b"$/.test(e)),
    names.errors.join('\n'),
  );
});

test('YAML syntax errors and a file that is not a map are reported, not thrown', () => {
  const syntax = parseScenario('name: [', 's.yaml');
  assert.ok(!syntax.ok && /^s\.yaml:\d+:\d+: expected valid YAML, found a syntax error/.test(syntax.errors[0]));
  const scalar = parseScenario('42\n', 'n.yaml');
  assert.ok(!scalar.ok);
  assert.deepEqual(scalar.errors, ['n.yaml:1:1: expected a map, found 42']);
});
