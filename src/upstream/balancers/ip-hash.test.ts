import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpHash } from './ip-hash.ts';
import { fakeEndpoints, mulberry32, tally } from './testing.ts';

const at = (hashKey: string | undefined) => ({ hashKey, now: 0 });
const ids = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'];
const clients = Array.from({ length: 10_000 }, (_, i) => `192.168.${i >> 8}.${i & 255}`);

for (const hashTable of ['ring', 'maglev'] as const) {
  test(`ip-hash (${hashTable}): a client keeps its endpoint, clients spread evenly`, () => {
    const ip = new IpHash({ random: mulberry32(1), hashTable });
    assert.equal(ip.name, 'ip-hash');
    const eps = fakeEndpoints(ids);
    ip.update(eps);
    const first = clients.map((c) => ip.pick(eps, at(c))!.id);
    ip.update(eps); // an update with the same set changes nothing
    clients.forEach((c, i) => {
      assert.equal(ip.pick(eps, at(c))!.id, first[i]);
    });
    for (const [id, count] of tally(first)) assert.ok(Math.abs(count - 2000) <= 200, `${id}: ${count}`);
    assert.equal(ip.pick(eps, at('2001:db8::1'))!.id, ip.pick(eps, at('2001:db8::1'))!.id);
  });

  test(`ip-hash (${hashTable}): an endpoint going and coming back moves only its share of clients`, () => {
    const ip = new IpHash({ random: mulberry32(2), hashTable });
    const eps = fakeEndpoints(ids);
    ip.update(eps);
    const before = clients.map((c) => ip.pick(eps, at(c))!.id);
    const fewer = eps.filter((e) => e.id !== 'web-2');
    ip.update(fewer);
    const during = clients.map((c) => ip.pick(fewer, at(c))!.id);
    const moved = clients.filter((_, i) => before[i] !== during[i]).length;
    assert.ok(moved <= 10_000 * (1 / 5 + 0.05), `moved ${moved}`);
    ip.update(eps);
    clients.forEach((c, i) => {
      assert.equal(ip.pick(eps, at(c))!.id, before[i], 'back where they were');
    });
  });

  test(`ip-hash (${hashTable}): a retry excluding the tried endpoint is deterministic`, () => {
    const ip = new IpHash({ random: mulberry32(3), hashTable });
    const eps = fakeEndpoints(ids);
    ip.update(eps);
    for (const client of clients.slice(0, 500)) {
      const tried = ip.pick(eps, at(client))!;
      const rest = eps.filter((e) => e !== tried);
      const retry = ip.pick(rest, at(client))!;
      assert.notEqual(retry, tried);
      assert.equal(ip.pick(rest, at(client)), retry);
    }
  });

  test(`ip-hash (${hashTable}): no client address picks some candidate`, () => {
    const ip = new IpHash({ random: mulberry32(4), hashTable });
    const eps = fakeEndpoints(ids);
    ip.update(eps);
    assert.ok(eps.includes(ip.pick(eps, at(undefined))!));
  });
}
