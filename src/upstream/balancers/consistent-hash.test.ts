import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsistentHash } from './consistent-hash.ts';
import { fakeEndpoints, mulberry32, tally } from './testing.ts';

const ids = ['a', 'b', 'c', 'd', 'e'];
const at = (hashKey: string | undefined) => ({ hashKey, now: 0 });

for (const hashTable of ['ring', 'maglev'] as const) {
  const make = (seed = 1) => new ConsistentHash({ random: mulberry32(seed), hashTable });

  test(`consistent-hash (${hashTable}): the same key always reaches the same endpoint`, () => {
    const ch = make();
    assert.equal(ch.name, 'consistent-hash');
    assert.equal(ch.hashTable, hashTable);
    const eps = fakeEndpoints(ids);
    ch.update(eps);
    const first = new Map<string, string>();
    for (let k = 0; k < 1000; k++) first.set(`user-${k}`, ch.pick(eps, at(`user-${k}`))!.id);
    // Again, on another instance (another proxy), and with the endpoints in another order.
    const other = make(99);
    const reordered = fakeEndpoints([...ids].reverse());
    other.update(reordered);
    for (let k = 0; k < 1000; k++) {
      assert.equal(ch.pick(eps, at(`user-${k}`))!.id, first.get(`user-${k}`));
      assert.equal(other.pick(reordered, at(`user-${k}`))!.id, first.get(`user-${k}`));
    }
    assert.equal(new Set(first.values()).size, 5);
  });

  test(`consistent-hash (${hashTable}): removing one of 5 endpoints remaps at most 1/5 + 5% of keys`, () => {
    const ch = make();
    const eps = fakeEndpoints(ids);
    ch.update(eps);
    const keys = Array.from({ length: 10_000 }, (_, k) => `session-${k}`);
    const before = keys.map((key) => ch.pick(eps, at(key))!.id);
    const fewer = eps.filter((e) => e.id !== 'c');
    ch.update(fewer);
    const after = keys.map((key) => ch.pick(fewer, at(key))!.id);
    const moved = keys.filter((_, k) => before[k] !== after[k]).length;
    assert.ok(moved <= 10_000 * (1 / 5 + 0.05), `moved ${moved}`);
    const movedFromOthers = keys.filter((_, k) => before[k] !== after[k] && before[k] !== 'c').length;
    assert.ok(movedFromOthers <= (hashTable === 'ring' ? 0 : 100), `moved from others ${movedFromOthers}`);
    // Shares stay even.
    const counts = tally(after);
    for (const [id, count] of counts) assert.ok(Math.abs(count - 2500) <= 250, `${id}: ${count}`);
  });

  test(`consistent-hash (${hashTable}): a retry without the tried endpoint gets another, deterministically`, () => {
    const ch = make();
    const eps = fakeEndpoints(ids);
    ch.update(eps);
    const retried: string[] = [];
    for (let k = 0; k < 5000; k++) {
      const key = `user-${k}`;
      const first = ch.pick(eps, at(key))!;
      const rest = eps.filter((e) => e !== first);
      const second = ch.pick(rest, at(key))!;
      assert.notEqual(second.id, first.id);
      assert.ok(rest.includes(second));
      assert.equal(ch.pick(rest, at(key)), second, 'the retry is deterministic');
      // A third attempt excludes both.
      const third = ch.pick(
        rest.filter((e) => e !== second),
        at(key),
      )!;
      assert.ok(third.id !== first.id && third.id !== second.id);
      retried.push(second.id);
    }
    // Retries from each endpoint spread over the others rather than all landing on one.
    const counts = tally(retried);
    assert.equal(counts.size, 5);
    for (const [id, count] of counts) assert.ok(count > 500, `${id}: ${count}`);
  });

  test(`consistent-hash (${hashTable}): candidates may be other objects or another order than update's`, () => {
    const ch = make();
    ch.update(fakeEndpoints(ids));
    const copies = fakeEndpoints([...ids].reverse());
    const reference = make();
    reference.update(fakeEndpoints(ids));
    for (let k = 0; k < 500; k++) {
      const picked = ch.pick(copies, at(`k${k}`))!;
      assert.ok(copies.includes(picked), 'returns one of the candidates given');
      assert.equal(picked.id, reference.pick(fakeEndpoints(ids), at(`k${k}`))!.id);
    }
    // A candidate the balancer was never told about does not break picking.
    const stranger = fakeEndpoints(['z', 'y']);
    assert.ok(stranger.includes(ch.pick(stranger, at('k1'))!));
  });

  test(`consistent-hash (${hashTable}): weights are honoured`, () => {
    const ch = make();
    const eps = fakeEndpoints(['a', 'b', 'c'], [2, 1, 1]);
    ch.update(eps);
    const counts = tally(Array.from({ length: 10_000 }, (_, k) => ch.pick(eps, at(`k${k}`))!.id));
    assert.ok(Math.abs(counts.get('a')! - 5000) <= 500, `a: ${counts.get('a')}`);
    assert.ok(Math.abs(counts.get('b')! - 2500) <= 250, `b: ${counts.get('b')}`);
  });

  test(`consistent-hash (${hashTable}): without a key the pick is random among the candidates`, () => {
    const ch = make(7);
    const eps = fakeEndpoints(ids);
    ch.update(eps);
    const counts = tally(Array.from({ length: 5000 }, () => ch.pick(eps, at(undefined))!.id));
    assert.equal(counts.size, 5);
    for (const [id, count] of counts) assert.ok(Math.abs(count - 1000) < 150, `${id}: ${count}`);
    assert.equal(ch.pick(eps.slice(0, 1), at(undefined)), eps[0]);
    assert.equal(ch.pick([], at('k')), undefined);
  });
}
