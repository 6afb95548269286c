/**
 * Parent proxies and the PAC file through the real listeners (issue 15 §1, §3; EDGE-CASES 49):
 * absolute-form requests, CONNECT tunnels and SOCKS5 CONNECT for a name a parent entry takes go
 * through that parent, which is asked for the checked address; other destinations go direct; a
 * parent that refuses gives 502 PARENT_PROXY_FAILED. The PAC file is served on the forward
 * listener without proxy credentials. Clients: curl (-x, -p, --socks5-hostname), fetch.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startHttpParent, startSocksParent, type TestParent } from './helpers/parent-proxies.ts';

const run = promisify(execFile);

async function curl(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run('curl', ['-s', '-i', '--max-time', '10', ...args]);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

describe('forward proxy: parent proxies and the PAC file through the listeners', () => {
  let origin: Origin;
  let httpParent: TestParent;
  let socksParent: TestParent;
  let refusing: TestParent;
  let gw: TestGateway;
  let proxy: string;
  let socks: number;
  let strict: string;

  before(async () => {
    origin = await startOrigin('o');
    httpParent = await startHttpParent({ require: 'up:up-pw' });
    socksParent = await startSocksParent();
    refusing = await startHttpParent({ require: 'someone:else' });
    const allowLoopback = [{ action: 'allow', destinations: ['127.0.0.0/8'] }];
    gw = await startTestGateway(
      {
        listeners: {
          proxy: {
            address: '127.0.0.1:0',
            protocol: 'forward',
            policies: ['staff-login'],
            forward: { rules: allowLoopback, parent: { url: httpParent.url('up:up-pw'), domains: ['localhost'] } },
          },
          strict: {
            address: '127.0.0.1:0',
            protocol: 'forward',
            forward: { rules: allowLoopback, parent: { url: refusing.url() } },
          },
          socks: {
            address: '127.0.0.1:0',
            protocol: 'socks5',
            forward: { rules: allowLoopback, parent: { url: socksParent.url(), domains: ['localhost'] } },
          },
        },
        consumers: { alice: { credentials: [{ type: 'basic', username: 'alice', password: bcrypt.hashSync('alice-pw', 4) }] } },
        policies: { 'staff-login': { type: 'basic-auth', realm: 'proxy' } },
      },
      'proxy',
    );
    proxy = `http://127.0.0.1:${gw.port}`;
    socks = gw.gw.address('socks').port;
    strict = `http://127.0.0.1:${gw.gw.address('strict').port}`;
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([origin?.close(), httpParent?.close(), socksParent?.close(), refusing?.close()]);
  });

  test('absolute-form: a name the parent entry takes goes through the parent, asked for the checked address; an IP literal goes direct', async () => {
    const port = new URL(origin.url).port;
    const asked = httpParent.asks.length;
    const r = await curl(['-x', proxy, '--proxy-user', 'alice:alice-pw', `http://localhost:${port}/via-parent`]);
    assert.match(r.out, /^HTTP\/1\.1 200 /);
    assert.equal(httpParent.asks.length, asked + 1);
    assert.deepEqual(httpParent.asks.at(-1), { target: `127.0.0.1:${port}`, atyp: 0, credentials: 'up:up-pw' });
    const seen = origin.seen.at(-1)!;
    assert.equal(seen.url, '/via-parent');
    assert.equal(seen.headers.host, `localhost:${port}`, 'the destination still gets its name in Host');
    // Pooled: a second request reuses the tunnel (no new CONNECT at the parent).
    const again = await curl(['-x', proxy, '--proxy-user', 'alice:alice-pw', `http://localhost:${port}/again`]);
    assert.match(again.out, /^HTTP\/1\.1 200 /);
    const direct = await curl(['-x', proxy, '--proxy-user', 'alice:alice-pw', `http://127.0.0.1:${port}/direct`]);
    assert.match(direct.out, /^HTTP\/1\.1 200 /);
    assert.ok(httpParent.asks.length <= asked + 2, 'the IP literal did not go through the parent');
    assert.ok(
      httpParent.asks.every((a) => a.target.startsWith('127.0.0.1:')),
      'the parent is never asked for a name',
    );
  });

  test('CONNECT: a tunnel to a name the parent takes goes through the parent', async () => {
    const port = new URL(origin.url).port;
    const asked = httpParent.asks.length;
    const r = await curl(['-p', '-x', proxy, '--proxy-user', 'alice:alice-pw', `http://localhost:${port}/tunnelled`]);
    assert.match(r.out, /HTTP\/1\.1 200 OK/);
    assert.equal(httpParent.asks.length, asked + 1);
    assert.equal(httpParent.asks.at(-1)!.target, `127.0.0.1:${port}`);
    assert.equal(origin.seen.at(-1)!.url, '/tunnelled');
  });

  test('SOCKS5 CONNECT: a name the parent entry takes goes through the SOCKS parent, by address', async () => {
    const port = new URL(origin.url).port;
    const asked = socksParent.asks.length;
    const r = await curl(['--socks5-hostname', `127.0.0.1:${socks}`, `http://localhost:${port}/socks-parent`]);
    assert.match(r.out, /^HTTP\/1\.1 200 /);
    assert.equal(socksParent.asks.length, asked + 1);
    assert.deepEqual(socksParent.asks.at(-1), { target: `127.0.0.1:${port}`, atyp: 1, credentials: undefined });
  });

  test('a parent that refuses: 502 PARENT_PROXY_FAILED, nothing reaches the destination', async () => {
    const seen = origin.seen.length;
    const r = await curl(['-x', strict, `${origin.url}/refused`]);
    assert.match(r.out, /^HTTP\/1\.1 502 /);
    assert.match(r.out, /"code":"PARENT_PROXY_FAILED"/);
    assert.equal(origin.seen.length, seen);
    assert.ok(refusing.asks.length >= 1);
  });

  test('the PAC file: served without proxy credentials, naming the proxy as reached; other own paths 400', async () => {
    const res = await fetch(`${proxy}/proxy.pac`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-ns-proxy-autoconfig');
    const body = await res.text();
    assert.match(body, /function FindProxyForURL\(url, host\)/);
    assert.ok(body.includes(`PROXY 127.0.0.1:${gw.port}`), body);
    const wpad = await fetch(`${proxy}/wpad.dat`);
    assert.equal(wpad.status, 200);
    assert.equal(await wpad.text(), body);
    const other = await fetch(`${proxy}/elsewhere`);
    assert.equal(other.status, 400);
    assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'INVALID_TARGET');
  });
});
