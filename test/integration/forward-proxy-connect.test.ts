/**
 * CONNECT tunnels through a forward listener (issue 15 §1, §4): HTTP/1.1 CONNECT with curl
 * --proxytunnel to a TLS origin, undici's ProxyAgent (tunnelling http:// and https://), Node 24's
 * fetch with NODE_USE_ENV_PROXY in a child process, raw sockets (bytes both ways, half-close, a
 * refused connect), CONNECT over an HTTP/2 connection to the proxy (RFC 9113 §8.5, h2c prior
 * knowledge), and the tunnel idle timeout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import type http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { createPki, type TestPki } from './helpers/certs.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { connectH2 } from './helpers/h2-client.ts';
import { echo, startOrigin, type Origin } from './helpers/origin.ts';
import { connect } from './helpers/raw.ts';
import { until } from './helpers/websocket.ts';
import type { AccessRecord } from '../../src/observability/access-log.ts';
import { forwardConfig } from './helpers/forward.ts';

const run = promisify(execFile);

/** A TCP server that echoes every byte, upper-cased, and ends when the client ends. */
async function startTcpEcho(): Promise<{ port: number; close(): Promise<void>; ended: number }> {
  const sockets = new Set<net.Socket>();
  const state = { ended: 0 };
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (c: Buffer) => s.write(c.toString().toUpperCase()));
    s.on('end', () => {
      state.ended++;
      s.end('BYE');
    });
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get ended() {
      return state.ended;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads from `socket` until `text` has arrived; resolves with everything read. */
function readUntil(socket: net.Socket | http2.ClientHttp2Stream, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (c: Buffer): void => {
      got += c.toString('latin1');
      if (got.includes(text)) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

describe('forward proxy: CONNECT tunnels', () => {
  let pki: TestPki;
  let tlsOrigin: https.Server;
  let tlsPort: number;
  let origin: Origin;
  let tcp: Awaited<ReturnType<typeof startTcpEcho>>;
  let gw: TestGateway;
  let proxy: string;
  /** Every request the gateway finished (the access log's event): what went through the proxy. */
  const ended: AccessRecord[] = [];
  const onEnd = (m: unknown): void => {
    ended.push(m as AccessRecord);
  };

  before(async () => {
    diagnostics.subscribe('switchboard:request:end', onEnd);
    pki = await createPki();
    const cert = await pki.issue({ names: ['127.0.0.1'] });
    tlsOrigin = https.createServer({ cert: cert.cert, key: cert.key }, echo('tls'));
    await new Promise<void>((resolve) => tlsOrigin.listen(0, '127.0.0.1', resolve));
    tlsPort = (tlsOrigin.address() as AddressInfo).port;
    origin = await startOrigin('plain');
    tcp = await startTcpEcho();
    gw = await startTestGateway(forwardConfig({ tunnelIdleTimeout: '1s' }, { h2c: true }), 'proxy');
    proxy = `http://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    diagnostics.unsubscribe('switchboard:request:end', onEnd);
    await gw?.stop();
    tlsOrigin?.closeAllConnections();
    await new Promise((resolve) => tlsOrigin?.close(resolve));
    await origin?.close();
    await tcp?.close();
    await pki?.cleanup();
  });

  test('curl --proxytunnel to a TLS origin: 200 Connection established, then TLS end to end', async () => {
    const { stdout } = await run('curl', [
      '-s',
      '-S',
      '-i',
      '--max-time',
      '10',
      '-p',
      '-x',
      proxy,
      '--cacert',
      pki.ca.certFile,
      `https://127.0.0.1:${tlsPort}/secure?x=1`,
    ]);
    assert.match(stdout, /^HTTP\/1\.1 200 Connection established\r\n/i);
    const seen = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { origin: string; url: string; headers: Record<string, string> };
    assert.equal(seen.origin, 'tls');
    assert.equal(seen.url, '/secure?x=1');
    assert.equal(seen.headers.via, undefined, 'nothing is added inside a tunnel');
  });

  test('undici ProxyAgent: https:// through CONNECT; http:// as absolute-form, or through CONNECT with proxyTunnel', async () => {
    const agent = new ProxyAgent({ uri: proxy, requestTls: { ca: pki.ca.cert } });
    const tunnelling = new ProxyAgent({ uri: proxy, proxyTunnel: true });
    try {
      const secure = await undiciFetch(`https://127.0.0.1:${tlsPort}/s`, { dispatcher: agent });
      assert.equal(secure.status, 200);
      assert.equal(((await secure.json()) as { origin: string }).origin, 'tls');
      const plain = await undiciFetch(`${origin.url}/p`, { dispatcher: agent });
      assert.equal(plain.status, 200);
      assert.equal(((await plain.json()) as { headers: Record<string, string> }).headers.via, '1.1 switchboard', 'forwarded as absolute-form');
      const tunnelled = await undiciFetch(`${origin.url}/t`, { dispatcher: tunnelling });
      assert.equal(tunnelled.status, 200);
      const seen = (await tunnelled.json()) as { url: string; headers: Record<string, string> };
      assert.equal(seen.url, '/t');
      assert.equal(seen.headers.via, undefined, 'tunnelled: nothing added inside');
    } finally {
      await agent.close();
      await tunnelling.close();
    }
    // A tunnel is logged once, when it closes.
    await until(() => ended.some((r) => r.proxied?.kind === 'connect' && r.proxied.destination === `127.0.0.1:${origin.port}`), 'the CONNECT tunnel logged');
  });

  test('Node 24 fetch with NODE_USE_ENV_PROXY=1: http:// (tunnelled through CONNECT) and https:// through the proxy', async () => {
    const before = ended.length;
    const script = `
      const a = await fetch(${JSON.stringify(`${origin.url}/env`)});
      const b = await fetch(${JSON.stringify(`https://127.0.0.1:${tlsPort}/env`)});
      console.log(JSON.stringify([a.status, (await a.json()).url, b.status, (await b.json()).origin]));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_USE_ENV_PROXY: '1', HTTP_PROXY: proxy, HTTPS_PROXY: proxy, NO_PROXY: '', no_proxy: '', NODE_EXTRA_CA_CERTS: pki.ca.certFile },
      timeout: 20_000,
    });
    assert.deepEqual(JSON.parse(stdout.trim()), [200, '/env', 200, 'tls']);
    // Both went through the proxy: the child's connections to it end once it exits.
    await until(() => ended.length >= before + 2, 'both tunnels logged');
    const destinations = ended.slice(before).map((r) => r.proxied?.destination);
    assert.ok(destinations.includes(`127.0.0.1:${origin.port}`), String(destinations));
    assert.ok(destinations.includes(`127.0.0.1:${tlsPort}`), String(destinations));
  });

  test('raw CONNECT: bytes both ways, the client half-close passed on, the destination end passed back', async () => {
    const s = await connect(gw.port);
    try {
      s.write(`CONNECT 127.0.0.1:${tcp.port} HTTP/1.1\r\nHost: 127.0.0.1:${tcp.port}\r\n\r\nhello`);
      const got = await readUntil(s, 'HELLO');
      assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n\r\n/);
      s.write('again');
      await readUntil(s, 'AGAIN');
      const ended = once(s, 'end');
      s.end();
      const rest = readUntil(s, 'BYE');
      await rest;
      await ended;
      assert.equal(tcp.ended >= 1, true);
    } finally {
      s.destroy();
    }
  });

  test('raw CONNECT to a closed port: 502, no tunnel', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const s = await connect(gw.port);
    try {
      s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      const got = await readUntil(s, '}');
      assert.match(got, /^HTTP\/1\.1 502 /);
      assert.match(got, /"code":"UPSTREAM_CONNECT_REFUSED"/);
    } finally {
      s.destroy();
    }
  });

  test('a quiet tunnel is closed after tunnelIdleTimeout', async () => {
    const s = await connect(gw.port);
    try {
      s.write(`CONNECT 127.0.0.1:${tcp.port} HTTP/1.1\r\nHost: 127.0.0.1:${tcp.port}\r\n\r\n`);
      await readUntil(s, '\r\n\r\n');
      const started = performance.now();
      await once(s, 'close');
      assert.ok(performance.now() - started >= 900, 'not before the idle timeout');
    } finally {
      s.destroy();
    }
  });

  test('CONNECT over HTTP/2 (h2c): :status 200, then DATA both ways; END_STREAM passed on', async () => {
    const session = await connectH2(proxy);
    try {
      const stream = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${tcp.port}` }, { endStream: false });
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(headers[':status'], 200);
      stream.write('over h2');
      await readUntil(stream, 'OVER H2');
      const done = readUntil(stream, 'BYE');
      stream.end();
      await done;
      await once(stream, 'close');
      // A CONNECT stream to a refused destination: an error status, no tunnel.
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const refused = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${port}` }, { endStream: false });
      const [h] = (await once(refused, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(h[':status'], 502);
      refused.close();
      // A non-CONNECT request over HTTP/2 names no destination: 400.
      const plain = session.request({ ':method': 'GET', ':path': '/x', ':authority': `127.0.0.1:${origin.port}` });
      const [p] = (await once(plain, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(p[':status'], 400);
      plain.close();
    } finally {
      session.destroy();
    }
  });
});
