/**
 * Switchboard as a TLS and HTTP/2 client of its endpoints: certificate verification against a CA
 * with a configured server name, the explicit insecureSkipVerify, client certificates (upstream
 * mTLS), HTTP/2 over TLS (ALPN) and h2c, and health checks over TLS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import http2 from 'node:http2';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { createPki, type IssuedCert, type TestPki } from './helpers/certs.ts';

interface Seen {
  version: string;
  servername: string | false;
  clientCert: string | undefined;
  host: string | undefined;
}

let pki: TestPki;
let api: IssuedCert;
let proxyClient: IssuedCert;

before(async () => {
  pki = await createPki();
  api = await pki.issue({ names: ['api.internal'] });
  proxyClient = await pki.issue({ names: ['switchboard-proxy'], use: 'client' });
});

after(() => pki.cleanup());

type Handler = (
  req: { httpVersion: string; headers: Record<string, unknown>; socket: unknown },
  res: { writeHead(s: number, h: object): void; end(b: string): void },
) => void;

function reply(name: string): Handler {
  return (req, res) => {
    const socket = (req.socket as TLSSocket | undefined) ?? undefined;
    const peer = socket?.getPeerX509Certificate?.();
    const seen: Seen = {
      version: req.httpVersion,
      servername: socket?.servername ?? false,
      clientCert: peer?.subject.split('\n').join(','),
      host: (req.headers[':authority'] ?? req.headers.host) as string | undefined,
    };
    res.writeHead(200, { 'content-type': 'application/json', 'x-origin': name });
    res.end(JSON.stringify(seen));
  };
}

interface TlsOrigin {
  url: string;
  close(): Promise<void>;
}

async function listen(server: https.Server | http2.Http2SecureServer | http2.Http2Server, scheme: string): Promise<TlsOrigin> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

function httpsOrigin(opts: { requireClientCert?: boolean } = {}): Promise<TlsOrigin> {
  const server = https.createServer(
    { cert: api.cert, key: api.key, ...(opts.requireClientCert ? { requestCert: true, rejectUnauthorized: true, ca: pki.ca.cert } : {}) },
    reply('https') as unknown as Parameters<typeof https.createServer>[1],
  );
  return listen(server, 'https');
}

function config(url: string, upstream: object = {}, name = 'api'): object {
  return {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { all: { upstream: name } },
    upstreams: { [name]: { retries: { attempts: 1 }, endpoints: [{ url }], ...upstream } },
  };
}

async function get(gw: Gateway, path = '/'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(gw.url('web') + path);
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function start(cfg: object, logger?: pino.Logger): Promise<Gateway> {
  return startGateway({ config: cfg, accessLog: 'off', ...(logger ? { logger } : { logLevel: 'silent' }) });
}

test('https endpoints are verified against the configured CA and server name (sent as SNI)', async () => {
  const origin = await httpsOrigin();
  const ca = await start(config(origin.url, { tls: { ca: pki.ca.certFile, serverName: 'api.internal' } }));
  const systemCas = await start(config(origin.url, { tls: { serverName: 'api.internal' } }));
  const wrongName = await start(config(origin.url, { tls: { ca: pki.ca.certFile, serverName: 'other.internal' } }));
  try {
    const ok = await get(ca);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.servername, 'api.internal');
    const untrusted = await get(systemCas);
    assert.equal(untrusted.status, 502);
    assert.equal((untrusted.body.error as { code: string }).code, 'UPSTREAM_TLS_ERROR');
    const mismatch = await get(wrongName);
    assert.equal(mismatch.status, 502);
    assert.equal((mismatch.body.error as { code: string }).code, 'UPSTREAM_TLS_ERROR');
  } finally {
    await Promise.all([ca.stop(), systemCas.stop(), wrongName.stop(), origin.close()]);
  }
});

test('insecureSkipVerify is explicit, works against an untrusted endpoint, and is logged as a warning', async () => {
  const origin = await httpsOrigin();
  const lines: string[] = [];
  const write = (c: Buffer, _e: BufferEncoding, cb: () => void): void => {
    lines.push(c.toString());
    cb();
  };
  const logger = pino({ level: 'warn' }, new Writable({ write }));
  const gw = await start(config(origin.url, { tls: { insecureSkipVerify: true } }), logger);
  try {
    assert.equal((await get(gw)).status, 200);
    assert.ok(
      lines.some((l) => l.includes('insecureSkipVerify is on') && l.includes('"upstream":"api"')),
      lines.join(''),
    );
  } finally {
    await Promise.all([gw.stop(), origin.close()]);
  }
});

test('upstream mutual TLS: the configured client certificate is presented; without it the endpoint refuses', async () => {
  const origin = await httpsOrigin({ requireClientCert: true });
  const withCert = await start(config(origin.url, { tls: { ca: pki.ca.certFile, serverName: 'api.internal', cert: proxyClient.certFile, key: proxyClient.keyFile } }));
  const without = await start(config(origin.url, { tls: { ca: pki.ca.certFile, serverName: 'api.internal' } }));
  try {
    const ok = await get(withCert);
    assert.equal(ok.status, 200);
    assert.match(String(ok.body.clientCert), /CN=switchboard-proxy/);
    assert.equal((await get(without)).status, 502);
  } finally {
    await Promise.all([withCert.stop(), without.stop(), origin.close()]);
  }
});

test('protocol h2 speaks HTTP/2 over TLS (ALPN) to the endpoint, h2c speaks it in cleartext', async () => {
  const secure = await listen(http2.createSecureServer({ cert: api.cert, key: api.key }, reply('h2') as never), 'https');
  const clear = await listen(http2.createServer(reply('h2c') as never), 'http');
  const h2 = await start(config(secure.url, { protocol: 'h2', tls: { ca: pki.ca.certFile, serverName: 'api.internal' } }));
  const h2c = await start(config(clear.url, { protocol: 'h2c' }));
  try {
    const a = await get(h2, '/a');
    assert.equal(a.status, 200);
    assert.equal(a.body.version, '2.0');
    const b = await get(h2c, '/b');
    assert.equal(b.status, 200);
    assert.equal(b.body.version, '2.0');
    assert.match(String(b.body.host), /^127\.0\.0\.1:\d+$/, ':authority carries the Host');
    // Many requests at once share HTTP/2 connections (streams), and all succeed.
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => get(h2c, `/many/${i}`)));
    assert.ok(all.every((r) => r.status === 200 && r.body.version === '2.0'));
  } finally {
    await Promise.all([h2.stop(), h2c.stop(), secure.close(), clear.close()]);
  }
});

test('health checks use the endpoint TLS settings: a trusted endpoint is healthy, an untrusted one is down', async () => {
  const origin = await httpsOrigin();
  const hc = { interval: '50ms', timeout: '1s', rise: 1, fall: 1 };
  const { endpointEvent } = await import('./helpers/endpoint-events.ts');
  const up = endpointEvent((e) => e.upstream === 'trusted' && e.healthy, 'the trusted endpoint to be marked healthy');
  const down = endpointEvent((e) => e.upstream === 'untrusted' && !e.healthy, 'the untrusted endpoint to be marked down');
  const trusted = await start(
    config(origin.url, { tls: { ca: pki.ca.certFile, serverName: 'api.internal' }, healthCheck: { ...hc, initialState: 'unhealthy' } }, 'trusted'),
  );
  const untrusted = await start(config(origin.url, { tls: { serverName: 'api.internal' }, healthCheck: { ...hc, initialState: 'healthy' } }, 'untrusted'));
  try {
    await up;
    assert.equal((await get(trusted)).status, 200);
    await down;
    assert.equal(untrusted.endpoints('untrusted')![0].healthy, false);
  } finally {
    await Promise.all([trusted.stop(), untrusted.stop(), origin.close()]);
  }
});
