/**
 * Operating the `cache` policy (issue 14): purges by URL, prefix and tag through the admin API
 * (`POST /api/cache/purge`) on a lone gateway and through `switchboard cache purge` on a machine of
 * two workers (both workers' stores emptied); the cache's metrics families; the access log's
 * `cache` field.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { accessLine, compileTemplate, type AccessRecord } from '../../src/observability/access-log.ts';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { runCli } from './helpers/run-cli.ts';

const TOKEN = 'purge-test-token-0123456789';
const counts = new Map<string, number>();
let origin: Origin;
let dir: string;
const gateways: Gateway[] = [];
const instances: Instance[] = [];

/** Every path is cacheable for 10 minutes; `/tagged/*` carry tags, `/ct/*` a Cache-Tag. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]!;
  const n = (counts.get(path) ?? 0) + 1;
  counts.set(path, n);
  req.resume();
  const headers: Record<string, string> = { 'content-type': 'text/plain', 'cache-control': 'max-age=600' };
  if (path.startsWith('/tagged/')) headers['surrogate-key'] = 'product-42 all';
  if (path.startsWith('/ct/')) headers['cache-tag'] = 'product-42,other';
  res.writeHead(200, headers);
  res.end(`${path} ${n}`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-purge-'));
  origin = await startOrigin('o', handler);
});

after(async () => {
  for (const i of instances) i.kill();
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 500 })));
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

/** GET on a fresh connection (so that, with workers, any worker may answer). */
async function get(url: string): Promise<{ status: number; cache: string; id: string; body: string }> {
  const res = await request(url, { headers: { connection: 'close' }, reset: true });
  const body = await res.body.text();
  return { status: res.statusCode, cache: String(res.headers['cache-status'] ?? ''), id: String(res.headers['x-request-id'] ?? ''), body };
}

async function admin(base: string, body: unknown, token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}/api/cache/purge`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const hit = (cacheStatus: string): boolean => /; hit/.test(cacheStatus);

test('purge by URL, prefix and tag through the admin API on a lone gateway; metrics and the access log say what the cache did', async () => {
  const lines: string[] = [];
  const template = compileTemplate(['method', 'path', 'cache'].map((f) => `\${${f}}`).join(' '));
  const onEnd = (m: unknown): void => {
    lines.push(accessLine(m as AccessRecord, performance.now()), template.request(m as AccessRecord, performance.now()));
  };
  diagnostics.subscribe('switchboard:request:end', onEnd);
  const gw = await startGateway({
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      policies: { edge: { type: 'cache', store: { memory: '1MiB' } }, other: { type: 'cache', store: { memory: '1MiB' } } },
      routes: {
        plain: { match: { path: '/plain/' }, upstream: 'app' },
        all: { match: { path: '/' }, upstream: 'app', policies: ['edge'] },
      },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
      admin: { address: '127.0.0.1:0', token: TOKEN },
    },
    accessLog: 'off',
    logLevel: 'silent',
  });
  gateways.push(gw);
  const base = gw.url('web');
  const adminUrl = gw.adminUrl()!;
  const paths = ['/one/a', '/one/a?q=1', '/static/x', '/static/y', '/staticfoo', '/tagged/1', '/ct/2', '/keep'];
  for (const p of paths) {
    assert.ok(!hit((await get(base + p)).cache), `${p}: a miss first`);
    assert.ok(hit((await get(base + p)).cache), `${p}: then a hit`);
  }
  const asked = (p: string): number => counts.get(p.split('?')[0]!) ?? 0;
  const before = new Map(paths.map((p) => [p, asked(p)]));

  // By URL: that URL only (its query is part of it).
  const byUrl = await admin(adminUrl, { url: `${base}/one/a` });
  assert.equal(byUrl.status, 200);
  assert.equal(byUrl.body.purged, 1);
  assert.deepEqual(byUrl.body.policies, ['edge', 'other']);
  assert.ok(!hit((await get(`${base}/one/a`)).cache));
  assert.ok(hit((await get(`${base}/one/a?q=1`)).cache));
  // By prefix: /static/x and /static/y, not /staticfoo.
  const byPrefix = await admin(adminUrl, { prefix: `${base}/static/`, policy: 'edge' });
  assert.equal(byPrefix.status, 200);
  assert.equal(byPrefix.body.purged, 2);
  assert.ok(!hit((await get(`${base}/static/x`)).cache));
  assert.ok(!hit((await get(`${base}/static/y`)).cache));
  assert.ok(hit((await get(`${base}/staticfoo`)).cache));
  // By tag: Surrogate-Key and Cache-Tag alike.
  const byTag = await admin(adminUrl, { tag: 'product-42' });
  assert.equal(byTag.body.purged, 2);
  assert.ok(!hit((await get(`${base}/tagged/1`)).cache));
  assert.ok(!hit((await get(`${base}/ct/2`)).cache));
  assert.ok(hit((await get(`${base}/keep`)).cache));
  assert.equal(asked('/keep'), before.get('/keep'));
  assert.equal(asked('/static/x'), before.get('/static/x')! + 1);
  // The programmatic API.
  assert.equal(await gw.purge('edge', { url: `${base}/keep` }), 1);
  assert.equal(await gw.purge('nope', { url: `${base}/keep` }), undefined);

  // Bad purges: a clear 4xx with a stable code.
  const none = await admin(adminUrl, { policy: 'edge' });
  assert.equal(none.status, 400);
  assert.equal((none.body.error as { code: string }).code, 'ADMIN_BAD_PURGE');
  assert.equal((await admin(adminUrl, { url: `${base}/a`, tag: 'x' })).status, 400);
  assert.equal((await admin(adminUrl, { url: '/relative' })).status, 400);
  const unknown = await admin(adminUrl, { tag: 'x', policy: 'nope' });
  assert.equal(unknown.status, 404);
  assert.equal((unknown.body.error as { code: string }).code, 'ADMIN_UNKNOWN_POLICY');
  assert.equal((await admin(adminUrl, { tag: 'x' }, null)).status, 401);

  // Metrics: results, purges, the store.
  const res = await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const text = await res.text();
  const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  assert.ok(value('switchboard_cache_requests_total{policy="edge",result="hit"}') >= 10, text);
  assert.ok(value('switchboard_cache_requests_total{policy="edge",result="miss"}') >= 13);
  assert.equal(value('switchboard_cache_purges_total{policy="edge",kind="url"}'), 2);
  assert.equal(value('switchboard_cache_purges_total{policy="edge",kind="prefix"}'), 1);
  assert.equal(value('switchboard_cache_purged_objects_total{policy="edge",kind="tag"}'), 2);
  assert.equal(value('switchboard_cache_store_objects{policy="edge",store="memory"}'), 7);
  assert.equal(value('switchboard_cache_store_objects{policy="other",store="memory"}'), 0);
  assert.ok(value('switchboard_cache_store_bytes{policy="edge",store="memory"}') > 0);
  assert.equal(value('switchboard_cache_evictions_total{policy="edge",store="memory"}'), 0);

  // The access log: `cache` in the JSON line and the template; null on a route without a cache.
  await get(`${base}/plain/z`);
  diagnostics.unsubscribe('switchboard:request:end', onEnd);
  const json = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { path: string; cache: string | null });
  assert.deepEqual(
    json.filter((l) => l.path === '/keep').map((l) => l.cache),
    ['miss', 'hit', 'hit'],
  );
  assert.equal(json.find((l) => l.path === '/plain/z')?.cache, null);
  assert.ok(lines.includes('GET /keep hit\n'));
  assert.ok(lines.includes('GET /plain/z -\n'));
});

/** Which worker answered: each process draws its own request id prefix (http/session.ts). */
const workerOf = (id: string): string => id.slice(0, 24);

/** GETs `url` on fresh connections until both workers answered; what each worker answered first. */
async function fromBoth(url: string): Promise<Map<string, string>> {
  const first = new Map<string, string>();
  for (let i = 0; i < 400 && first.size < 2; i++) {
    const r = await get(url);
    assert.equal(r.status, 200);
    const w = workerOf(r.id);
    if (!first.has(w)) first.set(w, r.cache);
  }
  assert.equal(first.size, 2, 'both workers answered');
  return first;
}

/**
 * Asks until both workers answer `url` from the cache. With workers the `memory` store is one copy
 * per machine (/dev/shm), written just after the response went out: the first answers may miss.
 */
async function hitOnBoth(url: string): Promise<void> {
  for (let round = 0; round < 50; round++) if ([...(await fromBoth(url)).values()].every(hit)) return;
  assert.fail(`${url} did not become a hit on both workers`);
}

test('switchboard cache purge reaches both workers of a machine; its output and exit codes', async () => {
  const { inst } = await Instance.startWith(
    dir,
    'workers',
    `workers: 2
admin: { address: 127.0.0.1:0, token: ${TOKEN} }
listeners: { web: { address: 127.0.0.1:0, protocol: http } }
policies: { edge: { type: cache, store: { memory: 1MiB } } }
routes: { all: { match: { path: / }, upstream: app, policies: [edge] } }
upstreams: { app: { endpoints: [{ url: ${origin.url} }] } }
`,
  );
  instances.push(inst);
  const started = inst.lines.find((l) => l.msg === 'switchboard started' && l.worker === undefined)!;
  const adminUrl = started.admin as string;
  const base = (started.listeners as Record<string, string>).web!;
  const url = `${base}/tagged/w`;
  // Stored once for the machine (the shared store), then both workers answer from it.
  await hitOnBoth(url);
  const asked = counts.get('/tagged/w')!;

  const purge = await runCli(['cache', 'purge', '--admin', adminUrl, '--tag', 'product-42', '--policy', 'edge'], { env: { SWITCHBOARD_ADMIN_TOKEN: TOKEN } });
  assert.equal(purge.code, 0, purge.stderr);
  assert.equal(purge.stdout, 'purged 1 object (policies: edge; processes: 1)\n', 'one copy for the machine: one worker applies it');
  // Neither worker answers from the cache until the origin was asked again.
  for (const cache of (await fromBoth(url)).values()) assert.ok(!hit(cache) || counts.get('/tagged/w')! > asked, cache);
  assert.ok(counts.get('/tagged/w')! > asked, 'the origin is asked again');
  await hitOnBoth(url);

  // By URL and by prefix through the CLI, the token on the command line.
  const byUrl = await runCli(['cache', 'purge', '--admin', adminUrl, '--token', TOKEN, '--url', url]);
  assert.equal(byUrl.code, 0, byUrl.stderr);
  assert.match(byUrl.stdout, /^purged 1 object /);
  await hitOnBoth(url);
  const byPrefix = await runCli(['cache', 'purge', '--admin', adminUrl, '--token', TOKEN, '--prefix', `${base}/tagged/`]);
  assert.match(byPrefix.stdout, /^purged 1 object /);
  const again = counts.get('/tagged/w')!;
  await fromBoth(url);
  assert.ok(counts.get('/tagged/w')! > again, 'after the prefix purge the origin is asked again');

  // The machine's metrics: each purge and each removed object counted once (a URL and a prefix purge on the shared store included).
  const metrics = await (await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  for (const kind of ['tag', 'url', 'prefix']) {
    assert.match(metrics, new RegExp(`^switchboard_cache_purges_total\\{policy="edge",kind="${kind}"\\} 1$`, 'm'));
    assert.match(metrics, new RegExp(`^switchboard_cache_purged_objects_total\\{policy="edge",kind="${kind}"\\} 1$`, 'm'));
  }

  // Exit codes: 2 for usage and bad purges, 1 when the admin refuses or is not there.
  const noKind = await runCli(['cache', 'purge', '--admin', adminUrl, '--token', TOKEN]);
  assert.equal(noKind.code, 2);
  assert.match(noKind.stderr, /exactly one of --url, --prefix and --tag/);
  const unknown = await runCli(['cache', 'purge', '--admin', adminUrl, '--token', TOKEN, '--tag', 'x', '--policy', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /ADMIN_UNKNOWN_POLICY/);
  const noToken = await runCli(['cache', 'purge', '--admin', adminUrl, '--tag', 'x'], { env: { SWITCHBOARD_ADMIN_TOKEN: '' } });
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /ADMIN_UNAUTHORIZED/);
  const gone = await runCli(['cache', 'purge', '--admin', 'http://127.0.0.1:1', '--token', TOKEN, '--tag', 'x']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /did not answer/);
  assert.equal((await runCli(['cache', 'purge', '--tag', 'x'])).code, 2);
});
