/**
 * Authentication on a forward listener (issue 15 §2, EDGE-CASES 36, 49): a `basic-auth` policy on
 * the listener reads `Proxy-Authorization` and answers 407 with `Proxy-Authenticate`, for
 * absolute-form requests and CONNECT alike; the client's own `Authorization` is the destination's
 * and passes; `Proxy-Authorization` is consumed, never forwarded. Clients: curl --proxy-user,
 * curl --proxytunnel, raw sockets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { rawRequest } from './helpers/raw.ts';

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

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('forward proxy: proxy authentication', () => {
  let origin: Origin;
  let gw: TestGateway;
  let proxy: string;

  before(async () => {
    origin = await startOrigin('o');
    gw = await startTestGateway(
      {
        listeners: {
          proxy: {
            address: '127.0.0.1:0',
            protocol: 'forward',
            policies: ['staff-login'],
            forward: { rules: [{ action: 'allow', destinations: ['127.0.0.0/8'] }] },
          },
        },
        consumers: { alice: { credentials: [{ type: 'basic', username: 'alice', password: bcrypt.hashSync('alice-pw', 4) }] } },
        policies: { 'staff-login': { type: 'basic-auth', realm: 'proxy' } },
      },
      'proxy',
    );
    proxy = `http://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    await gw?.stop();
    await origin?.close();
  });

  test('no credentials: 407 PROXY_AUTH_REQUIRED with Proxy-Authenticate, nothing forwarded', async () => {
    const before = origin.seen.length;
    const r = await curl(['-x', proxy, `${origin.url}/a`]);
    assert.match(r.out, /^HTTP\/1\.1 407 /);
    assert.match(r.out, /^proxy-authenticate: Basic realm="proxy", charset="UTF-8"$/im);
    assert.doesNotMatch(r.out, /^www-authenticate:/im);
    assert.match(r.out, /"code":"PROXY_AUTH_REQUIRED"/);
    assert.equal(origin.seen.length, before);
  });

  test('a wrong password: 407 AUTH_INVALID', async () => {
    const r = await curl(['-x', proxy, '--proxy-user', 'alice:wrong', `${origin.url}/a`]);
    assert.match(r.out, /^HTTP\/1\.1 407 /);
    assert.match(r.out, /"code":"AUTH_INVALID"/);
  });

  test('curl --proxy-user: 200; Proxy-Authorization is consumed, the client Authorization passes to the destination', async () => {
    const r = await curl(['-x', proxy, '--proxy-user', 'alice:alice-pw', '-H', 'Authorization: Bearer for-the-origin', `${origin.url}/a`]);
    assert.match(r.out, /^HTTP\/1\.1 200 /);
    const seen = JSON.parse(r.out.slice(r.out.indexOf('{'))) as { headers: Record<string, string> };
    assert.equal(seen.headers['proxy-authorization'], undefined);
    assert.equal(seen.headers.authorization, 'Bearer for-the-origin');
    // Who the proxy's user is stays with the proxy: destinations are anyone's servers.
    assert.equal(seen.headers['x-consumer-name'], undefined);
  });

  test('the Authorization header alone does not authenticate to the proxy', async () => {
    const r = await curl(['-x', proxy, '-H', `Authorization: ${basic('alice', 'alice-pw')}`, `${origin.url}/a`]);
    assert.match(r.out, /^HTTP\/1\.1 407 /);
  });

  test('CONNECT without credentials: 407 before any tunnel; with them: 200 Connection Established', async () => {
    const refused = await rawRequest(gw.port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    assert.equal(refused.status, 407, refused.text);
    assert.match(refused.text, /^proxy-authenticate: Basic realm="proxy"/im);
    const r = await curl(['-p', '-x', proxy, '--proxy-user', 'alice:alice-pw', `${origin.url}/tunnelled`]);
    assert.match(r.out, /^HTTP\/1\.1 200 Connection established/i);
    const seen = JSON.parse(r.out.slice(r.out.indexOf('{'))) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/tunnelled');
    assert.equal(seen.headers['proxy-authorization'], undefined);
  });
});
