/**
 * The SOCKS5 listener (`protocol: socks5`, RFC 1928/1929) through the real gateway: curl with
 * `--socks5-hostname` and `--socks5` (and `-U` credentials) to an HTTP origin on 127.0.0.1 that a
 * rule allows; raw sockets for the handshake byte by byte, malformed and truncated messages,
 * unsupported commands and address types; UDP ASSOCIATE with a raw UDP client and a UDP echo
 * origin. The credentials are a consumer's and an htpasswd file's, as basic-auth checks them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { startGateway, type Gateway } from '../../src/index.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { samples, total } from './helpers/metrics.ts';
import type { SocksConnectionEvent } from '../../src/observability/events.ts';

const run = promisify(execFile);

let dir: string;
let origin: Origin;
let gw: Gateway;
let port: number;
let openPort: number;
let deniedPort: number;
let udpEcho: dgram.Socket;
let udpEchoPort: number;
/** Datagrams the UDP echo origin received. */
let echoed = 0;
const ended: SocksConnectionEvent[] = [];
const endWaiters: Array<() => void> = [];
const onEnded = (m: unknown): void => {
  ended.push(m as SocksConnectionEvent);
  for (const w of endWaiters.splice(0)) w();
};

/** Resolves once a connection of `listener` has ended with `outcome`. */
function endedWith(listener: string, outcome: string): Promise<void> {
  const found = (): boolean => ended.some((e) => e.listener === listener && e.outcome === outcome);
  return guard(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (found()) resolve();
        else endWaiters.push(check);
      };
      check();
    }),
    `a ${outcome} connection of ${listener} to end`,
  );
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'socks5-'));
  writeFileSync(join(dir, 'users.htpasswd'), `bob:${bcrypt.hashSync('builder', 4).replace(/^\$2b\$/, '$2y$')}\n`);
  origin = await startOrigin('o1');
  deniedPort = await closedPort();
  udpEcho = dgram.createSocket('udp4');
  udpEcho.on('message', (msg, from) => {
    echoed++;
    udpEcho.send(Buffer.concat([Buffer.from('echo:'), msg]), from.port, from.address);
  });
  await new Promise<void>((resolve) => udpEcho.bind(0, '127.0.0.1', resolve));
  udpEchoPort = (udpEcho.address() as AddressInfo).port;
  diagnostics.subscribe('switchboard:socks:connection', onEnded);
  const rules = [
    { name: 'no-closed-port', action: 'deny', ports: [deniedPort] },
    { name: 'local', action: 'allow', destinations: ['127.0.0.0/8', '::1/128'] },
  ];
  gw = await startGateway({
    config: {
      listeners: {
        socks: { address: '127.0.0.1:0', protocol: 'socks5', policies: ['staff', 'files'], headerTimeout: '400ms', forward: { rules, tunnelIdleTimeout: '2s' } },
        open: { address: '127.0.0.1:0', protocol: 'socks5', forward: { rules, tunnelIdleTimeout: '300ms' } },
      },
      consumers: { alice: { groups: ['staff'], credentials: [{ type: 'basic', username: 'alice', password: bcrypt.hashSync('wonderland', 4) }] } },
      policies: { staff: { type: 'basic-auth' }, files: { type: 'basic-auth', htpasswd: join(dir, 'users.htpasswd') } },
    },
    accessLog: join(dir, 'access.log'),
    logLevel: 'silent',
  });
  port = gw.address('socks').port;
  openPort = gw.address('open').port;
});

after(async () => {
  await gw?.stop({ drainTimeout: 500 });
  diagnostics.unsubscribe('switchboard:socks:connection', onEnded);
  await origin?.close();
  udpEcho?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** curl through the proxy; resolves with the exit code, stdout and stderr (never rejects). */
async function curl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run('curl', ['-sS', '--max-time', '10', ...args]);
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout, err: err.stderr };
  }
}

/** A raw client connection: write bytes, read exactly n bytes, see it close. */
interface Raw {
  socket: net.Socket;
  read(n: number): Promise<Buffer>;
  /** Everything still to come, until the gateway closes the connection. */
  rest(): Promise<Buffer>;
  closed: Promise<void>;
}

function raw(to: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: to, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    let waiter: (() => void) | undefined;
    let ended = false;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      waiter?.();
    });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) =>
      socket.once('close', () => {
        ended = true;
        waiter?.();
        r();
      }),
    );
    const read = (n: number): Promise<Buffer> =>
      guard(
        new Promise<Buffer>((res, rej) => {
          const check = (): void => {
            if (buf.length >= n) {
              waiter = undefined;
              const out = buf.subarray(0, n);
              buf = buf.subarray(n);
              res(out);
            } else if (ended) rej(new Error(`closed after ${buf.length} of ${n} bytes`));
            else waiter = check;
          };
          check();
        }),
        `${n} bytes from the proxy`,
      );
    const rest = async (): Promise<Buffer> => {
      await guard(closed, 'the proxy to close the connection');
      return buf;
    };
    socket.once('connect', () => resolve({ socket, read, rest, closed }));
    socket.once('error', reject);
  });
}

const hello = Buffer.from([5, 1, 2]);
function credentials(user: string, password: string): Buffer {
  const u = Buffer.from(user);
  const p = Buffer.from(password);
  return Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]);
}
function connectIPv4(host: string, to: number, cmd = 1): Buffer {
  const b = Buffer.from([5, cmd, 0, 1, ...host.split('.').map(Number), 0, 0]);
  b.writeUInt16BE(to, 8);
  return b;
}
function connectName(name: string, to: number): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.concat([Buffer.from([5, 1, 0, 3, n.length]), n, Buffer.alloc(2)]);
  b.writeUInt16BE(to, b.length - 2);
  return b;
}

/** Greets, authenticates as alice and checks both answers. */
async function loggedIn(): Promise<Raw> {
  const c = await raw(port);
  c.socket.write(Buffer.concat([hello, credentials('alice', 'wonderland')]));
  assert.deepEqual([...(await c.read(2))], [5, 2]);
  assert.deepEqual([...(await c.read(2))], [1, 0]);
  return c;
}

test('curl --socks5-hostname and --socks5 with -U reach the origin (consumer and htpasswd credentials)', async () => {
  const byName = await curl(['--socks5-hostname', `127.0.0.1:${port}`, '-U', 'alice:wonderland', `http://localhost:${origin.port}/by-name`]);
  assert.equal(byName.code, 0, byName.err);
  assert.equal(JSON.parse(byName.out).url, '/by-name');
  const local = await curl(['--socks5', `127.0.0.1:${port}`, '--proxy-user', 'bob:builder', `http://127.0.0.1:${origin.port}/local`]);
  assert.equal(local.code, 0, local.err);
  assert.equal(JSON.parse(local.out).origin, 'o1');
  assert.equal(origin.seen.at(-1)?.url, '/local');
});

test('a wrong password is refused by the RFC 1929 status; no credentials where they are required: no acceptable method', async () => {
  const wrong = await curl(['--socks5-hostname', `127.0.0.1:${port}`, '-U', 'alice:nope', `http://127.0.0.1:${origin.port}/`]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.err, /rejected|authentication|SOCKS5/i);
  const none = await curl(['--socks5-hostname', `127.0.0.1:${port}`, `http://127.0.0.1:${origin.port}/`]);
  assert.notEqual(none.code, 0);
  assert.match(none.err, /No authentication method was acceptable|authentication/i);

  const c = await raw(port);
  c.socket.write(Buffer.concat([hello, credentials('alice', 'wonderlanD')]));
  assert.deepEqual([...(await c.read(2))], [5, 2]);
  assert.deepEqual([...(await c.rest())], [1, 1], 'status 1, then the close');
  const n = await raw(port);
  n.socket.write(Buffer.from([5, 1, 0]));
  assert.deepEqual([...(await n.rest())], [5, 0xff]);
  await endedWith('socks', 'auth_failed');
  await endedWith('socks', 'auth_missing');
});

test('a listener without an authentication policy (loopback) offers method 0x00 only', async () => {
  const r = await curl(['--socks5-hostname', `127.0.0.1:${openPort}`, `http://127.0.0.1:${origin.port}/open`]);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).url, '/open');
  const c = await raw(openPort);
  c.socket.write(Buffer.from([5, 1, 2]));
  assert.deepEqual([...(await c.rest())], [5, 0xff], 'a client offering only username/password is not served');
});

test('forward.tunnelIdleTimeout closes a silent tunnel and a silent UDP association', async () => {
  const c = await raw(openPort);
  c.socket.write(Buffer.concat([Buffer.from([5, 1, 0]), connectIPv4('127.0.0.1', origin.port)]));
  assert.deepEqual([...(await c.read(2))], [5, 0]);
  assert.equal((await c.read(10))[1], 0);
  c.socket.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
  const started = performance.now();
  const answer = (await c.rest()).toString();
  assert.match(answer, /^HTTP\/1\.1 200/, 'answered, then the keep-alive connection was cut while idle');
  assert.ok(performance.now() - started >= 250);
  const u = await raw(openPort);
  u.socket.write(Buffer.concat([Buffer.from([5, 1, 0]), connectIPv4('0.0.0.0', 0, 3)]));
  assert.deepEqual([...(await u.read(2))], [5, 0]);
  assert.equal((await u.read(10))[1], 0);
  await guard(u.closed, 'the idle association to close its TCP connection');
});

test('the handshake delivered one byte at a time, then bytes both ways; BND.ADDR/PORT are the outgoing socket’s', async (t) => {
  const peers: number[] = [];
  const seen = (s: net.Socket): void => void peers.push(s.remotePort!);
  origin.server.on('connection', seen);
  t.after(() => origin.server.off('connection', seen));
  const c = await raw(port);
  const bytes = Buffer.concat([hello, credentials('alice', 'wonderland'), connectName('127.0.0.1', origin.port)]);
  for (const b of bytes) {
    c.socket.write(Buffer.from([b]));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.deepEqual([...(await c.read(4))], [5, 2, 1, 0]);
  const reply = await c.read(10);
  assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 0, 1]);
  assert.equal([...reply.subarray(4, 8)].join('.'), '127.0.0.1');
  const bound = reply.readUInt16BE(8);
  c.socket.write(`GET /bytes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const text = (await c.rest()).toString();
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.ok(text.includes('"url":"/bytes"'));
  assert.ok(peers.includes(bound), 'the origin saw a connection from BND.PORT');
});

test('CONNECT to an IPv6 address (ATYP 4)', async (t) => {
  const server = net.createServer((s) => s.end('v6 here'));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '::1', resolve);
    });
  } catch {
    return t.skip('no ::1 on this machine');
  }
  t.after(() => server.close());
  const c = await loggedIn();
  const req = Buffer.concat([Buffer.from([5, 1, 0, 4]), Buffer.alloc(15), Buffer.from([1]), Buffer.alloc(2)]);
  req.writeUInt16BE((server.address() as AddressInfo).port, 20);
  c.socket.write(req);
  const reply = await c.read(22);
  assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 0, 4]);
  assert.equal((await c.rest()).toString(), 'v6 here');
});

test('BIND gets REP 0x07, an unknown address type 0x08, a refused connection 0x05; the listener keeps serving', async () => {
  const bind = await loggedIn();
  bind.socket.write(connectIPv4('127.0.0.1', origin.port, 2));
  assert.equal((await bind.rest())[1], 0x07);
  const atyp = await loggedIn();
  atyp.socket.write(Buffer.from([5, 1, 0, 9, 1, 2, 3, 4, 0, 80]));
  assert.equal((await atyp.rest())[1], 0x08);
  const refused = await loggedIn();
  const closed = await closedPort();
  refused.socket.write(connectIPv4('127.0.0.1', closed));
  assert.equal((await refused.rest())[1], 0x05);
  await endedWith('socks', 'unsupported');
});

test('a denied destination gets REP 0x02 (and curl fails); the access log names the rule and the code', async () => {
  const r = await curl(['--socks5-hostname', `127.0.0.1:${port}`, '-U', 'alice:wonderland', `http://127.0.0.1:${deniedPort}/`]);
  assert.notEqual(r.code, 0);
  const c = await loggedIn();
  c.socket.write(connectIPv4('127.0.0.1', deniedPort));
  assert.equal((await c.rest())[1], 0x02);
  await endedWith('socks', 'denied');
});

test('malformed, truncated and stalled handshakes close the connection; nothing crashes', async () => {
  const cases: Array<[string, Buffer, number[]]> = [
    ['SOCKS4 version byte', Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]), []],
    ['no methods', Buffer.from([5, 0]), []],
    ['auth sub-negotiation version 2', Buffer.concat([hello, Buffer.from([2, 1, 97, 1, 97])]), [5, 2]],
    ['empty username', Buffer.concat([hello, Buffer.from([1, 0, 1, 97])]), [5, 2]],
    [
      'request version 4',
      Buffer.concat([hello, credentials('alice', 'wonderland'), Buffer.from([4, 1, 0, 1, 127, 0, 0, 1, 0, 80])]),
      [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0],
    ],
    [
      'non-zero reserved byte',
      Buffer.concat([hello, credentials('alice', 'wonderland'), Buffer.from([5, 1, 7, 1, 127, 0, 0, 1, 0, 80])]),
      [5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0],
    ],
    ['a name with a NUL', Buffer.concat([hello, credentials('alice', 'wonderland'), connectName('a\0b', 80)]), [5, 2, 1, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0]],
  ];
  for (const [what, bytes, answer] of cases) {
    const c = await raw(port);
    c.socket.write(bytes);
    assert.deepEqual([...(await c.rest())], answer, what);
  }
  // Truncated: half a greeting, then nothing: closed at headerTimeout (400ms).
  const stalled = await raw(port);
  stalled.socket.write(Buffer.from([5, 2, 0]));
  assert.deepEqual([...(await stalled.rest())], []);
  await endedWith('socks', 'timeout');
  // Truncated mid-request by the client itself.
  const cut = await loggedIn();
  cut.socket.end(Buffer.from([5, 1, 0, 3, 20, 97]));
  await cut.closed;
  await endedWith('socks', 'malformed');
  const after = await curl(['--socks5-hostname', `127.0.0.1:${port}`, '-U', 'alice:wonderland', `http://127.0.0.1:${origin.port}/still`]);
  assert.equal(after.code, 0, after.err);
});

/** A UDP client socket on 127.0.0.1 that collects what it receives. */
async function udpClient(): Promise<{ socket: dgram.Socket; port: number; next(): Promise<Buffer> }> {
  const socket = dgram.createSocket('udp4');
  const queue: Buffer[] = [];
  let waiter: (() => void) | undefined;
  socket.on('message', (m) => {
    queue.push(m);
    waiter?.();
  });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const next = (): Promise<Buffer> =>
    guard(
      new Promise<Buffer>((resolve) => {
        const check = (): void => {
          const m = queue.shift();
          if (m !== undefined) {
            waiter = undefined;
            resolve(m);
          } else waiter = check;
        };
        check();
      }),
      'a datagram',
    );
  return { socket, port: (socket.address() as AddressInfo).port, next };
}

function udpDatagram(to: number, data: string, frag = 0): Buffer {
  const b = Buffer.from([0, 0, frag, 1, 127, 0, 0, 1, 0, 0]);
  b.writeUInt16BE(to, 8);
  return Buffer.concat([b, Buffer.from(data)]);
}

test('UDP ASSOCIATE: a round trip to a UDP echo origin; other sources and fragments ignored; the association ends with its TCP connection', async () => {
  const client = await udpClient();
  const other = await udpClient();
  const c = await loggedIn();
  c.socket.write(connectIPv4('127.0.0.1', client.port, 3));
  const reply = await c.read(10);
  assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 0, 1]);
  assert.equal([...reply.subarray(4, 8)].join('.'), '127.0.0.1');
  const relay = reply.readUInt16BE(8);
  const before = echoed;

  client.socket.send(udpDatagram(udpEchoPort, 'ping'), relay, '127.0.0.1');
  const back = await client.next();
  assert.deepEqual([...back.subarray(0, 4)], [0, 0, 0, 1], 'RSV RSV FRAG ATYP');
  assert.equal([...back.subarray(4, 8)].join('.'), '127.0.0.1');
  assert.equal(back.readUInt16BE(8), udpEchoPort, 'the header names the source');
  assert.equal(back.subarray(10).toString(), 'echo:ping');

  other.socket.send(udpDatagram(udpEchoPort, 'intruder'), relay, '127.0.0.1');
  client.socket.send(udpDatagram(udpEchoPort, 'fragment', 1), relay, '127.0.0.1');
  client.socket.send(udpDatagram(udpEchoPort, 'pong'), relay, '127.0.0.1');
  assert.equal((await client.next()).subarray(10).toString(), 'echo:pong');
  assert.equal(echoed - before, 2, 'only ping and pong reached the origin (datagrams on one path keep their order)');

  c.socket.end();
  await endedWith('socks', 'udp');
  // The relay is closed: a connected UDP socket learns it from the ICMP port unreachable.
  client.socket.connect(relay, '127.0.0.1');
  await guard(
    new Promise<void>((resolve) => {
      client.socket.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') resolve();
      });
      client.socket.once('connect', () => client.socket.send('x'));
    }),
    'ECONNREFUSED from the closed relay',
  );
  client.socket.close();
  other.socket.close();
});

test('a reload swaps the credentials (and rules) for new connections; an open tunnel keeps going; metrics count outcomes and bytes', async (t) => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  t.after(() => echo.close());
  const echoPort = (echo.address() as AddressInfo).port;
  const config = (password: string): object => ({
    listeners: {
      reloaded: { address: '127.0.0.1:0', protocol: 'socks5', policies: ['staff'], forward: { rules: [{ action: 'allow', destinations: ['127.0.0.0/8'] }] } },
    },
    consumers: { alice: { credentials: [{ type: 'basic', username: 'alice', password: bcrypt.hashSync(password, 4) }] } },
    policies: { staff: { type: 'basic-auth' } },
  });
  const g = await startGateway({ config: config('one'), metrics: true, logLevel: 'silent' });
  t.after(() => g.stop({ drainTimeout: 500 }));
  const p = g.address('reloaded').port;
  const login = async (password: string): Promise<{ c: Raw; status: number }> => {
    const c = await raw(p);
    c.socket.write(Buffer.concat([hello, credentials('alice', password)]));
    assert.deepEqual([...(await c.read(2))], [5, 2]);
    return { c, status: (await c.read(2))[1] };
  };
  const { c: open, status } = await login('one');
  assert.equal(status, 0);
  open.socket.write(connectIPv4('127.0.0.1', echoPort));
  assert.equal((await open.read(10))[1], 0);
  open.socket.write('before');
  assert.equal((await open.read(6)).toString(), 'before');

  assert.equal((await g.reload(config('two'))).ok, true);
  open.socket.write('after reload');
  assert.equal((await open.read(12)).toString(), 'after reload', 'the tunnel of the old generation lives on');
  const old = await login('one');
  assert.equal(old.status, 1, 'the old password is refused by the new generation');
  await old.c.closed;
  const fresh = await login('two');
  assert.equal(fresh.status, 0);
  fresh.c.socket.destroy();
  await fresh.c.closed;
  open.socket.end();
  await open.closed;
  // Metrics subscribed after this test's subscriber: they have counted by the time it hears of the end.
  await endedWith('reloaded', 'connect');
  const m = samples((await g.metrics!.render(undefined)).body);
  assert.equal(total(m, 'switchboard_socks_connections_total', { listener: 'reloaded', outcome: 'auth_failed' }), 1);
  assert.equal(total(m, 'switchboard_socks_connections_total', { listener: 'reloaded', outcome: 'connect' }), 1);
  assert.equal(total(m, 'switchboard_socks_bytes_total', { listener: 'reloaded', direction: 'in' }), 18);
  assert.equal(total(m, 'switchboard_socks_bytes_total', { listener: 'reloaded', direction: 'out' }), 18);
});

test('the access log has one line per connection, with destination, rule and consumer', async () => {
  await gw.stop({ drainTimeout: 500 });
  const lines = readFileSync(join(dir, 'access.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const ok = lines.find((l) => l.protocol === 'socks5' && l.destination === `127.0.0.1:${origin.port}` && l.error === null && l.consumer === 'alice');
  assert.ok(ok, 'a tunnel by alice');
  assert.ok((ok.bytesOut as number) > 0);
  assert.ok(
    lines.some((l) => l.destination === `127.0.0.1:${udpEchoPort}` && l.error === null && (l.bytesIn as number) === 8),
    'the UDP association: its first destination, ping and pong',
  );
  assert.ok(lines.some((l) => l.error === 'AUTH_INVALID'));
  assert.ok(lines.some((l) => l.error === 'PROXY_AUTH_REQUIRED'));
  assert.ok(lines.some((l) => l.error === 'HEADER_TIMEOUT'));
  assert.ok(lines.some((l) => l.error === 'PORT_FORBIDDEN' || (l.rule === 'no-closed-port' && l.error !== null)));
});
