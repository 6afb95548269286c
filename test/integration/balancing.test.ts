/**
 * The balancing algorithms on real traffic: real origins, the real gateway, real keep-alive HTTP
 * clients. Each test measures who answered (`x-origin`) and checks what the algorithm promises:
 * weighted shares and interleaving, load and latency awareness, hash affinity and how few keys move
 * when an endpoint goes, weighted random shares, and sticky sessions.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { simpleConfig, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { guard } from './helpers/guard.ts';
import { Traffic, countByOrigin, named, type Reply } from './helpers/traffic.ts';

/** Starts one `named` origin per name, each answering after `delays[i]` ms (0 by default). */
function startOrigins(names: readonly string[], delays: readonly number[] = []): Promise<Origin[]> {
  return Promise.all(names.map((name, i) => startOrigin(name, named(name, delays[i] ?? 0))));
}

/** A gateway config: one `web` listener, every path to upstream `app` over these origins. */
function config(origins: readonly Origin[], upstream: Record<string, unknown>, opts: { weights?: readonly number[]; listener?: object } = {}): Record<string, unknown> {
  return simpleConfig([], {
    listener: opts.listener,
    upstream: { ...upstream, endpoints: origins.map((o, i) => ({ url: o.url, weight: opts.weights?.[i] ?? 1 })) },
  });
}

/** Runs `body` with a gateway over `origins` and a keep-alive client to it, then tears all down. */
async function withGateway(origins: Origin[], cfg: object, body: (gw: TestGateway, client: Traffic) => Promise<void>): Promise<void> {
  const gw = await startTestGateway(cfg);
  const client = new Traffic(gw.url, 64);
  try {
    await body(gw, client);
  } finally {
    await client.close();
    await gw.stop();
    await Promise.all(origins.map((o) => o.close()));
  }
}

function assertAllOk(replies: readonly Reply[], what: string): void {
  const bad = replies.filter((r) => r.status !== 200 || r.origin === '');
  assert.equal(bad.length, 0, `${what}: ${bad.length} replies were not a 200 from an origin, e.g. ${JSON.stringify(bad[0])}`);
}

/** Longest run of each value in `seq`. */
function longestRuns(seq: readonly string[]): Record<string, number> {
  const best: Record<string, number> = {};
  let run = 0;
  for (let i = 0; i < seq.length; i++) {
    run = i > 0 && seq[i] === seq[i - 1] ? run + 1 : 1;
    best[seq[i]] = Math.max(best[seq[i]] ?? 0, run);
  }
  return best;
}

/**
 * Reference model of NGINX's smooth weighted round robin (its definition, not Switchboard's code):
 * each pick adds every weight to its endpoint's `current`, the largest (first on a tie) wins and
 * loses the total weight.
 */
function smoothWrrModel(names: readonly string[], weights: readonly number[], picks: number): string[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((s, w) => s + w, 0);
  const out: string[] = [];
  for (let k = 0; k < picks; k++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    out.push(names[best]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

test('weighted round robin: 10,000 requests follow weights 5:3:2 within 2%, interleaved rather than in bursts', { timeout: 30_000 }, async (t) => {
  const names = ['a', 'b', 'c'];
  const weights = [5, 3, 2];
  const origins = await startOrigins(names);
  await withGateway(origins, config(origins, { balancer: 'weighted-round-robin' }, { weights }), async (_gw, client) => {
    // The bound on runs, derived from the algorithm's definition (smoothWrrModel). From the zero
    // state, weights 5,3,2 (total 10) give the period  a b c a a b a c b a  after which every
    // `current` is 0 again, so it repeats: `a` appears at most twice in a row (a a inside the
    // period, a | a across its end), b and c never twice. A bursty schedule (a a a a a b b b c c)
    // has the same shares but runs of 5, 3 and 2.
    const bound = longestRuns(smoothWrrModel(names, weights, 1000));
    assert.deepEqual({ ...bound }, { a: 2, b: 1, c: 1 }, 'the smooth WRR model itself');

    const sequence: string[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await client.send({ path: `/seq/${i}` });
      assert.equal(r.status, 200);
      sequence.push(r.origin);
    }
    const runs = longestRuns(sequence);
    for (const name of names) {
      assert.ok((runs[name] ?? 0) <= bound[name], `${name} answered ${runs[name]} times in a row (bound ${bound[name]}): ${sequence.join('')}`);
    }
    // Interleaving at every scale: any 10 consecutive answers hold each origin its weight's
    // worth (±1), where plain round robin would give every origin 3 or 4.
    for (let s = 0; s + 10 <= sequence.length; s++) {
      const window = countByOrigin(sequence.slice(s, s + 10), names);
      for (let i = 0; i < names.length; i++) {
        assert.ok(
          Math.abs(window[names[i]] - weights[i]) <= 1,
          `answers ${s}-${s + 9} (${sequence.slice(s, s + 10).join('')}) give ${names[i]} ${window[names[i]]} of 10, weight ${weights[i]}`,
        );
      }
    }

    const rest = await guard(
      client.many(9_900, 32, (i) => ({ path: `/bulk/${i}` })),
      '9,900 requests',
      25_000,
    );
    assertAllOk(rest, 'bulk');
    const counts = countByOrigin([...sequence, ...rest], names);
    t.diagnostic(`first 100: ${sequence.join('')}; all: ${JSON.stringify(counts)}`);
    const total = 10_000;
    for (let i = 0; i < names.length; i++) {
      const expected = (total * weights[i]) / 10;
      const share = counts[names[i]];
      assert.ok(
        Math.abs(share - expected) <= 0.02 * expected,
        `${names[i]} (weight ${weights[i]}) got ${share} of ${total}, expected ${expected} ±2%: ${JSON.stringify(counts)}`,
      );
    }
  });
});

/**
 * Two origins answer in 5 ms, one in 100 ms. Round robin would send the slow one a third of the
 * requests; a load- or latency-aware balancer sends it far fewer.
 */
async function slowOriginAvoided(t: TestContext, balancer: string): Promise<void> {
  const names = ['fast1', 'fast2', 'slow'];
  const origins = await startOrigins(names, [5, 5, 100]);
  await withGateway(origins, config(origins, { balancer }), async (_gw, client) => {
    const n = 400;
    const replies = await guard(client.many(n, 24), `${n} requests with 24 in flight`, 20_000);
    assertAllOk(replies, balancer);
    const counts = countByOrigin(replies, names);
    const roundRobinShare = 1 / names.length;
    const slowShare = counts.slow / n;
    t.diagnostic(JSON.stringify(counts));
    assert.ok(
      slowShare < 0.15,
      `the 100 ms origin got ${(slowShare * 100).toFixed(1)}% (${JSON.stringify(counts)}); round robin would give ${(roundRobinShare * 100).toFixed(0)}%, expected < 15%`,
    );
    assert.ok(counts.fast1 > 0 && counts.fast2 > 0, `both fast origins take traffic: ${JSON.stringify(counts)}`);
  });
}

test('least connections sends most traffic away from an origin that answers in 100 ms (vs 5 ms)', { timeout: 30_000 }, async (t) => {
  await slowOriginAvoided(t, 'least-connections');
});

test('least response time sends most traffic away from an origin that answers in 100 ms (vs 5 ms)', { timeout: 30_000 }, async (t) => {
  await slowOriginAvoided(t, 'least-response-time');
});

// ---------------------------------------------------------------------------------------------

/** `count` distinct client addresses, 10.x.y.z. */
function clientAddresses(count: number): string[] {
  return Array.from({ length: count }, (_, k) => {
    const i = k + 1;
    return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  });
}

/** Which origin answered each key, sending `request(key)`, 32 at a time. */
async function mapKeys(client: Traffic, keys: readonly string[], request: (key: string) => { path?: string; headers?: Record<string, string> }): Promise<string[]> {
  const replies = await guard(
    client.many(keys.length, 32, (i) => request(keys[i])),
    `${keys.length} mapping requests`,
    20_000,
  );
  assertAllOk(replies, 'mapping');
  return replies.map((r) => r.origin);
}

/**
 * Checks the remapping after one endpoint (`removed`) of five went: only about its share of keys may
 * move (≤ 1/5 + 5%), every key it had must move, and keys whose endpoint stayed must (almost) stay.
 */
function assertMinimalRemap(t: TestContext, before: readonly string[], after: readonly string[], removed: string, what: string): void {
  const n = before.length;
  let moved = 0;
  let survivorsMoved = 0;
  let survivors = 0;
  for (let i = 0; i < n; i++) {
    assert.notEqual(after[i], removed, `${what}: key ${i} still went to the removed endpoint`);
    if (before[i] !== after[i]) moved++;
    if (before[i] !== removed) {
      survivors++;
      if (before[i] !== after[i]) survivorsMoved++;
    }
  }
  const limit = n * (1 / 5 + 0.05);
  t.diagnostic(`${what}: ${moved} of ${n} keys moved; ${survivorsMoved} of ${survivors} on surviving endpoints moved`);
  assert.ok(moved <= limit, `${what}: ${moved} of ${n} keys moved, at most ${limit} allowed (a modulo hash would move ~80%)`);
  assert.ok(survivorsMoved <= 0.05 * survivors, `${what}: ${survivorsMoved} of the ${survivors} keys whose endpoint stayed moved anyway`);
}

test('ip-hash: one client address keeps its endpoint, and removing one of five endpoints moves only about a fifth of 10,000 clients', { timeout: 30_000 }, async (t) => {
  const names = ['h1', 'h2', 'h3', 'h4', 'h5'];
  const origins = await startOrigins(names);
  const listener = { trustedProxies: ['127.0.0.1'] };
  await withGateway(origins, config(origins, { balancer: 'ip-hash' }, { listener }), async (gw, client) => {
    const xff = (address: string) => ({ headers: { 'x-forwarded-for': address } });

    // Affinity: 20 addresses, 5 rounds, interleaved so that consecutive requests differ.
    const few = clientAddresses(20).map((a) => a.replace(/^10\./, '192.'));
    const rounds: string[][] = [];
    for (let r = 0; r < 5; r++) rounds.push(await mapKeys(client, few, xff));
    for (let k = 0; k < few.length; k++) {
      const seen = new Set(rounds.map((round) => round[k]));
      assert.equal(seen.size, 1, `client ${few[k]} reached ${[...seen].join(', ')}`);
    }

    // Spread: the client address (from X-Forwarded-For, the peer being a trusted proxy) is what is
    // hashed, so 10,000 addresses spread over all five rather than all hashing as 127.0.0.1.
    const addresses = clientAddresses(10_000);
    const before = await mapKeys(client, addresses, xff);
    const counts = countByOrigin(before, names);
    t.diagnostic(`10,000 addresses: ${JSON.stringify(counts)}`);
    for (const name of names) assert.ok(counts[name] > 1_000 && counts[name] < 3_000, `uneven spread over 5 endpoints: ${JSON.stringify(counts)}`);

    const removed = 'h3';
    const remaining = origins.filter((o) => o.name !== removed);
    const result = await gw.gw.reload(config(remaining, { balancer: 'ip-hash' }, { listener }));
    assert.deepEqual(result, { ok: true, errors: [] });
    assert.equal(gw.gw.endpoints('app')?.length, 4);

    const after = await mapKeys(client, addresses, xff);
    assertMinimalRemap(t, before, after, removed, 'ip-hash');
  });
});

for (const hashTable of ['ring', 'maglev'] as const) {
  test(`consistent-hash on header:x-user with a ${hashTable} table: same key same endpoint, 10,000 keys spread within 10% of even, one of five removed moves ≤ 1/5 + 5%`, {
    timeout: 30_000,
  }, async (t) => {
    const names = ['k1', 'k2', 'k3', 'k4', 'k5'];
    const origins = await startOrigins(names);
    const upstream = { balancer: 'consistent-hash', hashKey: 'header:x-user', hashTable };
    await withGateway(origins, config(origins, upstream), async (gw, client) => {
      const user = (key: string) => ({ headers: { 'x-user': key } });
      const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

      const before = await mapKeys(client, keys, user);
      // Same key, same endpoint: the first 200 keys again, twice.
      for (let round = 0; round < 2; round++) {
        const again = await mapKeys(client, keys.slice(0, 200), user);
        for (let i = 0; i < again.length; i++) assert.equal(again[i], before[i], `key ${keys[i]} moved from ${before[i]} to ${again[i]} with nothing changed`);
      }

      const counts = countByOrigin(before, names);
      t.diagnostic(`10,000 keys: ${JSON.stringify(counts)}`);
      for (const name of names) {
        assert.ok(counts[name] >= 1_800 && counts[name] <= 2_200, `${name} got ${counts[name]} of 10,000 keys, expected 2,000 ±10%: ${JSON.stringify(counts)}`);
      }

      const removed = 'k4';
      const result = await gw.gw.reload(
        config(
          origins.filter((o) => o.name !== removed),
          upstream,
        ),
      );
      assert.deepEqual(result, { ok: true, errors: [] });
      const after = await mapKeys(client, keys, user);
      assertMinimalRemap(t, before, after, removed, `consistent-hash (${hashTable})`);
    });
  });
}

const keyKinds = [
  {
    hashKey: 'cookie:uid',
    // The same uid among other cookies that change on every request.
    request: (key: string, round: number) => ({ headers: { cookie: `theme=t${round}; uid=${key}; visit=${round * 7}` } }),
  },
  {
    hashKey: 'query:u',
    // The same u among other parameters that change, and a path that changes.
    request: (key: string, round: number) => ({ path: `/r${round}?x=${round}&u=${encodeURIComponent(key)}&y=${round * 3}` }),
  },
  {
    hashKey: 'path',
    // The same path with a query string that changes: the path alone is the key.
    request: (key: string, round: number) => ({ path: `/items/${key}?round=${round}` }),
  },
] as const;

for (const kind of keyKinds) {
  test(`consistent-hash on ${kind.hashKey}: the same key always reaches the same endpoint, different keys spread over all of them`, { timeout: 30_000 }, async () => {
    const names = ['p1', 'p2', 'p3'];
    const origins = await startOrigins(names);
    await withGateway(origins, config(origins, { balancer: 'consistent-hash', hashKey: kind.hashKey }), async (_gw, client) => {
      const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
      const rounds: string[][] = [];
      for (let round = 0; round < 4; round++) {
        const replies = await guard(
          client.many(keys.length, 8, (i) => kind.request(keys[i], round)),
          `round ${round}`,
          10_000,
        );
        assertAllOk(replies, kind.hashKey);
        rounds.push(replies.map((r) => r.origin));
      }
      for (let k = 0; k < keys.length; k++) {
        const seen = new Set(rounds.map((round) => round[k]));
        assert.equal(seen.size, 1, `${kind.hashKey} ${keys[k]} reached ${[...seen].join(', ')}`);
      }
      const used = new Set(rounds[0]);
      // 40 keys miss one of 3 equal endpoints with probability about 3 × (2/3)^40 ≈ 3e-7.
      assert.equal(used.size, names.length, `40 keys reached only ${[...used].join(', ')}`);
    });
  });
}

// ---------------------------------------------------------------------------------------------

for (const balancer of ['random', 'power-of-two'] as const) {
  test(`${balancer}: every endpoint gets traffic and shares follow weights 1:2:3`, { timeout: 30_000 }, async (t) => {
    const names = ['w1', 'w2', 'w3'];
    const weights = [1, 2, 3];
    const origins = await startOrigins(names);
    await withGateway(origins, config(origins, { balancer }, { weights }), async (_gw, client) => {
      const n = 2_400;
      const replies = await guard(client.many(n, 16), `${n} requests`, 20_000);
      assertAllOk(replies, balancer);
      const counts = countByOrigin(replies, names);
      t.diagnostic(JSON.stringify(counts));
      for (let i = 0; i < names.length; i++) {
        const expected = (n * weights[i]) / 6;
        // Loose: ±30% of the weight's share (an unweighted split, 800 each, is +100% for w1).
        assert.ok(
          Math.abs(counts[names[i]] - expected) <= 0.3 * expected,
          `${names[i]} (weight ${weights[i]}) got ${counts[names[i]]} of ${n}, expected about ${expected}: ${JSON.stringify(counts)}`,
        );
      }
      assert.ok(counts.w1 < counts.w2 && counts.w2 < counts.w3, `shares not ordered by weight: ${JSON.stringify(counts)}`);
    });
  });
}

// ---------------------------------------------------------------------------------------------

/** The value of cookie `name` in Set-Cookie headers, or undefined. */
function cookieIn(setCookie: readonly string[], name: string): string | undefined {
  for (const c of setCookie) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c);
    if (m) return m[1];
  }
  return undefined;
}

test('sticky cookie: pins a client to an opaque endpoint id, follows it, re-pins when that origin dies, and re-balances a garbage value', {
  timeout: 30_000,
}, async (t) => {
  const names = ['s1', 's2', 's3'];
  const origins = await startOrigins(names);
  const byName = new Map(origins.map((o) => [o.name, o]));
  await withGateway(origins, config(origins, { balancer: 'round-robin', sticky: { cookie: 'sb_ep' } }), async (_gw, client) => {
    // Without a cookie: round robin, and every answer pins its origin with an opaque id.
    const idOf = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const r = await client.send();
      assert.equal(r.status, 200);
      const id = cookieIn(r.setCookie, 'sb_ep');
      assert.ok(id !== undefined && id.length > 0, `no sb_ep cookie: ${JSON.stringify(r.setCookie)}`);
      assert.ok(!id.includes('127.0.0.1'), `the cookie names the address: ${id}`);
      for (const o of origins) assert.ok(!id.includes(String(o.port)), `the cookie holds a port (${o.port}): ${id}`);
      idOf.set(r.origin, id);
    }
    assert.equal(idOf.size, 3, 'three cookieless requests reached the three origins');
    const originOf = new Map([...idOf].map(([origin, id]) => [id, origin]));
    assert.equal(originOf.size, 3, 'each origin has its own id');

    // With the cookie: 20 requests, all to the pinned origin (round robin alone would rotate).
    const [pinned, pinnedId] = [...idOf][1];
    const stuck = await Promise.all(Array.from({ length: 20 }, () => client.send({ headers: { cookie: `other=1; sb_ep=${pinnedId}` } })));
    assertAllOk(stuck, 'pinned');
    assert.deepEqual(new Set(stuck.map((r) => r.origin)), new Set([pinned]), `pinned requests went to ${stuck.map((r) => r.origin).join(',')}`);

    // A garbage or unknown id is balanced as if absent and gets a fresh, valid cookie.
    for (const garbage of ['garbage', 'AAAAAAAAAAAA', '%%%;;']) {
      const r = await client.send({ headers: { cookie: `sb_ep=${garbage}` } });
      assert.equal(r.status, 200, `cookie ${garbage}`);
      const fresh = cookieIn(r.setCookie, 'sb_ep');
      assert.ok(fresh !== undefined && fresh !== garbage, `cookie ${garbage} got no fresh sb_ep: ${JSON.stringify(r.setCookie)}`);
      assert.equal(originOf.get(fresh), r.origin, `the fresh cookie ${fresh} names the origin that answered (${r.origin})`);
    }

    // The pinned origin dies. Requests carrying its id still succeed: the connect failure is
    // retried on another endpoint, which the response pins instead.
    await byName.get(pinned)!.close();
    const withOldCookie: Reply[] = [];
    for (let i = 0; i < 8; i++) withOldCookie.push(await client.send({ headers: { cookie: `sb_ep=${pinnedId}` } }));
    assertAllOk(withOldCookie, 'old cookie after the pinned origin closed');
    for (const r of withOldCookie) {
      assert.notEqual(r.origin, pinned);
      const id = cookieIn(r.setCookie, 'sb_ep');
      assert.equal(
        id !== undefined ? originOf.get(id) : undefined,
        r.origin,
        `a re-pinned answer from ${r.origin} sets a cookie naming it: ${JSON.stringify(r.setCookie)}`,
      );
    }

    // A client that keeps the cookie it is given (as a browser does) settles on one live origin.
    let jar = pinnedId;
    const journey: Reply[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await client.send({ headers: { cookie: `sb_ep=${jar}` } });
      journey.push(r);
      jar = cookieIn(r.setCookie, 'sb_ep') ?? jar;
    }
    assertAllOk(journey, 'following Set-Cookie');
    t.diagnostic(
      `pinned ${pinned}; old cookie after it closed: ${withOldCookie.map((r) => r.origin).join(',')}; following Set-Cookie: ${journey.map((r) => r.origin).join(',')}`,
    );
    const settled = journey.slice(2).map((r) => r.origin);
    assert.equal(new Set(settled).size, 1, `did not settle within 2 requests: ${journey.map((r) => r.origin).join(',')}`);
    assert.notEqual(settled[0], pinned);
    assert.notEqual(jar, pinnedId);
    assert.equal(originOf.get(jar), settled[0], 'the final cookie names the origin the client settled on');
  });
});
