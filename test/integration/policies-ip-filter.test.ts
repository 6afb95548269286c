/**
 * The `ip-filter` policy through real listeners: the client address after trusted-proxy
 * resolution decides, over HTTP/1.1, HTTP/2 (h2c) and WebSocket upgrades; deny wins over allow;
 * IPv4-mapped addresses match IPv4 ranges; lists from files are read again on reload; a refusal is
 * 403 with the JSON error body and nothing reaches the origin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { closeSession, connectH2, h2request } from './helpers/h2-client.ts';
import { refusedWs, wsUrl } from './helpers/websocket.ts';

async function from(url: string, client: string | undefined): Promise<{ status: number; code?: string }> {
  const res = await request(url, { headers: client === undefined ? {} : { 'x-forwarded-for': client } });
  const text = await res.body.text();
  return { status: res.statusCode, code: res.statusCode === 403 ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined };
}

describe('ip-filter', () => {
  let origin: Origin;
  let gw: TestGateway;
  let dir: string;
  let listFile: string;
  let configFile: string;

  const config = (): string => `
listeners:
  web: { address: "127.0.0.1:0", protocol: http, h2c: true, trustedProxies: ["127.0.0.1"] }
policies:
  office:  { type: ip-filter, allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.9.0.0/16"] }
  listed:  { type: ip-filter, allowFiles: [list.txt] }
  blocked: { type: ip-filter, deny: ["192.0.2.0/24"] }
routes:
  office:  { match: { path: /office/ }, upstream: app, policies: [office] }
  listed:  { match: { path: /listed/ }, upstream: app, policies: [listed] }
  blocked: { match: { path: /blocked/ }, upstream: app, policies: [blocked] }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
`;

  before(async () => {
    origin = await startOrigin('o');
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-ipf-'));
    listFile = path.join(dir, 'list.txt');
    configFile = path.join(dir, 'switchboard.yaml');
    await writeFile(listFile, '# the office\n172.16.0.0/12\n');
    await writeFile(configFile, config());
    gw = await startTestGateway(configFile);
  });
  after(async () => {
    await gw.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the client address after trusted-proxy resolution decides; a refusal is 403 IP_FORBIDDEN, never forwarded', async () => {
    const seen = origin.seen.length;
    assert.equal((await from(`${gw.url}/office/a`, '10.1.2.3')).status, 200);
    assert.equal((await from(`${gw.url}/office/a`, '2001:db8::7')).status, 200);
    assert.equal(origin.seen.length, seen + 2);
    const refused = [await from(`${gw.url}/office/a`, '192.0.2.7'), await from(`${gw.url}/office/a`, undefined), await from(`${gw.url}/office/a`, '10.9.1.1')];
    assert.deepEqual(
      refused.map((r) => `${r.status} ${r.code}`),
      ['403 IP_FORBIDDEN', '403 IP_FORBIDDEN', '403 IP_FORBIDDEN'],
      'an address outside the allow list, the peer itself (127.0.0.1), and a denied one inside the allow list',
    );
    assert.equal(origin.seen.length, seen + 2, 'nothing refused reached the origin');
  });

  test('an IPv4-mapped client address matches the IPv4 ranges', async () => {
    assert.equal((await from(`${gw.url}/office/a`, '::ffff:10.1.2.3')).status, 200);
    assert.equal((await from(`${gw.url}/office/a`, '::ffff:10.9.0.1')).status, 403);
  });

  test('a deny-only list lets everything else through', async () => {
    assert.equal((await from(`${gw.url}/blocked/a`, '192.0.2.1')).status, 403);
    assert.equal((await from(`${gw.url}/blocked/a`, '198.51.100.1')).status, 200);
  });

  test('over HTTP/2 and for WebSocket upgrades alike', async () => {
    const s = await connectH2(gw.url);
    try {
      assert.equal((await h2request(s, { ':path': '/office/h2', 'x-forwarded-for': '10.0.0.1' })).status, 200);
      const refused = await h2request(s, { ':path': '/office/h2', 'x-forwarded-for': '192.0.2.1' });
      assert.equal(refused.status, 403);
      assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'IP_FORBIDDEN');
    } finally {
      await closeSession(s);
    }
    const ws = await refusedWs(wsUrl(gw.url, '/office/ws'), { headers: { 'x-forwarded-for': '192.0.2.1' } });
    assert.equal(ws.status, 403);
  });

  test('a list from a file is read again when the config reloads', async () => {
    assert.equal((await from(`${gw.url}/listed/a`, '172.16.5.5')).status, 200);
    assert.equal((await from(`${gw.url}/listed/a`, '10.1.1.1')).status, 403);
    await writeFile(listFile, '10.0.0.0/8\n');
    assert.equal((await gw.gw.reload()).ok, true);
    assert.equal((await from(`${gw.url}/listed/a`, '10.1.1.1')).status, 200);
    assert.equal((await from(`${gw.url}/listed/a`, '172.16.5.5')).status, 403);
  });

  test('a bad line in a list file keeps the running config, and says which line', async () => {
    await writeFile(listFile, '10.0.0.0/8\n10.0.0.300/8\n');
    const r = await gw.gw.reload();
    assert.equal(r.ok, false);
    const e = r.errors.find((x) => x.path === 'policies.listed.allowFiles[0]');
    assert.ok(e, r.errors.map((x) => x.message).join('\n'));
    assert.match(e.found, /10\.0\.0\.300\/8.*list\.txt line 2/);
    assert.equal((await from(`${gw.url}/listed/a`, '10.1.1.1')).status, 200, 'the old config keeps serving');
  });

  test('100,000 CIDRs from a file: loaded, and matched', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) lines.push(`${11 + (i % 200)}.${(i >> 8) & 255}.${i & 255}.0/24`);
    lines.push('10.0.0.0/8');
    await writeFile(listFile, `${lines.join('\n')}\n`);
    assert.equal((await gw.gw.reload()).ok, true);
    assert.equal((await from(`${gw.url}/listed/a`, '10.2.3.4')).status, 200);
    assert.equal((await from(`${gw.url}/listed/a`, '11.0.0.9')).status, 200);
    assert.equal((await from(`${gw.url}/listed/a`, '9.9.9.9')).status, 403);
  });
});
