/**
 * Layer 4 (`protocol: tcp`) through the real gateway: real clients (psql to the local PostgreSQL,
 * node-redis to two redis-server processes the test starts), balancing, connect retry, half-close,
 * idle timeout, connection caps, and draining on reload.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { startGateway, type Gateway } from '../../src/index.ts';
import { closedPort } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';

const run = promisify(execFile);

/** A TCP origin: greets with its name, then echoes; on the client's FIN it writes "bye NAME" and ends. */
interface TcpOrigin {
  name: string;
  url: string;
  accepted: number;
  close(): Promise<void>;
}

async function tcpOrigin(name: string): Promise<TcpOrigin> {
  const sockets = new Set<Socket>();
  const origin: TcpOrigin = { name, url: '', accepted: 0, close: async () => undefined };
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    origin.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.write(`hello ${name}\n`);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end(`bye ${name}\n`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin.url = `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
  origin.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return origin;
}

/** A client connection that collects what it receives. */
interface Conn {
  socket: Socket;
  received(): string;
  /** Resolves once the received text contains `text`. */
  until(text: string): Promise<void>;
  closed: Promise<void>;
}

function connect(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let data = '';
    const waiters: Array<() => void> = [];
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      for (const w of waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
    // The gateway ending or cutting the connection shows as 'end' (its FIN) or 'close'.
    const closed = new Promise<void>((r) => {
      const done = (): void => {
        r();
        for (const w of waiters.splice(0)) w();
      };
      socket.once('end', done);
      socket.once('close', done);
    });
    const until = (text: string): Promise<void> =>
      guard(
        new Promise<void>((r, j) => {
          const check = (): void => {
            if (data.includes(text)) r();
            else if (socket.destroyed || socket.readableEnded) j(new Error(`closed before "${text}"; got ${JSON.stringify(data)}`));
            else waiters.push(check);
          };
          check();
        }),
        `"${text}" from the tcp listener`,
        5000,
      );
    socket.once('connect', () => resolve({ socket, received: () => data, until, closed }));
    socket.once('error', reject);
  });
}

function tcpConfig(endpoints: string[], extra: { listener?: object; upstream?: object } = {}): object {
  return {
    listeners: { db: { address: '127.0.0.1:0', protocol: 'tcp', upstream: 'pool', ...extra.listener } },
    upstreams: { pool: { balancer: 'round-robin', endpoints: endpoints.map((url) => ({ url })), ...extra.upstream } },
    drainTimeout: '5s',
  };
}

async function start(config: object): Promise<{ gw: Gateway; port: number }> {
  const gw = await startGateway({ config, accessLog: 'off', logLevel: 'silent' });
  return { gw, port: gw.address('db').port };
}

let a: TcpOrigin;
let b: TcpOrigin;

before(async () => {
  [a, b] = await Promise.all([tcpOrigin('a'), tcpOrigin('b')]);
});

after(async () => {
  await Promise.all([a.close(), b.close()]);
});

test('connections are balanced round robin over the endpoints, bytes both ways untouched', async () => {
  const { gw, port } = await start(tcpConfig([a.url, b.url]));
  try {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      await c.until('hello ');
      names.push(c.received().trim().slice(6));
      c.socket.write('ping \u00ff\n');
      await c.until('ping \u00ff\n');
      c.socket.destroy();
    }
    assert.deepEqual([...names].sort(), ['a', 'a', 'b', 'b']);
    assert.notEqual(names[0], names[1]);
  } finally {
    await gw.stop();
  }
});

test("half-close: the client's FIN reaches the endpoint, whose answer still comes back", async () => {
  const { gw, port } = await start(tcpConfig([a.url]));
  try {
    const c = await connect(port);
    await c.until('hello a');
    c.socket.end('last words\n');
    await c.until('bye a');
    assert.match(c.received(), /last words\nbye a\n$/);
    await guard(c.closed, 'the connection to close after both FINs');
  } finally {
    await gw.stop();
  }
});

test('a refused endpoint is retried on another (nothing was sent); with none left the client is closed', async () => {
  const dead = `tcp://127.0.0.1:${await closedPort()}`;
  const { gw, port } = await start(tcpConfig([dead, a.url], { upstream: { outlierDetection: { consecutiveFailures: 0 } } }));
  try {
    for (let i = 0; i < 2; i++) {
      const c = await connect(port);
      await c.until('hello a');
      c.socket.destroy();
    }
  } finally {
    await gw.stop();
  }
  const none = await start(tcpConfig([dead]));
  try {
    const c = await connect(none.port);
    await guard(c.closed, 'the connection to close when no endpoint answers');
    assert.equal(c.received(), '');
  } finally {
    await none.gw.stop();
  }
});

test('a silent connection is closed after timeouts.tunnelIdle', async () => {
  const { gw, port } = await start(tcpConfig([a.url], { upstream: { timeouts: { tunnelIdle: '200ms' } } }));
  try {
    const c = await connect(port);
    await c.until('hello a');
    await guard(c.closed, 'the idle connection to close', 3000);
  } finally {
    await gw.stop();
  }
});

test('maxConnections and maxConnectionsPerClient: connections over the cap are closed at once', async () => {
  const { gw, port } = await start(tcpConfig([a.url], { listener: { maxConnectionsPerClient: 2 } }));
  try {
    const c1 = await connect(port);
    const c2 = await connect(port);
    await Promise.all([c1.until('hello a'), c2.until('hello a')]);
    const c3 = await connect(port);
    await guard(c3.closed, 'the third connection to be closed');
    assert.equal(c3.received(), '');
    c1.socket.destroy();
    c2.socket.destroy();
  } finally {
    await gw.stop();
  }
});

test('reload: open connections stay on the old endpoint, new ones follow the new config; stop cuts after the drain', async () => {
  const { gw, port } = await start(tcpConfig([a.url]));
  try {
    const old = await connect(port);
    await old.until('hello a');
    assert.equal((await gw.reload(tcpConfig([b.url]))).ok, true);
    const fresh = await connect(port);
    await fresh.until('hello b');
    old.socket.write('still here\n');
    await old.until('still here\n');
    fresh.socket.destroy();
    await gw.stop({ drainTimeout: 100 });
    await guard(old.closed, 'the old connection to be cut at the drain deadline');
  } finally {
    await gw.stop();
  }
});

test('endpoints that fail their TCP health check get no connections', async () => {
  const dead = `tcp://127.0.0.1:${await closedPort()}`;
  const { endpointEvent } = await import('./helpers/endpoint-events.ts');
  const down = endpointEvent((e) => e.upstream === 'pool' && e.endpoint === dead && !e.healthy, 'the dead endpoint to be marked down');
  // A timeout far above the interval: with fall 1, one check of a that a loaded machine delayed past a
  // short timeout would take the live endpoint out too. The dead one refuses at once.
  const { gw, port } = await start(
    tcpConfig([dead, a.url], { upstream: { healthCheck: { type: 'tcp', interval: '50ms', timeout: '2s', fall: 1, rise: 1 }, retries: { attempts: 1 } } }),
  );
  try {
    await down;
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      await c.until('hello a');
      c.socket.destroy();
    }
  } finally {
    await gw.stop();
  }
});

test('psql through a tcp listener to the local PostgreSQL runs a real query', async (t) => {
  const direct = await run('psql', ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', 'postgres', '-tAc', 'select 1']).catch(() => undefined);
  if (direct === undefined) return t.skip('no PostgreSQL on 127.0.0.1:5432');
  const { gw, port } = await start(tcpConfig(['tcp://127.0.0.1:5432'], { upstream: { balancer: 'least-connections' } }));
  try {
    const { stdout } = await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-tAc', "select 'through switchboard', 6 * 7"]);
    assert.equal(stdout.trim(), 'through switchboard|42');
  } finally {
    await gw.stop();
  }
});

/** A redis-server of the test's own, on a free port, nothing on disk. */
async function redisServer(): Promise<{ port: number; proc: ChildProcess; stop(): Promise<void> }> {
  const port = await closedPort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await guard(
    new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
    }),
    'redis-server to start',
    10_000,
  );
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  return { port, proc, stop };
}

test('a Redis client through a tcp listener to two redis servers, balanced', async (t) => {
  const servers = await Promise.all([redisServer(), redisServer()]).catch((err: Error) => err);
  if (servers instanceof Error) return t.skip(`redis-server unavailable: ${servers.message}`);
  const { gw, port } = await start(tcpConfig(servers.map((s) => `tcp://127.0.0.1:${s.port}`)));
  try {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const client = createClient({ socket: { host: '127.0.0.1', port } });
      await client.connect();
      await client.set('through', `switchboard ${i}`);
      assert.equal(await client.get('through'), `switchboard ${i}`);
      ids.push(JSON.stringify(await client.configGet('port')));
      await client.quit();
    }
    assert.notEqual(ids[0], ids[1], 'the two connections reached different servers');
  } finally {
    await gw.stop();
    await Promise.all(servers.map((s) => s.stop()));
  }
});

test('protocol tls: TLS is terminated with the certificate for the SNI name, plain TCP goes on to the endpoint', async () => {
  const { createPki } = await import('./helpers/certs.ts');
  const tls = await import('node:tls');
  const pki = await createPki();
  try {
    const [site, other] = await Promise.all([pki.issue({ names: ['db.test'] }), pki.issue({ names: ['*.other.test'] })]);
    const gw = await startGateway({
      config: tcpConfig([a.url], {
        listener: {
          protocol: 'tls',
          tls: {
            certificates: [
              { cert: site.certFile, key: site.keyFile },
              { cert: other.certFile, key: other.keyFile },
            ],
          },
        },
      }),
      accessLog: 'off',
      logLevel: 'silent',
    });
    try {
      const port = gw.address('db').port;
      for (const [servername, expected] of [
        ['db.test', /DNS:db\.test/],
        ['x.other.test', /DNS:\*\.other\.test/],
      ] as const) {
        const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: pki.ca.cert });
        let data = '';
        socket.on('data', (d: Buffer) => (data += d.toString()));
        await guard(
          new Promise((resolve, reject) => {
            socket.once('secureConnect', resolve);
            socket.once('error', reject);
          }),
          'the TLS handshake',
        );
        assert.match(socket.getPeerX509Certificate()!.subjectAltName!, expected);
        socket.end('over tls\n');
        await guard(new Promise((resolve) => socket.once('end', resolve)), 'the endpoint to answer and end');
        assert.equal(data, 'hello a\nover tls\nbye a\n');
        socket.destroy();
      }
    } finally {
      await gw.stop();
    }
  } finally {
    await pki.cleanup();
  }
});

/** A TCP origin that reads a PROXY header (v1 or v2) and answers with the client address it names. */
async function proxyAwareOrigin(): Promise<{ url: string; close(): Promise<void> }> {
  const { parseProxyHeader } = await import('../../src/transport/proxy-protocol.ts');
  const server = net.createServer((s) => {
    let seen = Buffer.alloc(0);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      seen = Buffer.concat([seen, d]);
      const r = parseProxyHeader(seen);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'invalid') return void s.end(`invalid: ${r.reason}\n`);
      s.end(`v${r.version} from ${r.addresses.sourceAddress}:${r.addresses.sourcePort} then ${JSON.stringify(seen.subarray(r.headerLength).toString())}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('PROXY protocol: v1 and v2 accepted from trusted peers; the client address is sent on in v1 or v2', async () => {
  const { encodeProxyV2 } = await import('../../src/transport/proxy-protocol.ts');
  const origin = await proxyAwareOrigin();
  try {
    for (const out of ['v1', 'v2'] as const) {
      const { gw, port } = await start(tcpConfig([origin.url], { listener: { proxyProtocol: { trusted: ['127.0.0.0/8'] } }, upstream: { proxyProtocol: out } }));
      try {
        const v1 = await connect(port);
        v1.socket.write('PROXY TCP4 203.0.113.7 192.0.2.1 40000 6379\r\nhello');
        await v1.until('\n');
        assert.equal(v1.received(), `${out} from 203.0.113.7:40000 then "hello"\n`);
        const v2 = await connect(port);
        v2.socket.write(
          Buffer.concat([
            encodeProxyV2({ family: 'tcp6', sourceAddress: '2001:db8::7', sourcePort: 41000, destinationAddress: '2001:db8::1', destinationPort: 6379 }),
            Buffer.from('hi'),
          ]),
        );
        await v2.until('\n');
        assert.equal(v2.received(), `${out} from 2001:db8::7:41000 then "hi"\n`);
        v1.socket.destroy();
        v2.socket.destroy();
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await origin.close();
  }
});

test('PROXY protocol: an untrusted peer, a malformed header or one too slow to arrive closes the connection', async () => {
  const accepted = a.accepted;
  const untrusted = await start(tcpConfig([a.url], { listener: { proxyProtocol: { trusted: ['10.0.0.0/8'] } } }));
  try {
    const c = await connect(untrusted.port);
    c.socket.write('PROXY TCP4 203.0.113.7 192.0.2.1 40000 6379\r\n');
    await guard(c.closed, 'an untrusted peer to be refused');
    assert.equal(c.received(), '');
  } finally {
    await untrusted.gw.stop();
  }
  const { gw, port } = await start(tcpConfig([a.url], { listener: { proxyProtocol: { trusted: ['127.0.0.1'], timeout: '200ms' } } }));
  try {
    const bad = await connect(port);
    bad.socket.write('PROXY TCP4 999.0.0.1 192.0.2.1 40000 6379\r\n');
    await guard(bad.closed, 'a malformed header to close the connection');
    assert.equal(bad.received(), '');
    const slow = await connect(port);
    slow.socket.write('PROXY TCP4 203.0.');
    await guard(slow.closed, 'a header that never completes to close the connection', 3000);
    assert.equal(slow.received(), '');
    assert.equal(a.accepted, accepted, 'no refused connection ever reached the endpoint');
  } finally {
    await gw.stop();
  }
});

test('PROXY protocol on http and https listeners: the real client address reaches the forwarding headers', async () => {
  const { startOrigin } = await import('./helpers/origin.ts');
  const { createPki } = await import('./helpers/certs.ts');
  const tls = await import('node:tls');
  const origin = await startOrigin('o');
  const pki = await createPki();
  const site = await pki.issue({ names: ['site.test'] });
  const gw = await startGateway({
    config: {
      listeners: {
        web: { address: '127.0.0.1:0', protocol: 'http', proxyProtocol: { trusted: ['127.0.0.1'] } },
        secure: {
          address: '127.0.0.1:0',
          protocol: 'https',
          proxyProtocol: { trusted: ['127.0.0.1'] },
          tls: { certificates: [{ cert: site.certFile, key: site.keyFile }] },
        },
      },
      routes: { all: { upstream: 'o' } },
      upstreams: { o: { endpoints: [{ url: origin.url }] } },
    },
    accessLog: 'off',
    logLevel: 'silent',
  });
  try {
    const plain = await connect(gw.address('web').port);
    plain.socket.write('PROXY TCP4 198.51.100.9 192.0.2.1 50000 80\r\nGET /pp HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n');
    await guard(plain.closed, 'the plain response');
    assert.match(plain.received(), /^HTTP\/1\.1 200/);
    assert.match(plain.received(), /"x-forwarded-for":"198\.51\.100\.9"/);

    const raw = net.connect({ host: '127.0.0.1', port: gw.address('secure').port });
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write('PROXY TCP4 198.51.100.10 192.0.2.1 50001 443\r\n');
    const secure = tls.connect({ socket: raw, servername: 'site.test', ca: pki.ca.cert });
    let body = '';
    secure.on('data', (d: Buffer) => (body += d.toString()));
    secure.write('GET /pps HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n');
    await guard(new Promise((resolve) => secure.once('end', resolve)), 'the https response');
    assert.match(body, /"x-forwarded-for":"198\.51\.100\.10"/);
    secure.destroy();
  } finally {
    await gw.stop();
    await origin.close();
    await pki.cleanup();
  }
});

test('HTTP health checks work for tcp:// endpoints that speak HTTP: a 503 on /healthz takes one out', async () => {
  const { startOrigin } = await import('./helpers/origin.ts');
  const { endpointEvent } = await import('./helpers/endpoint-events.ts');
  const sick = await startOrigin('sick', (req, res) => res.writeHead(req.url === '/healthz' ? 503 : 200).end('sick\n'));
  const well = await startOrigin('well', (_req, res) => res.writeHead(200).end('well\n'));
  const down = endpointEvent((e) => e.upstream === 'pool' && !e.healthy, 'the endpoint answering 503 to be marked down');
  // A timeout far above the interval: with fall 1, one check of the well endpoint that a loaded machine
  // delayed past a short timeout would mark it down (first, failing the assertion below).
  const { gw, port } = await start(
    tcpConfig([`tcp://127.0.0.1:${sick.port}`, `tcp://127.0.0.1:${well.port}`], {
      upstream: { healthCheck: { type: 'http', path: '/healthz', interval: '50ms', timeout: '2s', fall: 1, rise: 1 } },
    }),
  );
  try {
    const event = await down;
    assert.equal(event.endpoint, `tcp://127.0.0.1:${sick.port}`);
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      c.socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await c.until('well');
      c.socket.destroy();
    }
  } finally {
    await gw.stop();
    await Promise.all([sick.close(), well.close()]);
  }
});
