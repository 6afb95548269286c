/**
 * What the forward proxy tells (issue 15 §2 denials, §4, Metrics): access log lines with the
 * forward fields (kind, destination, address, rule, consumer, tunnel bytes, duration), a tunnel
 * logged once when it closes, the forward metrics by outcome, tunnel bytes and refusals, and the
 * 403 answers of the destination guard (the real rules engine, forward/rules.ts) with their JSON
 * body.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startGateway, type Gateway } from '../../src/index.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { connect, rawRequest } from './helpers/raw.ts';
import { samples, total } from './helpers/metrics.ts';

/** The rule the access log names for the allowed requests. */
const ALLOWED_BY = 'loopback-origins';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface Line {
  requestId: string;
  method: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  totalMs: number;
  error: string | null;
  consumer: string | null;
  forward?: { kind: string; destination: string; address: string | null; rule: string | null };
}

describe('forward proxy: access log and metrics', () => {
  let dir: string;
  let origin: Origin;
  let echo: net.Server;
  let echoPort: number;
  let gw: Gateway;
  let port: number;
  let stopped = false;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchboard-forward-log-'));
    origin = await startOrigin('o');
    echo = net.createServer((s) => {
      s.on('data', (c: Buffer) => s.write(c));
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as AddressInfo).port;
    gw = await startGateway({
      config: {
        listeners: {
          proxy: {
            address: '127.0.0.1:0',
            protocol: 'forward',
            policies: ['login'],
            forward: { rules: [{ name: 'loopback-origins', action: 'allow', destinations: ['127.0.0.0/8'] }] },
          },
        },
        consumers: { alice: { credentials: [{ type: 'basic', username: 'alice', password: bcrypt.hashSync('pw', 4) }] } },
        policies: { login: { type: 'basic-auth' } },
      },
      accessLog: join(dir, 'access.log'),
      logLevel: 'silent',
      metrics: true,
    });
    port = gw.address('proxy').port;
  });
  after(async () => {
    if (!stopped) await gw?.stop({ drainTimeout: 1000 });
    await origin?.close();
    await new Promise((resolve) => echo?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test('one line per request and per tunnel (when it closes), with the forward fields; the metrics by outcome and tunnel bytes', async () => {
    const auth = `Proxy-Authorization: ${basic('alice', 'pw')}\r\n`;
    const get = await rawRequest(
      port,
      `GET http://127.0.0.1:${origin.port}/page HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n${auth}X-Request-Id: fwd-get\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(get.status, 200);
    const denied = await rawRequest(port, `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\nX-Request-Id: fwd-407\r\n\r\n`);
    assert.equal(denied.status, 407);
    const loop = await rawRequest(
      port,
      `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n${auth}Via: 1.1 switchboard\r\nX-Request-Id: fwd-loop\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(loop.status, 508);

    // A tunnel: 11 bytes up, 11 back, then the client closes.
    const s = await connect(port);
    s.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n${auth}X-Request-Id: fwd-tunnel\r\n\r\n`);
    let got = '';
    await new Promise<void>((resolve) => {
      s.on('data', (c: Buffer) => {
        got += c.toString();
        if (got.endsWith('\r\n\r\n')) s.write('hello tunnel');
        if (got.endsWith('hello tunnel')) resolve();
      });
    });
    const closed = new Promise((resolve) => s.once('close', resolve));
    s.end();
    await closed;

    await gw.stop({ drainTimeout: 1000 });
    stopped = true;
    const lines = (await readFile(join(dir, 'access.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    const byId = new Map(lines.map((l) => [l.requestId, l]));
    const getLine = byId.get('fwd-get')!;
    assert.deepEqual(getLine.forward, { kind: 'http', destination: `127.0.0.1:${origin.port}`, address: '127.0.0.1', rule: ALLOWED_BY });
    assert.equal(getLine.consumer, 'alice');
    const auth407 = byId.get('fwd-407')!;
    assert.equal(auth407.status, 407);
    assert.equal(auth407.forward?.kind, 'connect');
    assert.equal(byId.get('fwd-loop')!.error, 'PROXY_LOOP');
    const tunnel = byId.get('fwd-tunnel')!;
    assert.equal(lines.filter((l) => l.requestId === 'fwd-tunnel').length, 1, 'a tunnel is logged once');
    assert.equal(tunnel.status, 200);
    assert.equal(tunnel.consumer, 'alice');
    assert.deepEqual(tunnel.forward, { kind: 'connect', destination: `127.0.0.1:${echoPort}`, address: '127.0.0.1', rule: ALLOWED_BY });
    assert.equal(tunnel.bytesIn, 12);
    assert.equal(tunnel.bytesOut, 12);
    assert.ok(tunnel.totalMs > 0);

    const all = samples((await gw.metrics!.render(undefined)).body);
    assert.equal(total(all, 'switchboard_forward_requests_total', { listener: 'proxy', kind: 'http', outcome: 'allowed', code: '' }), 1);
    assert.equal(total(all, 'switchboard_forward_requests_total', { kind: 'connect', outcome: 'allowed' }), 1);
    assert.equal(total(all, 'switchboard_forward_requests_total', { kind: 'connect', outcome: 'denied', code: 'PROXY_AUTH_REQUIRED' }), 1);
    assert.equal(total(all, 'switchboard_forward_requests_total', { kind: 'http', outcome: 'denied', code: 'PROXY_LOOP' }), 1);
    assert.equal(total(all, 'switchboard_forward_tunnel_bytes_total', { kind: 'connect', direction: 'up' }), 12);
    assert.equal(total(all, 'switchboard_forward_tunnel_bytes_total', { kind: 'connect', direction: 'down' }), 12);
  });
});

describe('forward proxy: the destination guard refuses with 403 and the JSON body', () => {
  let origin: Origin;
  let gw: Gateway;
  let port: number;

  before(async () => {
    origin = await startOrigin('o');
    gw = await startGateway({
      config: {
        listeners: {
          proxy: {
            address: '127.0.0.1:0',
            protocol: 'forward',
            forward: {
              rules: [
                { name: 'ads', action: 'deny', domains: ['blocked.example'] },
                { name: 'origin', action: 'allow', destinations: ['127.0.0.1/32'], ports: [origin.port] },
              ],
            },
          },
        },
      },
      accessLog: 'off',
      logLevel: 'silent',
      metrics: true,
    });
    port = gw.address('proxy').port;
  });
  after(async () => {
    await gw?.stop({ drainTimeout: 1000 });
    await origin?.close();
  });

  async function refused(bytes: string): Promise<{ status: number; code: string }> {
    const r = await rawRequest(port, bytes);
    const body = JSON.parse(r.text.slice(r.text.indexOf('{'), r.text.lastIndexOf('}') + 1)) as { error: { code: string } };
    return { status: r.status, code: body.error.code };
  }

  test('a port outside Safe_ports, a loopback destination no rule allows, a blocked domain: 403 each, nothing forwarded', async () => {
    const before = origin.seen.length;
    assert.deepEqual(await refused('GET http://127.0.0.1:22/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), { status: 403, code: 'PORT_FORBIDDEN' });
    assert.deepEqual(await refused(`GET http://127.0.0.2:${origin.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), {
      status: 403,
      code: 'DESTINATION_FORBIDDEN',
    });
    // Port 443 passes the SSL_ports default: the loopback default refuses it.
    assert.deepEqual(await refused('CONNECT 127.0.0.2:443 HTTP/1.1\r\nHost: x\r\n\r\n'), { status: 403, code: 'DESTINATION_FORBIDDEN' });
    assert.deepEqual(await refused('GET http://blocked.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), { status: 403, code: 'DOMAIN_BLOCKED' });
    assert.equal(origin.seen.length, before);
    // The allowed origin still works.
    const ok = await rawRequest(port, `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(ok.status, 200);
    const all = samples((await gw.metrics!.render(undefined)).body);
    assert.equal(total(all, 'switchboard_forward_refusals_total', { listener: 'proxy', code: 'DOMAIN_BLOCKED', rule: 'ads' }), 1);
    assert.equal(total(all, 'switchboard_forward_refusals_total', { listener: 'proxy' }), 4);
  });
});
