/**
 * DNS rebinding through the real listeners (issue 15 §6; EDGE-CASES 35, 49): the listeners resolve
 * names with a DNS server the test controls (helpers/dns-server.ts, TTL 0), and a rule allows
 * 127.0.0.2/32 only. Origin A on 127.0.0.2 stands in for a public address; origin B on 127.0.0.1,
 * on the same port, is loopback (refused by default). A name that answers A's address first and
 * B's afterwards reaches A with an absolute-form request (curl -x), a CONNECT tunnel (curl -p) and
 * SOCKS5 (curl --socks5-hostname), and is refused once its answer has changed; a name answering
 * both addresses reaches A only. B counts its connections: none, ever.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { startGateway, type Gateway } from '../../src/index.ts';
import { type DnsQuery, type DnsServer, startDnsServer } from './helpers/dns-server.ts';
import { curl, errorAnswer } from './helpers/forward.ts';

/** An HTTP origin that answers its name and counts the connections it accepts. */
interface NamedOrigin {
  readonly server: http.Server;
  readonly port: number;
  connections: number;
  close(): Promise<void>;
}

async function namedOrigin(name: string, host: string, port: number): Promise<NamedOrigin> {
  const sockets = new Set<Socket>();
  const server = http.createServer((_req, res) => res.end(name));
  const origin = {
    server,
    port,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (s: Socket) => {
    origin.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return Object.assign(origin, { port: (server.address() as AddressInfo).port });
}

/** Names that answer 127.0.0.2 to their first A query and 127.0.0.1 to every later one. */
const REBINDING = new Set(['rebind-get.test', 'rebind-connect.test', 'rebind-socks.test']);

function answer(q: DnsQuery) {
  if (REBINDING.has(q.name)) return { addresses: [q.type === 'A' && q.n === 1 ? '127.0.0.2' : '127.0.0.1'] };
  if (q.name === 'both.test') return { addresses: ['127.0.0.1', '127.0.0.2'] };
  return undefined;
}

let dns: DnsServer;
let a: NamedOrigin;
let b: NamedOrigin;
let gw: Gateway;
let proxy: string;
let socks: string;

before(async () => {
  dns = await startDnsServer(answer);
  a = await namedOrigin('A', '127.0.0.2', 0);
  b = await namedOrigin('B', '127.0.0.1', a.port); // the same port: only the address tells them apart
  const forward = { rules: [{ name: 'public', action: 'allow', destinations: ['127.0.0.2/32'] }], resolver: { servers: [dns.address], timeout: '2s' } };
  gw = await startGateway({
    config: {
      listeners: {
        proxy: { address: '127.0.0.1:0', protocol: 'forward', forward },
        socks: { address: '127.0.0.1:0', protocol: 'socks5', forward },
      },
    },
    accessLog: 'off',
    logLevel: 'silent',
  });
  proxy = `http://127.0.0.1:${gw.address('proxy').port}`;
  socks = `127.0.0.1:${gw.address('socks').port}`;
});

after(async () => {
  await gw?.stop({ drainTimeout: 1000 });
  await Promise.all([a?.close(), b?.close(), dns?.close()]);
});

test('absolute-form (curl -x): the first answer reaches A, resolved once; after the rebinding 403, B never reached', async () => {
  const name = 'rebind-get.test';
  const first = await curl(['-i', '-x', proxy, `http://${name}:${a.port}/`]);
  assert.match(first.stdout, /^HTTP\/1\.1 200 /, first.stdout + first.stderr);
  assert.ok(first.stdout.endsWith('\r\n\r\nA'), first.stdout);
  assert.equal(dns.count(name, 'A'), 1, 'the name was resolved once: the connection went to the checked address');
  const second = await curl(['-i', '-x', proxy, `http://${name}:${a.port}/again`]);
  assert.deepEqual(errorAnswer(second.stdout), { status: 403, code: 'DESTINATION_FORBIDDEN' }, second.stdout);
  assert.equal(dns.count(name, 'A'), 2);
  assert.equal(b.connections, 0, 'B, on loopback, was never connected to');
});

test('CONNECT (curl -p): the tunnel goes to A; after the rebinding the CONNECT is refused 403, B never reached', async () => {
  const name = 'rebind-connect.test';
  const before = a.connections;
  const first = await curl(['-i', '-p', '-x', proxy, `http://${name}:${a.port}/`]);
  assert.equal(first.exit, 0, first.stderr);
  assert.ok(first.stdout.endsWith('\r\n\r\nA'), first.stdout);
  assert.equal(a.connections, before + 1);
  assert.equal(dns.count(name, 'A'), 1);
  const second = await curl(['-i', '-p', '-x', proxy, `http://${name}:${a.port}/`]);
  assert.notEqual(second.exit, 0);
  assert.match(second.stdout, /^HTTP\/1\.1 403 /, second.stdout);
  assert.equal(a.connections, before + 1);
  assert.equal(b.connections, 0, 'B, on loopback, was never connected to');
});

test('SOCKS5 (curl --socks5-hostname): the first answer reaches A; after the rebinding REP 2, B never reached', async () => {
  const name = 'rebind-socks.test';
  const first = await curl(['--socks5-hostname', socks, `http://${name}:${a.port}/`]);
  assert.equal(first.stdout, 'A', first.stderr);
  assert.equal(dns.count(name, 'A'), 1);
  const second = await curl(['--socks5-hostname', socks, `http://${name}:${a.port}/`]);
  assert.notEqual(second.exit, 0);
  assert.match(second.stderr, /\(2\)|not allowed/, second.stderr);
  assert.equal(b.connections, 0, 'B, on loopback, was never connected to');
});

test('a name answering [127.0.0.1, 127.0.0.2]: every request reaches A only, over each way in', async () => {
  const before = a.connections;
  for (let i = 0; i < 3; i++) {
    const get = await curl(['-x', proxy, '-H', 'Connection: close', `http://both.test:${a.port}/${i}`]);
    assert.equal(get.stdout, 'A', get.stderr);
    const tunnel = await curl(['-p', '-x', proxy, `http://both.test:${a.port}/${i}`]);
    assert.equal(tunnel.stdout, 'A', tunnel.stderr);
    const viaSocks = await curl(['--socks5-hostname', socks, `http://both.test:${a.port}/${i}`]);
    assert.equal(viaSocks.stdout, 'A', viaSocks.stderr);
  }
  assert.ok(a.connections > before);
  assert.equal(b.connections, 0, 'B, on loopback, was never connected to');
});
