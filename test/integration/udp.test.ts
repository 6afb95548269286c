/**
 * `protocol: udp` through the real gateway with real dgram sockets: session affinity, balancing of
 * new sessions, replies to the right client, idle expiry, the session cap, health checks, reload,
 * and an endpoint that refuses (ICMP port unreachable).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import diagnostics from 'node:diagnostics_channel';
import net, { type AddressInfo } from 'node:net';
import { startGateway, type Gateway } from '../../src/index.ts';
import type { UdpSessionEvent } from '../../src/listeners/udp-listener.ts';
import { guard } from './helpers/guard.ts';

/** A DNS-like origin: answers each datagram with `NAME:payload`; remembers the payloads it saw. */
interface UdpOrigin {
  name: string;
  url: string;
  port: number;
  seen: string[];
  close(): Promise<void>;
}

async function udpOrigin(name: string, port = 0): Promise<UdpOrigin> {
  const socket = dgram.createSocket('udp4');
  const origin: UdpOrigin = { name, url: '', port: 0, seen: [], close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
  socket.on('message', (msg, rinfo) => {
    origin.seen.push(msg.toString());
    socket.send(`${name}:${msg.toString()}`, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', resolve);
  });
  origin.port = (socket.address() as AddressInfo).port;
  origin.url = `udp://127.0.0.1:${origin.port}`;
  return origin;
}

/** A client socket; `ask` sends one datagram and resolves with the next reply. */
interface Client {
  socket: dgram.Socket;
  /** `127.0.0.1:port`, as the gateway names it in session events. */
  id: string;
  ask(text: string): Promise<string>;
  send(text: string): void;
  /** The next reply. */
  next(): Promise<string>;
}

async function client(port: number): Promise<Client> {
  const socket = dgram.createSocket('udp4');
  const replies: string[] = [];
  const waiting: Array<(r: string) => void> = [];
  socket.on('message', (m) => {
    const w = waiting.shift();
    if (w) w(m.toString());
    else replies.push(m.toString());
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const next = (): Promise<string> =>
    guard(new Promise<string>((resolve) => (replies.length ? resolve(replies.shift()!) : waiting.push(resolve))), 'a reply through the udp listener');
  const send = (text: string): void => socket.send(text, port, '127.0.0.1');
  const ask = (text: string): Promise<string> => {
    send(text);
    return next();
  };
  return { socket, id: `127.0.0.1:${(socket.address() as AddressInfo).port}`, next, send, ask };
}

/** Resolves with the first session event matching `when` (or fails after `ms`). */
function sessionEvent(when: (e: UdpSessionEvent) => boolean, what: string, ms = 3000): Promise<UdpSessionEvent> {
  const channel = diagnostics.channel('switchboard:udp:session');
  let listener: ((m: unknown) => void) | undefined;
  const seen = new Promise<UdpSessionEvent>((resolve) => {
    listener = (m) => void (when(m as UdpSessionEvent) && resolve(m as UdpSessionEvent));
    channel.subscribe(listener);
  });
  return guard(seen, what, ms).finally(() => channel.unsubscribe(listener!));
}

/** Every session event while `fn` runs. */
async function recording<T>(fn: (events: UdpSessionEvent[]) => Promise<T>): Promise<T> {
  const channel = diagnostics.channel('switchboard:udp:session');
  const events: UdpSessionEvent[] = [];
  const listener = (m: unknown): void => void events.push(m as UdpSessionEvent);
  channel.subscribe(listener);
  try {
    return await fn(events);
  } finally {
    channel.unsubscribe(listener);
  }
}

function udpConfig(endpoints: string[], extra: { listener?: object; upstream?: object } = {}): object {
  return {
    listeners: { dns: { address: '127.0.0.1:0', protocol: 'udp', upstream: 'resolvers', ...extra.listener } },
    upstreams: { resolvers: { balancer: 'round-robin', endpoints: endpoints.map((url) => ({ url })), ...extra.upstream } },
    drainTimeout: '5s',
  };
}

async function start(config: object): Promise<{ gw: Gateway; port: number }> {
  const gw = await startGateway({ config, accessLog: 'off', logLevel: 'silent' });
  return { gw, port: gw.address('dns').port };
}

const clients: Client[] = [];
async function newClient(port: number): Promise<Client> {
  const c = await client(port);
  clients.push(c);
  return c;
}

let a: UdpOrigin;
let b: UdpOrigin;

before(async () => {
  [a, b] = await Promise.all([udpOrigin('a'), udpOrigin('b')]);
});

after(async () => {
  for (const c of clients) c.socket.close();
  await Promise.all([a.close(), b.close()]);
});

test('each client keeps one endpoint for its session; new sessions are balanced round robin', async () => {
  const { gw, port } = await start(udpConfig([a.url, b.url]));
  try {
    const owners: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await newClient(port);
      const first = await c.ask(`q${i}-0`);
      const owner = first.split(':')[0];
      assert.equal(first, `${owner}:q${i}-0`);
      for (let j = 1; j < 3; j++) assert.equal(await c.ask(`q${i}-${j}`), `${owner}:q${i}-${j}`);
      owners.push(owner);
    }
    assert.ok(owners.join() === 'a,b,a,b' || owners.join() === 'b,a,b,a', `sessions alternate: ${owners.join()}`);
  } finally {
    await gw.stop();
  }
});

test('replies go back to the client that asked, with clients interleaved', async () => {
  const { gw, port } = await start(udpConfig([a.url]));
  try {
    const [one, two] = [await newClient(port), await newClient(port)];
    one.send('one-1');
    two.send('two-1');
    one.send('one-2');
    two.send('two-2');
    assert.deepEqual([await one.next(), await one.next()], ['a:one-1', 'a:one-2']);
    assert.deepEqual([await two.next(), await two.next()], ['a:two-1', 'a:two-2']);
  } finally {
    await gw.stop();
  }
});

test('a session silent for sessionIdle ends; the next datagram starts a new one, balanced again', async () => {
  const { gw, port } = await start(udpConfig([a.url, b.url], { listener: { udp: { sessionIdle: '200ms' } } }));
  try {
    const c = await newClient(port);
    const first = (await c.ask('x')).split(':')[0];
    await sessionEvent((e) => e.client === c.id && e.event === 'close' && e.reason === 'idle', 'the idle session to end');
    const second = (await c.ask('y')).split(':')[0];
    assert.notEqual(second, first, 'round robin gives the new session the other endpoint');
  } finally {
    await gw.stop();
  }
});

test('over maxSessions a new client gets no session (its datagrams are dropped); existing sessions go on', async () => {
  const { gw, port } = await start(udpConfig([a.url], { listener: { udp: { maxSessions: 2 } } }));
  try {
    await recording(async (events) => {
      const [one, two, three] = [await newClient(port), await newClient(port), await newClient(port)];
      assert.equal(await one.ask('one'), 'a:one');
      assert.equal(await two.ask('two'), 'a:two');
      three.send('three');
      // Datagrams to one socket are read in order: by this reply, "three" was handled (dropped).
      assert.equal(await one.ask('one-again'), 'a:one-again');
      assert.deepEqual(
        events.filter((e) => e.event === 'open').map((e) => e.client),
        [one.id, two.id],
      );
      assert.ok(!a.seen.includes('three'), 'the endpoint never saw the third client');
    });
  } finally {
    await gw.stop();
  }
});

test('an endpoint failing its TCP health check gets no sessions', async () => {
  // The healthy one also listens on TCP at its UDP port (as a DNS server does); the other does not.
  const tcp = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const h = await udpOrigin('h', (tcp.address() as AddressInfo).port); // that UDP port is rarely taken
  const { endpointEvent } = await import('./helpers/endpoint-events.ts');
  const down = endpointEvent((e) => e.upstream === 'resolvers' && e.endpoint === b.url && !e.healthy, 'b to be marked down');
  // A timeout far above the interval: with fall 1, one check of h a loaded machine delayed past a short
  // timeout would take the healthy endpoint out too. b refuses at once.
  const { gw, port } = await start(udpConfig([h.url, b.url], { upstream: { healthCheck: { type: 'tcp', interval: '50ms', timeout: '2s', fall: 1, rise: 1 } } }));
  try {
    await down;
    for (let i = 0; i < 4; i++) assert.equal(await (await newClient(port)).ask(`h${i}`), `h:h${i}`);
  } finally {
    await gw.stop();
    await Promise.all([h.close(), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
  }
});

test('reload: a session keeps its endpoint, new sessions follow the new config', async () => {
  const { gw, port } = await start(udpConfig([a.url]));
  try {
    const old = await newClient(port);
    assert.equal(await old.ask('before'), 'a:before');
    assert.deepEqual((await gw.reload(udpConfig([b.url]))).errors, []);
    assert.equal(gw.address('dns').port, port, 'the same socket serves on');
    assert.equal(await old.ask('after'), 'a:after');
    assert.equal(await (await newClient(port)).ask('new'), 'b:new');
  } finally {
    await gw.stop();
  }
});

test('an endpoint that refuses (ICMP port unreachable) ends the session', async () => {
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
  const dead = `udp://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const { gw, port } = await start(udpConfig([dead]));
  try {
    const c = await newClient(port);
    const ended = sessionEvent((e) => e.client === c.id && e.event === 'close', 'the refused session to end');
    c.send('anyone?');
    assert.equal((await ended).reason, 'error');
  } finally {
    await gw.stop();
  }
});
