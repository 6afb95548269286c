import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildHashTable, MaglevTable, RingTable, RING_MAX_NODES, type HashTable } from './hash-table.ts';
import { hash31 } from './hash.ts';
import { fakeEndpoints } from './testing.ts';

const KEYS = 10_000;
const ids5 = ['api-1', 'api-2', 'api-3', 'api-4', 'api-5'];
const owner = (t: HashTable, key: string): number => t.owners[t.start(hash31(key))];

function shares(table: HashTable, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (let k = 0; k < KEYS; k++) counts[owner(table, `key-${k}`)]++;
  return counts;
}

for (const kind of ['ring', 'maglev'] as const) {
  test(`${kind}: keys spread within 10% of even over 5 equal endpoints`, () => {
    for (const ids of [ids5, ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80', '10.0.0.5:80']]) {
      const counts = shares(buildHashTable(kind, fakeEndpoints(ids)), 5);
      for (const c of counts) assert.ok(Math.abs(c - KEYS / 5) <= 0.1 * (KEYS / 5), `${counts}`);
    }
  });

  test(`${kind}: weights are honoured`, () => {
    const counts = shares(buildHashTable(kind, fakeEndpoints(['a', 'b', 'c', 'd'], [2, 1, 1, 4])), 4);
    const expected = [2, 1, 1, 4].map((w) => (w / 8) * KEYS);
    counts.forEach((c, i) => {
      assert.ok(Math.abs(c - expected[i]) <= 0.1 * expected[i], `${counts}`);
    });
  });

  test(`${kind}: removing one of 5 endpoints remaps about a fifth of the keys`, () => {
    const all = fakeEndpoints(ids5);
    const fewer = all.filter((e) => e.id !== 'api-3');
    const before = buildHashTable(kind, all);
    const after = buildHashTable(kind, fewer);
    let moved = 0;
    let movedFromOthers = 0;
    for (let k = 0; k < KEYS; k++) {
      const was = all[owner(before, `key-${k}`)].id;
      const is = fewer[owner(after, `key-${k}`)].id;
      if (was !== is) moved++;
      if (was !== is && was !== 'api-3') movedFromOthers++;
    }
    assert.ok(moved <= KEYS * (1 / 5 + 0.05), `moved ${moved}`);
    // A ring moves only the removed endpoint's keys; Maglev a little more (measured ~0.2%).
    if (kind === 'ring') assert.equal(movedFromOthers, 0);
    else assert.ok(movedFromOthers <= KEYS * 0.01, `moved from others ${movedFromOthers}`);
  });

  test(`${kind}: the table depends on ids, not on their order`, () => {
    const a = buildHashTable(kind, fakeEndpoints(ids5));
    const reversed = fakeEndpoints([...ids5].reverse());
    const b = buildHashTable(kind, reversed);
    for (let k = 0; k < 1000; k++) {
      assert.equal(ids5[owner(a, `key-${k}`)], reversed[owner(b, `key-${k}`)].id);
    }
  });

  test(`${kind}: every endpoint owns positions, even a light one among many`, () => {
    const ids = Array.from({ length: 200 }, (_, i) => `ep-${i}`);
    const weights = ids.map((_, i) => (i === 0 ? 0.01 : i % 7) || 1);
    const table = buildHashTable(kind, fakeEndpoints(ids, weights));
    const seen = new Set(table.owners);
    assert.equal(seen.size, 200);
    assert.ok(!seen.has(-1));
  });

  test(`${kind}: no endpoints gives an empty table`, () => {
    assert.equal(buildHashTable(kind, []).owners.length, 0);
  });
}

test("ring: an endpoint's nodes depend on its own id and weight only", () => {
  const five = new RingTable(fakeEndpoints(ids5));
  assert.equal(five.points.length, 5 * 4096);
  for (let i = 1; i < five.points.length; i++) assert.ok(five.points[i - 1] <= five.points[i], 'sorted');
  // Whatever else is removed (4 → 3 endpoints, or the heavy one), only the removed keys move.
  const cases: [string[], number[], string][] = [
    [ids5.slice(0, 4), [1, 1, 1, 1], 'api-2'],
    [['a', 'b', 'c', 'd'], [4, 1, 1, 1], 'a'],
    [['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], [1, 1, 1, 1, 1, 1, 1, 1], 'h'],
  ];
  for (const [ids, weights, removed] of cases) {
    const all = fakeEndpoints(ids, weights);
    const rest = all.filter((e) => e.id !== removed);
    const before = new RingTable(all);
    const after = new RingTable(rest);
    for (let k = 0; k < KEYS; k++) {
      const was = all[owner(before, `key-${k}`)].id;
      if (was !== removed) assert.equal(rest[owner(after, `key-${k}`)].id, was, `${ids} without ${removed}`);
    }
  }
  // A slow-starting endpoint rebuilt at a higher weight only takes keys, never gives any away.
  const ramping = fakeEndpoints(ids5, [0.25, 1, 1, 1, 1]);
  const early = new RingTable(ramping);
  ramping[0].weight = 1;
  const later = new RingTable(ramping);
  let gained = 0;
  for (let k = 0; k < KEYS; k++) {
    const was = owner(early, `key-${k}`);
    const is = owner(later, `key-${k}`);
    if (was !== is) assert.equal(is, 0);
    if (was !== is) gained++;
  }
  assert.ok(gained > KEYS * 0.1, `gained ${gained}`);
});

test('ring: a large total weight keeps the ring within its bound', () => {
  const ids = Array.from({ length: 100 }, (_, i) => `ep-${i}`);
  const ring = new RingTable(
    fakeEndpoints(
      ids,
      ids.map(() => 10),
    ),
  );
  assert.ok(ring.points.length <= RING_MAX_NODES && ring.points.length > RING_MAX_NODES / 2, `${ring.points.length}`);
  assert.equal(new Set(ring.owners).size, 100);
});

test('ring: start() finds the first node at or after the hash, wrapping', () => {
  for (const ids of [['only'], ['a', 'b'], ids5]) {
    const ring = new RingTable(fakeEndpoints(ids));
    const points = ring.points;
    const expected = (h: number): number => {
      const i = points.findIndex((p) => p >= h);
      return Math.max(i, 0);
    };
    const probes = [0, 1, 2 ** 31 - 1, points[0], points[0] + 1, points[points.length - 1]];
    for (let k = 0; k < 2000; k++) probes.push(hash31(`probe-${k}`));
    for (const h of probes) assert.equal(ring.start(h), expected(h), `${ids.length} endpoints, h=${h}`);
  }
});

test('maglev: a prime table of at least 100 slots per endpoint, every slot filled', () => {
  const small = new MaglevTable(fakeEndpoints(ids5));
  assert.equal(small.owners.length, 65_537);
  assert.ok(!small.owners.includes(-1));
  const many = new MaglevTable(fakeEndpoints(Array.from({ length: 1000 }, (_, i) => `ep-${i}`)));
  assert.equal(many.owners.length, 131_071);
});
