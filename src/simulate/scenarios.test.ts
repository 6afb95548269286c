/**
 * The classic trade-offs each built-in scenario is there to show, asserted on the engine's results
 * (not on printed text), with the production balancers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BalancerName } from '../upstream/balancers/index.ts';
import { runScenario } from './run-scenario.ts';
import { SCENARIOS, builtinScenario } from './scenarios.ts';
import type { RunSummary } from './stats.ts';

function runs(name: string, algorithms: BalancerName[], seed = 1): Map<BalancerName, RunSummary> {
  const scenario = builtinScenario(name);
  assert.ok(scenario, name);
  return new Map(runScenario(scenario, { seed, algorithms }).runs.map((r) => [r.algorithm, r]));
}

function share(run: RunSummary, endpoint: string): number {
  const e = run.endpoints.find((x) => x.name === endpoint);
  assert.ok(e, endpoint);
  return e.share;
}

/** Largest minus smallest endpoint share. */
function spread(run: RunSummary): number {
  const shares = run.endpoints.map((e) => e.share);
  return Math.max(...shares) - Math.min(...shares);
}

test('built-in scenarios: unique names, a description and an explanation each', () => {
  const names = SCENARIOS.map((s) => s.name);
  assert.deepEqual(names, ['equal', 'half-speed', 'slowdown', 'heavy-clients', 'failure']);
  for (const s of SCENARIOS) assert.ok(s.description && s.explanation, s.name);
});

test('half-speed: round robin gives the slow server its quarter and a high p99; least-response-time avoids it', () => {
  const r = runs('half-speed', ['round-robin', 'least-response-time']);
  const rr = r.get('round-robin')!;
  const lrt = r.get('least-response-time')!;
  assert.ok(Math.abs(share(rr, 's4') - 0.25) < 0.01, `round-robin s4 share ${share(rr, 's4')}`);
  assert.ok(share(lrt, 's4') < 0.2, `least-response-time s4 share ${share(lrt, 's4')}`);
  assert.ok(rr.overall.p99 > 3 * lrt.overall.p99, `p99 round-robin ${rr.overall.p99} vs least-response-time ${lrt.overall.p99}`);
});

test('slowdown: least-response-time keeps p99 lower than round robin', () => {
  const r = runs('slowdown', ['round-robin', 'least-response-time']);
  const rr = r.get('round-robin')!;
  const lrt = r.get('least-response-time')!;
  assert.ok(lrt.overall.p99 * 3 < rr.overall.p99, `p99 least-response-time ${lrt.overall.p99} vs round-robin ${rr.overall.p99}`);
  // It shows over time too: in the slow window round robin's p99 climbs far above least-response-time's.
  const worst = (run: RunSummary): number => Math.max(...run.timeline.p99.map((v) => v ?? 0));
  assert.ok(worst(rr) > 10 * worst(lrt), `worst bucket ${worst(rr)} vs ${worst(lrt)}`);
});

test('failure: consistent hashing keeps keys in place; round robin moves most of them', () => {
  const r = runs('failure', ['round-robin', 'consistent-hash']);
  const ch = r.get('consistent-hash')!.keysMoved;
  const rr = r.get('round-robin')!.keysMoved;
  assert.ok(ch && rr, 'keys moved is reported for every algorithm');
  assert.ok(ch.of > 100 && rr.of > 100, `keys counted: ${ch.of}, ${rr.of}`);
  assert.ok(ch.share < 0.1, `consistent-hash moved ${ch.share}`);
  assert.ok(rr.share > 0.5, `round-robin moved ${rr.share}`);
  // Every algorithm errors while the failure goes unnoticed.
  for (const run of r.values()) assert.ok(run.overall.errors > 0, run.algorithm);
});

test('heavy-clients: ip-hash shares are far more uneven than round robin', () => {
  const r = runs('heavy-clients', ['round-robin', 'ip-hash']);
  const rr = spread(r.get('round-robin')!);
  const ip = spread(r.get('ip-hash')!);
  assert.ok(ip > rr + 0.1, `spread ip-hash ${ip} vs round-robin ${rr}`);
});
