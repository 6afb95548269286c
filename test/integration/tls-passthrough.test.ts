/**
 * `protocol: tls-passthrough` through the real gateway: TLS origins with their own certificates,
 * clients routed by the server name of their ClientHello (exact, wildcard, fallback, none), the
 * bytes untouched (the client sees the origin's certificate and completes TLS with it), and the
 * connections closed on garbage, on a stalled ClientHello, and on an unknown name without fallback.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import { startGateway, type Gateway } from '../../src/index.ts';
import { createPki, type IssuedCert, type TestPki } from './helpers/certs.ts';
import { guard } from './helpers/guard.ts';

/** A TLS origin with its own certificate: answers each connection with `hello from NAME`, then ends. */
interface TlsOrigin {
  url: string;
  close(): Promise<void>;
}

async function tlsOrigin(name: string, cert: IssuedCert): Promise<TlsOrigin> {
  const sockets = new Set<Socket>();
  const server = tls.createServer({ cert: cert.cert, key: cert.key }, (s) => {
    s.on('error', () => undefined);
    s.end(`hello from ${name}\n`);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

let pki: TestPki;
const origins: Record<string, TlsOrigin> = {};

before(async () => {
  pki = await createPki();
  const a = await pki.issue({ names: ['a.example.test'] });
  const b = await pki.issue({ names: ['*.b.example.test'] });
  const fallback = await pki.issue({ names: ['fallback.example.test'] });
  origins.a1 = await tlsOrigin('a1', a);
  origins.a2 = await tlsOrigin('a2', a);
  origins.b = await tlsOrigin('b', b);
  origins.fallback = await tlsOrigin('fallback', fallback);
});

after(async () => {
  await Promise.all(Object.values(origins).map((o) => o.close()));
  await pki.cleanup();
});

function config(withFallback: boolean): object {
  return {
    listeners: {
      edge: {
        address: '127.0.0.1:0',
        protocol: 'tls-passthrough',
        sni: { 'a.example.test': 'site-a', '*.B.example.test': 'site-b' },
        ...(withFallback ? { upstream: 'fallback' } : {}),
        headerTimeout: '200ms',
      },
    },
    upstreams: {
      'site-a': { balancer: 'round-robin', endpoints: [{ url: origins.a1.url }, { url: origins.a2.url }] },
      'site-b': { endpoints: [{ url: origins.b.url }] },
      fallback: { endpoints: [{ url: origins.fallback.url }] },
    },
  };
}

async function start(withFallback = true): Promise<{ gw: Gateway; port: number }> {
  const gw = await startGateway({ config: config(withFallback), accessLog: 'off', logLevel: 'silent' });
  return { gw, port: gw.address('edge').port };
}

/** A TLS client through the gateway: the certificate it saw (its SAN, verified by the test CA) and the answer. */
function fetchOver(port: number, servername?: string): Promise<{ san: string; text: string }> {
  const p = new Promise<{ san: string; text: string }>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: pki.ca.cert, checkServerIdentity: () => undefined });
    let text = '';
    let san = '';
    socket.once('secureConnect', () => (san = socket.getPeerX509Certificate()?.subjectAltName ?? ''));
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.once('end', () => resolve({ san, text }));
    socket.once('error', reject);
  });
  return guard(p, `an answer for ${servername ?? 'no SNI'}`, 5000);
}

/** Resolves once a connection the gateway must refuse is closed; fails if TLS was completed. */
function closedBy(socket: Socket, what: string): Promise<void> {
  let secured = false;
  socket.once('secureConnect', () => (secured = true));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return guard(closed, `the gateway to close ${what}`, 5000).then(() => assert.equal(secured, false, `${what}: TLS completed`));
}

test('each server name reaches its upstream, bytes untouched (the origin certificate is the one seen)', async () => {
  const { gw, port } = await start();
  try {
    assert.deepEqual(await fetchOver(port, 'a.example.test'), { san: 'DNS:a.example.test', text: 'hello from a1\n' });
    assert.deepEqual(await fetchOver(port, 'shop.b.example.test'), { san: 'DNS:*.b.example.test', text: 'hello from b\n' });
    assert.equal((await fetchOver(port, 'A.Example.TEST')).san, 'DNS:a.example.test', 'names are not case-sensitive');
  } finally {
    await gw.stop({ drainTimeout: 0 });
  }
});

test('an unknown name, a name two labels under a wildcard, and no SNI at all go to the fallback upstream', async () => {
  const { gw, port } = await start();
  try {
    const fallback = { san: 'DNS:fallback.example.test', text: 'hello from fallback\n' };
    assert.deepEqual(await fetchOver(port, 'unknown.example.test'), fallback);
    assert.deepEqual(await fetchOver(port, 'x.shop.b.example.test'), fallback);
    assert.deepEqual(await fetchOver(port, 'b.example.test'), fallback);
    assert.deepEqual(await fetchOver(port), fallback);
  } finally {
    await gw.stop({ drainTimeout: 0 });
  }
});

test('without a fallback upstream, an unknown name or no SNI is closed; known names still pass', async () => {
  const { gw, port } = await start(false);
  try {
    await closedBy(tls.connect({ host: '127.0.0.1', port, servername: 'unknown.example.test', ca: pki.ca.cert }), 'an unknown name');
    await closedBy(tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert }), 'a ClientHello without SNI');
    assert.equal((await fetchOver(port, 'a.example.test')).san, 'DNS:a.example.test');
  } finally {
    await gw.stop({ drainTimeout: 0 });
  }
});

test('connections of one server name are balanced over its upstream endpoints', async () => {
  const { gw, port } = await start();
  try {
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push((await fetchOver(port, 'a.example.test')).text.trim());
    assert.deepEqual(answers.sort(), ['hello from a1', 'hello from a1', 'hello from a2', 'hello from a2']);
  } finally {
    await gw.stop({ drainTimeout: 0 });
  }
});

test('bytes that are not a ClientHello close the connection', async () => {
  const { gw, port } = await start();
  try {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.write('GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n');
    await closedBy(socket, 'an HTTP request');
  } finally {
    await gw.stop({ drainTimeout: 0 });
  }
});

test('a client that sends half a ClientHello and stalls is closed after headerTimeout', async () => {
  const { gw, port } = await start();
  try {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // A handshake record announcing 512 bytes of ClientHello, of which 10 come: a valid beginning
    // (client-hello.test.ts: every prefix is incomplete), so only the headerTimeout can close it.
    socket.write(Buffer.from([22, 3, 1, 2, 0, 1, 0, 1, 252, 3, 3, 0, 0, 0, 0]));
    await closedBy(socket, 'a stalled ClientHello');
  } finally {
    await gw.stop({ drainTimeout: 0 });
  }
});
