/**
 * Traces with workers: each worker process exports its own spans (its own exporter and queue) and
 * flushes them when it drains, so a SIGTERM loses none.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Instance } from './helpers/instance.ts';
import { startOrigin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';

const dir = await mkdtemp(join(tmpdir(), 'switchboard-tracing-workers-'));
let instance: Instance | undefined;
after(async () => {
  instance?.kill();
  await rm(dir, { recursive: true, force: true });
});

interface Export {
  pid: number;
  serverSpans: number;
}

/** A GET on a fresh connection (so the kernel may hand it to either worker). */
function get(url: string): Promise<number> {
  return guard(
    new Promise<number>((resolve, reject) => {
      http
        .get(url, { agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    }),
    `GET ${url}`,
    10_000,
  );
}

test('every worker exports its own spans, and flushes them when it drains', async () => {
  const exports: Export[] = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { intValue?: number | string } }> };
          scopeSpans: Array<{ spans: Array<{ kind: number }> }>;
        }>;
      };
      for (const rs of body.resourceSpans) {
        const pid = Number(rs.resource.attributes.find((a) => a.key === 'process.pid')?.value.intValue);
        exports.push({ pid, serverSpans: rs.scopeSpans.flatMap((s) => s.spans).filter((s) => s.kind === 2).length });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const origin = await startOrigin('A');
  try {
    const { inst } = await Instance.startWith(
      dir,
      'workers',
      `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
routes:
  all: { match: { path: / }, upstream: app }
tracing:
  otlp: { endpoint: "http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces" }
  sampleRate: 1
`,
    );
    instance = inst;
    const workers = inst.workerPids();
    const n = 30;
    for (let i = 0; i < n; i++) assert.equal(await get(`${inst.url('web')}/r${i}`), 200);
    inst.signal('SIGTERM');
    assert.equal(await inst.exited(), 0);
    const total = exports.reduce((sum, e) => sum + e.serverSpans, 0);
    assert.equal(total, n, 'one server span per request, none lost at drain');
    for (const e of exports) assert.ok(workers.includes(e.pid), `spans come from a worker (${e.pid} of ${workers.join(', ')}), never the supervisor`);
  } finally {
    await origin.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
});
