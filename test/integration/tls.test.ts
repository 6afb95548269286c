/**
 * TLS termination through the real gateway, with certificates made at test time: SNI (exact,
 * wildcard, default, strict), ALPN, minimum version, resumption, certificate reload, bad
 * certificates as config errors, https redirect and HSTS, downstream mutual TLS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import http2 from 'node:http2';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { createPki, opensslDate, type IssuedCert, type TestPki } from './helpers/certs.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';

const run = promisify(execFile);

let pki: TestPki;
let site: IssuedCert;
let wild: IssuedCert;
let client: IssuedCert;
let stranger: IssuedCert;
let origin: Origin;
let dir: string;

/** A logger whose lines a test can wait for. */
function captureLog(): { logger: pino.Logger; lines: Array<Record<string, unknown>>; waitFor(msg: string): Promise<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (l: Record<string, unknown>) => void }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (const w of waiters.filter((x) => x.msg === line.msg)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
      cb();
    },
  });
  return {
    logger: pino({ level: 'info' }, stream),
    lines,
    waitFor: (msg) => guard(new Promise((resolve) => waiters.push({ msg, resolve })), `the log line "${msg}"`, 5000),
  };
}

before(async () => {
  pki = await createPki();
  dir = await mkdtemp(join(tmpdir(), 'switchboard-tls-'));
  [site, wild, client] = await Promise.all([
    pki.issue({ names: ['a.test', 'localhost', '127.0.0.1'] }),
    pki.issue({ names: ['*.b.test'] }),
    pki.issue({ names: ['client-1'], use: 'client' }),
  ]);
  stranger = await (await pki.otherCa()).issue({ names: ['client-1'], use: 'client' });
  origin = await startOrigin('o');
});

after(async () => {
  await origin.close();
  await pki.cleanup();
  await rm(dir, { recursive: true, force: true });
});

function httpsConfig(tlsExtra: object = {}, listenerExtra: object = {}): object {
  return {
    listeners: {
      s: {
        address: '127.0.0.1:0',
        protocol: 'https',
        tls: {
          certificates: [
            { cert: site.certFile, key: site.keyFile },
            { cert: wild.certFile, key: wild.keyFile },
          ],
          ...tlsExtra,
        },
        ...listenerExtra,
      },
    },
    routes: { all: { upstream: 'o' } },
    upstreams: { o: { endpoints: [{ url: origin.url }] } },
  };
}

async function start(config: object, logger?: pino.Logger): Promise<Gateway> {
  return startGateway({ config, accessLog: 'off', ...(logger ? { logger } : { logLevel: 'silent' }) });
}

/** Connects with TLS and resolves with the socket once the handshake is done (or rejects). */
function connect(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, ...opts }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** The certificate a client is given for `servername`. */
async function certFor(port: number, servername?: string): Promise<X509Certificate> {
  // Identity is checked by the assertions on the names, not by the client.
  const socket = await connect(port, { checkServerIdentity: () => undefined, ...(servername ? { servername } : {}) });
  const cert = socket.getPeerX509Certificate()!;
  socket.destroy();
  return cert;
}

test('SNI picks the certificate by exact name, then by wildcard; unknown names get the first', async () => {
  const gw = await start(httpsConfig());
  const { port } = gw.address('s');
  try {
    assert.match((await certFor(port, 'a.test')).subjectAltName!, /DNS:a\.test/);
    assert.match((await certFor(port, 'x.b.test')).subjectAltName!, /DNS:\*\.b\.test/);
    assert.match((await certFor(port, 'unknown.test')).subjectAltName!, /DNS:a\.test/, 'default certificate');
    assert.match((await certFor(port)).subjectAltName!, /DNS:a\.test/, 'no SNI at all: default certificate');
    // And with openssl s_client -servername, which also shows the ALPN outcome.
    const sClient = run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'y.b.test', '-alpn', 'h2,http/1.1', '-CAfile', pki.ca.certFile], {
      timeout: 10_000,
    });
    sClient.child.stdin!.end(); // nothing to send: s_client exits once the handshake is done
    const { stdout } = await sClient;
    assert.match(stdout, /subject=.*CN ?= ?\*\.b\.test/);
    assert.match(stdout, /ALPN protocol: h2/);
    assert.match(stdout, /Verify return code: 0 \(ok\)/);
  } finally {
    await gw.stop();
  }
});

test('strictSni refuses a handshake for a name no certificate has, and keeps serving the others', async () => {
  const gw = await start(httpsConfig({ strictSni: true }));
  const { port } = gw.address('s');
  try {
    await assert.rejects(connect(port, { servername: 'nope.test' }), /unrecognized name|alert|ECONNRESET|socket hang up|disconnected before secure TLS/i);
    await assert.rejects(connect(port, { checkServerIdentity: () => undefined }), 'no SNI at all: no certificate');
    assert.match((await certFor(port, 'a.test')).subjectAltName!, /a\.test/);
  } finally {
    await gw.stop();
  }
});

test('ALPN: HTTP/2 and HTTP/1.1 on the same port (curl --http2, curl --http1.1, undici)', async () => {
  const gw = await start(httpsConfig());
  const { port } = gw.address('s');
  try {
    const curl = async (flag: string): Promise<string> =>
      (await run('curl', ['-sS', flag, '--cacert', pki.ca.certFile, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://localhost:${port}/x`])).stdout;
    assert.equal(await curl('--http2'), '2 200');
    assert.equal(await curl('--http1.1'), '1.1 200');
    const res = await request(`https://localhost:${port}/y`, { dispatcher: new (await import('undici')).Agent({ connect: { ca: pki.ca.cert } }) });
    assert.equal(res.statusCode, 200);
    assert.equal(((await res.body.json()) as { url: string }).url, '/y');
  } finally {
    await gw.stop();
  }
});

test('minVersion TLSv1.3 refuses TLS 1.2 clients; the default accepts them', async () => {
  const strict = await start(httpsConfig({ minVersion: 'TLSv1.3' }));
  const relaxed = await start(httpsConfig());
  try {
    await assert.rejects(connect(strict.address('s').port, { servername: 'a.test', maxVersion: 'TLSv1.2' }));
    const s13 = await connect(strict.address('s').port, { servername: 'a.test' });
    assert.equal(s13.getProtocol(), 'TLSv1.3');
    s13.destroy();
    const s12 = await connect(relaxed.address('s').port, { servername: 'a.test', maxVersion: 'TLSv1.2' });
    assert.equal(s12.getProtocol(), 'TLSv1.2');
    s12.destroy();
  } finally {
    await Promise.all([strict.stop(), relaxed.stop()]);
  }
});

test('ciphers limits the TLS 1.2 cipher suites offered', async () => {
  const gw = await start(httpsConfig({ ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }));
  const { port } = gw.address('s');
  try {
    const s = await connect(port, { servername: 'a.test', maxVersion: 'TLSv1.2' });
    assert.equal(s.getCipher().name, 'ECDHE-ECDSA-AES256-GCM-SHA384');
    s.destroy();
    await assert.rejects(connect(port, { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }));
  } finally {
    await gw.stop();
  }
});

test('sessions resume with tickets, and do not when sessionTickets is off', async () => {
  const on = await start(httpsConfig());
  const off = await start(httpsConfig({ sessionTickets: false }));
  const resumes = async (port: number): Promise<boolean> => {
    const first = await connect(port, { servername: 'a.test', maxVersion: 'TLSv1.2' });
    const session = first.getSession();
    first.destroy();
    const second = await connect(port, { servername: 'a.test', maxVersion: 'TLSv1.2', session });
    const reused = second.isSessionReused();
    second.destroy();
    return reused;
  };
  try {
    assert.equal(await resumes(on.address('s').port), true);
    assert.equal(await resumes(off.address('s').port), false);
  } finally {
    await Promise.all([on.stop(), off.stop()]);
  }
});

/** Sends one HTTP/1.1 request on an open TLS socket and resolves with the status line. */
function statusLine(socket: tls.TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (c: Buffer): void => {
      data += c.toString();
      const end = data.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(data);
      const complete = length ? data.length >= end + 4 + Number(length[1]) : data.endsWith('\r\n0\r\n\r\n');
      if (end !== -1 && complete) {
        socket.off('data', onData);
        resolve(data.slice(0, data.indexOf('\r\n')));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('the connection closed before the response')));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\n\r\n`);
  });
}

test('changed certificate files are picked up for new handshakes; open connections are not dropped', async () => {
  const certFile = join(dir, 'reload.pem');
  const keyFile = join(dir, 'reload-key.pem');
  await copyFile(site.certFile, certFile);
  await copyFile(site.keyFile, keyFile);
  const log = captureLog();
  const config = httpsConfig();
  (config as { listeners: { s: { tls: { certificates: object[] } } } }).listeners.s.tls.certificates = [{ cert: certFile, key: keyFile }];
  const gw = await start(config, log.logger);
  const { port } = gw.address('s');
  try {
    const open = await connect(port, { servername: 'a.test' });
    assert.equal(await statusLine(open, '/before'), 'HTTP/1.1 200 OK');
    const before = (await certFor(port, 'a.test')).fingerprint256;

    const next = await pki.issue({ names: ['a.test', 'localhost'] });
    const reloaded = log.waitFor('certificate reloaded');
    await copyFile(next.keyFile, keyFile);
    await copyFile(next.certFile, certFile);
    await reloaded;
    const after = await certFor(port, 'a.test');
    assert.notEqual(after.fingerprint256, before);
    assert.equal(after.fingerprint256, new X509Certificate(next.cert).fingerprint256);
    assert.equal(await statusLine(open, '/after'), 'HTTP/1.1 200 OK', 'the connection opened before the change still works');
    open.destroy();

    // A broken file on disk is refused; the last good certificate keeps serving.
    const rejected = log.waitFor('certificate files rejected; the old certificate keeps serving');
    await writeFile(certFile, 'not a certificate');
    await rejected;
    assert.equal((await certFor(port, 'a.test')).fingerprint256, after.fingerprint256);
  } finally {
    await gw.stop();
  }
});

test('bad certificates are config errors naming file:line:column, key path and the problem', async () => {
  const now = Date.now();
  const expired = await pki.issue({ names: ['old.test'], notBefore: opensslDate(new Date(now - 10 * 86_400_000)), notAfter: opensslDate(new Date(now - 86_400_000)) });
  await copyFile(expired.certFile, join(dir, 'expired.pem'));
  await copyFile(expired.keyFile, join(dir, 'expired-key.pem'));
  await copyFile(site.certFile, join(dir, 'site.pem'));
  await copyFile(wild.keyFile, join(dir, 'wrong-key.pem'));
  const file = join(dir, 'bad.yaml');
  await writeFile(
    file,
    [
      'listeners:',
      '  s:',
      '    address: "127.0.0.1:0"',
      '    protocol: https',
      '    tls:',
      '      certificates:',
      '        - { cert: expired.pem, key: expired-key.pem }',
      '        - { cert: site.pem, key: wrong-key.pem }',
      '        - { cert: missing.pem, key: site.pem }',
      'upstreams:',
      `  o: { endpoints: [ { url: "${origin.url}" } ] }`,
      '',
    ].join('\n'),
  );
  const { loadConfigFile } = await import('../../src/config/load-text.ts');
  const result = await loadConfigFile(file);
  assert.equal(result.ok, false);
  const messages = result.ok ? [] : result.errors.map((e) => e.message);
  assert.equal(messages.length, 3, messages.join('\n'));
  assert.match(messages[0], /bad\.yaml:7:\d+: listeners\.s\.tls\.certificates\[0\]\.cert: expected a certificate that has not expired, found ".*expired\.pem", expired/);
  assert.match(
    messages[1],
    /bad\.yaml:8:\d+: listeners\.s\.tls\.certificates\[1\]\.key: expected the private key of ".*site\.pem", found ".*wrong-key\.pem", which belongs to another certificate/,
  );
  assert.match(messages[2], /bad\.yaml:9:\d+: listeners\.s\.tls\.certificates\[2\]\.cert: expected a readable PEM file, found ".*missing\.pem" \(ENOENT\)/);

  // On reload, the same problems leave the running config serving.
  const gw = await start(httpsConfig());
  try {
    const reload = await gw.reload(file);
    assert.equal(reload.ok, false);
    assert.match((await certFor(gw.address('s').port, 'a.test')).subjectAltName!, /a\.test/);
  } finally {
    await gw.stop();
  }
});

test('httpsRedirect answers 308 to the same host, path and query; https responses carry HSTS', async () => {
  const gw = await start({
    listeners: {
      plain: { address: '127.0.0.1:0', protocol: 'http', httpsRedirect: { port: 8443 } },
      plain443: { address: '127.0.0.1:0', protocol: 'http', httpsRedirect: true },
      s: {
        address: '127.0.0.1:0',
        protocol: 'https',
        tls: { certificates: [{ cert: site.certFile, key: site.keyFile }] },
        hsts: { maxAge: '1h', includeSubDomains: true },
      },
    },
    routes: { all: { upstream: 'o' } },
    upstreams: { o: { endpoints: [{ url: origin.url }] } },
  });
  try {
    const seen = origin.seen.length;
    const r1 = await request(`${gw.url('plain')}/a/b?c=d&e`, { headers: { host: 'Shop.Example:80' } });
    assert.equal(r1.statusCode, 308);
    assert.equal(r1.headers.location, 'https://shop.example:8443/a/b?c=d&e');
    await r1.body.dump();
    const r2 = await request(`${gw.url('plain443')}/x?y=1`, { headers: { host: 'shop.example' } });
    assert.equal(r2.headers.location, 'https://shop.example/x?y=1');
    await r2.body.dump();
    assert.equal(origin.seen.length, seen, 'redirected requests never reach the upstream');
    const { stdout } = await run('curl', ['-sS', '-D', '-', '-o', '/dev/null', '--cacert', pki.ca.certFile, `https://localhost:${gw.address('s').port}/`]);
    assert.match(stdout, /strict-transport-security: max-age=3600; includeSubDomains/i);
  } finally {
    await gw.stop();
  }
});

test('required client certificates: none or an unknown CA fails the handshake; a valid one reaches the upstream as headers', async () => {
  const gw = await start(httpsConfig({ clientCertificate: { ca: pki.ca.certFile, required: true } }));
  const { port } = gw.address('s');
  const get = async (cert?: IssuedCert, headers: Record<string, string> = {}): Promise<Record<string, string>> => {
    const { Agent } = await import('undici');
    const agent = new Agent({ connect: { ca: pki.ca.cert, servername: 'a.test', ...(cert ? { cert: cert.cert, key: cert.key } : {}) } });
    try {
      const res = await request(`https://127.0.0.1:${port}/mtls`, { dispatcher: agent, headers });
      return ((await res.body.json()) as { headers: Record<string, string> }).headers;
    } finally {
      await agent.close();
    }
  };
  try {
    await assert.rejects(get());
    await assert.rejects(get(stranger));
    const seen = await get(client, { 'x-client-cert-subject': 'CN=admin', 'x-client-cert-fingerprint': 'forged' });
    assert.equal(seen['x-client-cert-subject'], 'O=Switchboard Tests,CN=client-1');
    assert.equal(seen['x-client-cert-fingerprint'], new X509Certificate(client.cert).fingerprint256.replaceAll(':', '').toLowerCase());
    // The same over HTTP/2 (ALPN h2), where the connection is reached through node:http2's session.
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: pki.ca.cert, servername: 'a.test', cert: client.cert, key: client.key });
    const stream = session.request({ ':path': '/mtls-h2', 'x-client-cert-subject': 'CN=admin' });
    let body = '';
    stream.on('data', (c: Buffer) => (body += c.toString()));
    await new Promise((resolve) => stream.on('end', resolve));
    session.close();
    assert.equal((JSON.parse(body) as { headers: Record<string, string> }).headers['x-client-cert-subject'], 'O=Switchboard Tests,CN=client-1');
  } finally {
    await gw.stop();
  }
});

test('optional client certificates: none is fine (and forged headers are removed), an invalid one is refused', async () => {
  const gw = await start(httpsConfig({ clientCertificate: { ca: pki.ca.certFile, required: false, subjectHeader: 'X-Subject' } }));
  const { port } = gw.address('s');
  try {
    const { Agent } = await import('undici');
    const plain = new Agent({ connect: { ca: pki.ca.cert, servername: 'a.test' } });
    const res = await request(`https://127.0.0.1:${port}/opt`, { dispatcher: plain, headers: { 'x-subject': 'CN=admin' } });
    const seen = ((await res.body.json()) as { headers: Record<string, string> }).headers;
    assert.equal(res.statusCode, 200);
    assert.equal(seen['x-subject'], undefined, 'a client-sent copy of the subject header never reaches the upstream');
    await plain.close();
    const bad = new Agent({ connect: { ca: pki.ca.cert, servername: 'a.test', cert: stranger.cert, key: stranger.key } });
    await assert.rejects(request(`https://127.0.0.1:${port}/opt`, { dispatcher: bad }));
    await bad.close();
    const good = new Agent({ connect: { ca: pki.ca.cert, servername: 'a.test', cert: client.cert, key: client.key } });
    const ok = await request(`https://127.0.0.1:${port}/opt`, { dispatcher: good });
    assert.equal(((await ok.body.json()) as { headers: Record<string, string> }).headers['x-subject'], 'O=Switchboard Tests,CN=client-1');
    await good.close();
  } finally {
    await gw.stop();
  }
});

test('maxConnections on an https listener: a connection over the cap is closed before any handshake', async () => {
  const gw = await start(httpsConfig({}, { maxConnections: 1 }));
  const { port } = gw.address('s');
  try {
    const first = await connect(port, { servername: 'a.test' });
    await assert.rejects(connect(port, { servername: 'a.test' }));
    const closed = new Promise((resolve) => first.once('close', resolve));
    first.destroy();
    await closed;
    // The slot frees once the server has seen the first connection close, which may be a moment
    // after the client did: a few real connection attempts (no sleeps) cover that.
    let again: tls.TLSSocket | undefined;
    for (let i = 0; i < 50 && again === undefined; i++) again = await connect(port, { servername: 'a.test' }).catch(() => undefined);
    assert.ok(again, 'a new connection is admitted once the first has closed');
    again.destroy();
  } finally {
    await gw.stop();
  }
});

test('a changed client CA file is picked up: certificates from the old CA are refused, from the new one accepted', async () => {
  const caFile = join(dir, 'clients-ca.pem');
  await copyFile(pki.ca.certFile, caFile);
  const other = await pki.otherCa();
  const otherClient = await other.issue({ names: ['client-2'], use: 'client' });
  const log = captureLog();
  const gw = await start(httpsConfig({ clientCertificate: { ca: caFile, required: true } }), log.logger);
  const { port } = gw.address('s');
  const handshake = async (cert: IssuedCert): Promise<boolean> => {
    try {
      const s = await connect(port, { servername: 'a.test', cert: cert.cert, key: cert.key });
      // TLS 1.3 reports a refused client certificate after the handshake: a request tells.
      const line = await statusLine(s, '/ca').catch(() => 'refused');
      s.destroy();
      return line === 'HTTP/1.1 200 OK';
    } catch {
      return false;
    }
  };
  try {
    assert.equal(await handshake(client), true);
    assert.equal(await handshake(otherClient), false);
    const reloaded = log.waitFor('client CA reloaded');
    await copyFile(other.ca.certFile, caFile);
    await reloaded;
    assert.equal(await handshake(otherClient), true);
    assert.equal(await handshake(client), false);
  } finally {
    await gw.stop();
  }
});
