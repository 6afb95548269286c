/**
 * Per-consumer limits (`consumers.NAME.limits`, issue 13) through the real gateway: consumers with
 * API keys, one inline and one from `consumers.file` with overrides, one unlimited, one held to the
 * policies' own numbers; exact counts under concurrent requests for a rate limit, a quota and an
 * in-flight limit; the RateLimit fields with each consumer's own quota and the partition key `pk`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { echo, startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';

const KEYS = {
  alice: randomBytes(24).toString('hex'),
  bob: randomBytes(24).toString('hex'),
  carol: randomBytes(24).toString('hex'),
  root: randomBytes(24).toString('hex'),
};
type Who = keyof typeof KEYS;

function config(origin: string): string {
  return `
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers:
  file: users.yaml
  alice:
    credentials: [{ type: api-key, key: "${KEYS.alice}" }]
    limits:
      per-hour: { limit: 5 }
      monthly: { limit: 4 }
      inflight: { limit: 3 }
  bob:
    credentials: [{ type: api-key, key: "${KEYS.bob}" }]
  root:
    credentials: [{ type: api-key, key: "${KEYS.root}" }]
    limits:
      per-hour: { limit: unlimited }
      monthly: { limit: unlimited }
      inflight: { limit: unlimited }
policies:
  keys: { type: api-key }
  per-hour: { type: rate-limit, key: consumer, limit: 2, window: 1h, partitionKey: true }
  monthly: { type: quota, key: consumer, limit: 3, period: month }
  inflight: { type: concurrency-limit, key: consumer, limit: 1 }
routes:
  rl: { match: { path: /rl }, upstream: app, policies: [keys, per-hour] }
  q: { match: { path: /q }, upstream: app, policies: [keys, monthly] }
  held: { match: { path: /held }, upstream: app, policies: [keys, inflight] }
upstreams:
  app: { endpoints: [{ url: "${origin}" }] }
`;
}

const USERS = `carol:
  credentials: [{ type: api-key, key: "${KEYS.carol}" }]
  limits:
    per-hour: { limit: 3, window: 1h }
`;

interface Answer {
  who: Who;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  code: string | undefined;
}

describe('consumers.NAME.limits through the gateway', () => {
  const agent = new Agent({ connections: 64, pipelining: 0 });
  /** Responses the origin holds (path /held) until the test lets them go. */
  const held: http.ServerResponse[] = [];
  let origin: Origin;
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    const answer = echo('o');
    origin = await startOrigin('o', (req, res) => {
      if (req.url?.startsWith('/held')) held.push(res);
      else answer(req, res);
    });
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-limits-'));
    await writeFile(path.join(dir, 'users.yaml'), USERS);
    await writeFile(path.join(dir, 'sb.yaml'), config(origin.url));
    gw = await startTestGateway(path.join(dir, 'sb.yaml'));
  });
  after(async () => {
    for (const res of held.splice(0)) res.end();
    await gw.stop();
    await origin.close();
    await agent.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function send(who: Who, route: string): Promise<Answer> {
    const res = await request(`${gw.url}${route}`, { headers: { 'x-api-key': KEYS[who] }, dispatcher: agent });
    const text = await res.body.text();
    const code = res.statusCode === 200 ? undefined : (JSON.parse(text) as { error: { code: string } }).error.code;
    return { who, status: res.statusCode, headers: res.headers, code };
  }

  /** `n` concurrent requests of each consumer; the number that passed, by consumer. */
  async function burst(route: string, n: number, who: Who[]): Promise<Record<string, number>> {
    const answers = await Promise.all(who.flatMap((w) => Array.from({ length: n }, () => send(w, route))));
    const passed: Record<string, number> = {};
    for (const a of answers) {
      passed[a.who] ??= 0;
      if (a.status === 200) passed[a.who]! += 1;
      else assert.equal(a.code, route === '/q' ? 'QUOTA_EXCEEDED' : 'RATE_LIMITED');
    }
    return passed;
  }

  test('rate-limit: of 20 concurrent requests each, alice (override 5) gets exactly 5, carol (from the file, 3) 3, bob (the policy’s 2) 2, root all 20', async () => {
    assert.deepEqual(await burst('/rl', 20, ['alice', 'bob', 'carol', 'root']), { alice: 5, bob: 2, carol: 3, root: 20 });
  });

  test('the RateLimit fields carry each consumer’s own quota, and pk: a hash of the partition, never the consumer’s name or key', async () => {
    const pk = (consumer: string): string => `:${createHash('sha256').update(`rl:per-hour:c=${consumer}`).digest().subarray(0, 9).toString('base64')}:`;
    const alice = await send('alice', '/rl');
    assert.equal(alice.status, 429);
    assert.equal(alice.headers['ratelimit-policy'], `"per-hour";q=5;w=3600;pk=${pk('alice')}`);
    assert.match(String(alice.headers.ratelimit), new RegExp(`^"per-hour";r=0;t=\\d+;pk=${pk('alice').replace(/[+/]/g, '\\$&')}$`));
    const bob = await send('bob', '/rl');
    assert.equal(bob.headers['ratelimit-policy'], `"per-hour";q=2;w=3600;pk=${pk('bob')}`);
    assert.notEqual(pk('alice'), pk('bob'));
    for (const a of [alice, bob]) {
      const fields = `${a.headers['ratelimit-policy']} ${a.headers.ratelimit}`;
      assert.ok(!fields.includes('alice') && !fields.includes('bob') && !fields.includes(KEYS.alice), fields);
    }
    const root = await send('root', '/rl');
    assert.equal(root.status, 200);
    assert.equal(root.headers.ratelimit, undefined, 'an unlimited consumer is not counted: no fields');
  });

  test('quota: of 10 concurrent requests each, alice (override 4) gets exactly 4, bob (the policy’s 3) 3, root all 10', async () => {
    assert.deepEqual(await burst('/q', 10, ['alice', 'bob', 'root']), { alice: 4, bob: 3, root: 10 });
    const usage = await gw.gw.usage('monthly', { consumer: 'alice' });
    assert.deepEqual([usage?.limit, usage?.remaining], [4, 0]);
  });

  test('concurrency-limit: alice (override 3) has exactly 3 in flight, bob (the policy’s 1) 1, root 5 of 5', async () => {
    const all = [
      ...Array.from({ length: 6 }, () => send('alice', '/held')),
      ...Array.from({ length: 6 }, () => send('bob', '/held')),
      ...Array.from({ length: 5 }, () => send('root', '/held')),
    ];
    const refused: Answer[] = [];
    for (const p of all) p.then((a) => a.status !== 200 && refused.push(a)).catch(() => undefined);
    // Every request is either held at the origin or refused by then: wait for that, not for time.
    await guard(
      (async () => {
        while (held.length + refused.length < all.length) await new Promise((r) => setImmediate(r));
      })(),
      'every request held or refused',
      10_000,
    );
    for (const res of held.splice(0)) res.end('done');
    const answers = await Promise.all(all);
    const passed = (who: Who) => answers.filter((a) => a.who === who && a.status === 200).length;
    assert.deepEqual([passed('alice'), passed('bob'), passed('root')], [3, 1, 5]);
    assert.ok(refused.every((a) => a.status === 429 && a.code === 'CONCURRENCY_LIMITED'));
  });

  test('a reload that removes alice’s override holds her to the policy’s numbers, her count kept (key consumer)', async () => {
    await writeFile(path.join(dir, 'sb.yaml'), config(origin.url).replace('      per-hour: { limit: 5 }\n', ''));
    assert.equal((await gw.gw.reload()).ok, true);
    const a = await send('alice', '/rl');
    assert.equal(a.status, 429);
    assert.match(String(a.headers['ratelimit-policy']), /^"per-hour";q=2;w=3600;pk=/);
  });
});
