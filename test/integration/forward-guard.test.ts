/**
 * The destination guard with real DNS and real sockets (EDGE-CASES 35 and 49): names resolved by a
 * DNS server the test controls (helpers/dns-server.ts), origins on 127.0.0.1 and 127.0.0.2, and
 * connections counted at the origins. No mocked network, no external host.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { RawForward } from '../../src/config/forward-schema.ts';
import type { Problem } from '../../src/config/problems.ts';
import { resolveForward } from '../../src/config/resolve-forward.ts';
import type { ForwardAsk, Permit } from '../../src/forward/destination-guard.ts';
import { compileForwardRules } from '../../src/forward/rules.ts';
import { type DnsQuery, type DnsReply, type DnsServer, startDnsServer } from './helpers/dns-server.ts';
import { closedPort } from './helpers/origin.ts';

/** A TCP origin that writes its name to each connection and counts them. */
interface CountingOrigin {
  readonly name: string;
  readonly port: number;
  connections: number;
  server: Server;
}

async function listen(name: string, host: string, port: number): Promise<CountingOrigin> {
  const origin: CountingOrigin = { name, port, connections: 0, server: createServer() };
  origin.server.on('connection', (s: Socket) => {
    origin.connections++;
    s.end(name);
  });
  await new Promise<void>((resolve, reject) => {
    origin.server.once('error', reject);
    origin.server.listen(port, host, () => resolve());
  });
  return Object.assign(origin, { port: (origin.server.address() as { port: number }).port });
}

/** What a connected socket's origin says (its name). */
function readName(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      text += c;
    });
    s.once('end', () => resolve(text));
    s.once('error', reject);
  });
}

let dns: DnsServer;
let answers: (q: DnsQuery) => DnsReply | undefined = () => undefined;
let a: CountingOrigin; // 127.0.0.2, "the internet": allowed by rule
let b: CountingOrigin; // 127.0.0.1 on the same port: loopback, denied by default

before(async () => {
  dns = await startDnsServer((q) => answers(q));
  a = await listen('A', '127.0.0.2', 0);
  b = await listen('B', '127.0.0.1', a.port); // the same port: only the address tells them apart
});

after(async () => {
  await dns.close();
  for (const o of [a, b]) await new Promise((resolve) => o.server.close(resolve));
});

function guard(raw: RawForward = {}) {
  const problems: Problem[] = [];
  const config = resolveForward(
    { rules: [{ action: 'allow', destinations: ['127.0.0.2/32'] }], ...raw, resolver: { servers: [dns.address], timeout: '1s', ...raw.resolver } },
    ['listeners', 'proxy', 'forward'],
    '.',
    problems,
  );
  assert.deepEqual(problems, []);
  return compileForwardRules(config);
}

const ask = (host: string, over: Partial<ForwardAsk> = {}): ForwardAsk => ({
  client: '127.0.0.1',
  consumer: undefined,
  groups: [],
  method: 'GET', // absolute-form: the origin's port (≥ 1025) is a safe port
  scheme: 'http',
  host,
  port: a.port,
  ...over,
});

test('DNS rebinding: a name that resolves to an allowed address, then to loopback, never reaches loopback', async () => {
  const name = 'rebind.test';
  answers = (q) => (q.name === name ? { addresses: [q.type === 'A' && q.n === 1 ? '127.0.0.2' : '127.0.0.1'] } : undefined);
  const before = { a: a.connections, b: b.connections, queries: dns.count(name, 'A') };
  const g = guard();

  const first = await g.check(ask(name));
  assert.ok(first.allowed, JSON.stringify(first));
  assert.deepEqual(first.addresses, ['127.0.0.2']);
  assert.equal(first.rule, 'rules[0]');
  assert.equal(dns.count(name, 'A') - before.queries, 1);

  // The name now resolves to 127.0.0.1: a second check sees it and refuses.
  const second = await g.check(ask(name));
  assert.equal(second.allowed, false);
  assert.ok(!second.allowed && second.code === 'DESTINATION_FORBIDDEN' && second.rule === 'default:loopback', JSON.stringify(second));
  assert.match(second.allowed ? '' : second.reason, /rebind\.test → 127\.0\.0\.1: a loopback address/);
  assert.equal(dns.count(name, 'A') - before.queries, 2, 'one query per check');

  // Connecting with the first permit after the rebinding reaches the checked address: no second lookup.
  const socket = await g.connect(first, 1000);
  assert.equal(socket.remoteAddress, '127.0.0.2');
  assert.equal(await readName(socket), 'A');
  assert.equal(dns.count(name, 'A') - before.queries, 2, 'connect never resolves');
  assert.equal(a.connections - before.a, 1);
  assert.equal(b.connections - before.b, 0, 'B, on loopback, was never connected to');
});

test('every address is checked: denied ones are dropped from the permit; none left is the first refusal', async () => {
  answers = (q) => {
    if (q.name === 'mixed.test') return { addresses: ['127.0.0.1', '127.0.0.2', '::1'] };
    if (q.name === 'private.test') return { addresses: ['10.0.0.1', '127.0.0.1'] };
    return undefined;
  };
  const g = guard();
  const mixed = await g.check(ask('mixed.test'));
  assert.ok(mixed.allowed);
  assert.deepEqual(mixed.addresses, ['127.0.0.2']);
  const socket = await g.connect(mixed, 1000);
  assert.equal(await readName(socket), 'A');

  const none = await g.check(ask('private.test'));
  assert.ok(!none.allowed);
  assert.equal(none.rule, 'default:private');
  assert.equal(none.code, 'DESTINATION_FORBIDDEN');

  // A CONNECT tunnel to the same name: the rule allows 127.0.0.2 on any port; the others fall to
  // the defaults, where the port (not among connectPorts) is refused before the address.
  const tunnel = await g.check(ask('mixed.test', { method: 'CONNECT', scheme: 'https' }));
  assert.ok(tunnel.allowed);
  assert.deepEqual(tunnel.addresses, ['127.0.0.2']);
  const refused = await g.check(ask('private.test', { method: 'CONNECT', scheme: 'https' }));
  assert.ok(!refused.allowed && refused.rule === 'default:connect-port' && refused.code === 'PORT_FORBIDDEN');
});

test('an allow by domain keeps the address defaults unless it names destinations; a deny by domain is decided without a lookup', async () => {
  answers = (q) => (q.name.endsWith('.corp.test') ? { addresses: ['127.0.0.1'] } : undefined);
  const byName = guard({
    rules: [
      { name: 'corp', action: 'allow', domains: ['*.corp.test'] },
      { name: 'office', action: 'allow', clients: ['127.0.0.0/8'] },
    ],
  });
  const loopback = await byName.check(ask('wiki.corp.test'));
  assert.ok(!loopback.allowed && loopback.rule === 'default:loopback', JSON.stringify(loopback));
  const office = await byName.check(ask('127.0.0.1'));
  assert.ok(!office.allowed && office.rule === 'default:loopback', 'allowing clients opens no private destination');
  const g = guard({
    rules: [
      { action: 'deny', domains: ['blocked.corp.test'] },
      { name: 'corp', action: 'allow', domains: ['*.corp.test'], destinations: ['127.0.0.1/32'] },
    ],
  });
  const queriesBefore = dns.queries.length;
  const blocked = await g.check(ask('blocked.corp.test'));
  assert.ok(!blocked.allowed && blocked.code === 'DOMAIN_BLOCKED' && blocked.rule === 'rules[0]');
  assert.equal(dns.queries.length, queriesBefore, 'a blocked domain is never resolved');
  const wiki = await g.check(ask('wiki.corp.test'));
  assert.ok(wiki.allowed && wiki.rule === 'corp');
  assert.deepEqual(wiki.addresses, ['127.0.0.1']);
  assert.equal(await readName(await g.connect(wiki, 1000)), 'B');
});

test('DNS failures are DESTINATION_UNRESOLVED: NXDOMAIN, SERVFAIL, no answer within the timeout', async () => {
  answers = (q) => {
    if (q.name === 'servfail.test') return { rcode: 'SERVFAIL' };
    if (q.name === 'silent.test') return 'drop';
    if (q.name === 'v6only.test') return { addresses: ['::1'] };
    return undefined;
  };
  const g = guard({ resolver: { timeout: '300ms' } });
  for (const name of ['nxdomain.test', 'servfail.test', 'silent.test']) {
    const d = await g.check(ask(name));
    assert.ok(!d.allowed && d.code === 'DESTINATION_UNRESOLVED' && d.rule === 'resolver', `${name}: ${JSON.stringify(d)}`);
  }
  // AAAA only: resolved (A's empty answer is no failure), then refused as loopback.
  const v6 = await g.check(ask('v6only.test'));
  assert.ok(!v6.allowed && v6.rule === 'default:loopback', JSON.stringify(v6));
});

test('the answer cache: concurrent checks share one query; answers live their TTL, at most maxTtl', async () => {
  answers = (q) => (q.name === 'cached.test' ? { addresses: ['127.0.0.2'], ttl: 3600 } : q.name === 'burst.test' ? { addresses: ['127.0.0.2'] } : undefined);
  const g = guard();
  const burst = await Promise.all(Array.from({ length: 20 }, () => g.check(ask('burst.test'))));
  assert.ok(burst.every((d) => d.allowed));
  assert.equal(dns.count('burst.test', 'A'), 1, 'twenty concurrent checks, one query');
  await g.check(ask('burst.test'));
  assert.equal(dns.count('burst.test', 'A'), 2, 'TTL 0: not cached');

  await g.check(ask('cached.test'));
  await g.check(ask('cached.test'));
  assert.equal(dns.count('cached.test', 'A'), 1, 'TTL 3600: cached');
  const uncached = guard({ resolver: { maxTtl: 0 } });
  await uncached.check(ask('cached.test'));
  await uncached.check(ask('cached.test'));
  assert.equal(dns.count('cached.test', 'A'), 3, 'maxTtl 0: resolved every time');
});

test('connect: the permit addresses in order, the next when one fails; the last error; abort', async () => {
  const g = guard();
  const dead = await closedPort();
  const permit = (addresses: string[], port = a.port): Permit => ({ allowed: true, rule: 'test', host: 'x.test', port, addresses });
  const socket = await g.connect(permit(['127.0.0.3', '127.0.0.2']), 1000);
  assert.equal(socket.remoteAddress, '127.0.0.2');
  assert.equal(await readName(socket), 'A');
  await assert.rejects(g.connect(permit(['127.0.0.1', '::1'], dead), 1000), { code: 'ECONNREFUSED' });
  await assert.rejects(g.connect(permit(['127.0.0.2']), 1000, AbortSignal.abort(new Error('gone'))), /gone/);
});

test('the system resolver (no servers): localhost is resolved by the machine and refused as loopback', async () => {
  const problems: Problem[] = [];
  const g = compileForwardRules(resolveForward({}, ['forward'], '.', problems));
  const d = await g.check(ask('localhost'));
  assert.ok(!d.allowed && d.rule === 'default:loopback' && d.code === 'DESTINATION_FORBIDDEN', JSON.stringify(d));
  const allowed = compileForwardRules(resolveForward({ rules: [{ action: 'allow', destinations: ['127.0.0.0/8'] }] }, ['forward'], '.', problems));
  const p = await allowed.check(ask('localhost'));
  assert.ok(p.allowed && p.addresses.includes('127.0.0.1') && !p.addresses.includes('::1'), JSON.stringify(p));
  assert.deepEqual(problems, []);
});
