import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLineWriter } from './line-writer.ts';
import { accessLine } from './access-log.ts';
import type { AccessRecord } from './access-log.ts';

test('every line arrives once, in order, across buffer boundaries and oversized lines', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sb-lines-'));
  try {
    const file = join(dir, 'nested', 'access.log');
    const w = createLineWriter(file);
    const expected: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const line = i === 7_000 ? `huge ${'x'.repeat(100_000)}` : `line ${i} ${'é'.repeat(i % 50)}`;
      expected.push(line);
      w.write(`${line}\n`);
    }
    await w.flush();
    const firstPart = (await readFile(file, 'utf8')).split('\n');
    assert.equal(firstPart.length, expected.length + 1, 'flush wrote everything queued so far');
    w.write('after flush\n');
    await w.close();
    const lines = (await readFile(file, 'utf8')).split('\n');
    assert.equal(lines.pop(), '');
    assert.deepEqual(lines, [...expected, 'after flush']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** An access record with every field set, for the line tests to vary. */
const RECORD = {
  requestId: 'r-1',
  clientIp: '127.0.0.1',
  method: 'GET',
  url: '/',
  version: 'HTTP/1.1',
  host: 'h',
  path: '/',
  status: 200,
  bytesIn: 0,
  bytesOut: 0,
  listener: 'web',
  route: undefined,
  upstream: undefined,
  endpoint: undefined,
  upstreamLatency: -1,
  tries: 1,
  startedAt: 0,
  error: undefined,
  policy: undefined,
  traceId: undefined,
  consumer: undefined,
  cache: undefined,
  referer: undefined,
  userAgent: undefined,
} satisfies AccessRecord;

test('access log lines are valid JSON whatever the client put in host and path', () => {
  const ctx = {
    ...RECORD,
    requestId: 'id-"quoted"',
    host: 'h\\ost',
    path: '/a"b\u0001/ü',
    bytesIn: 1,
    bytesOut: 2,
    tries: 0,
    error: 'ROUTE_NOT_FOUND',
  } satisfies AccessRecord;
  const line = accessLine(ctx, 12.345);
  assert.ok(line.endsWith('\n'));
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(parsed.path, '/a"b\u0001/ü');
  assert.equal(parsed.host, 'h\\ost');
  assert.equal(parsed.requestId, 'id-"quoted"');
  assert.equal(parsed.route, null);
  assert.equal(parsed.upstreamMs, null);
  assert.equal(parsed.totalMs, 12.35);
  assert.equal(parsed.tries, 0);
  assert.equal(parsed.error, 'ROUTE_NOT_FOUND');
  assert.equal(parsed.traceId, null);
  assert.equal(parsed.consumer, null);
  assert.equal(parsed.policy, null);
  assert.equal(JSON.parse(accessLine({ ...ctx, policy: 'per-client' }, 1)).policy, 'per-client');
  assert.equal(JSON.parse(accessLine({ ...ctx, consumer: 'alice' }, 1)).consumer, 'alice');
  assert.equal(parsed.cache, null);
  assert.equal(JSON.parse(accessLine({ ...ctx, cache: 'hit' }, 1)).cache, 'hit');
  assert.equal(JSON.parse(accessLine({ ...ctx, traceId: '0af7651916cd43dd8448eb211c80319c' }, 1)).traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.match(String(parsed.time), /^\d{4}-\d\d-\d\dT/);
  assert.equal(parsed.protocol, 'HTTP/1.1');
  assert.equal(JSON.parse(accessLine({ ...ctx, version: 'HTTP/2' }, 1)).protocol, 'HTTP/2');
});

test('accessLine: times are ISO to the millisecond, milliseconds have at most two decimals, and strings stay exact JSON', () => {
  const base = RECORD;
  for (const v of [0, 0.004, 0.005, 0.07, 0.1, 1, 1.2, 1.25, 12.3456, 99.999, 100.1, 3600000.5, 1e12]) {
    const parsed = JSON.parse(accessLine({ ...base, upstreamLatency: v }, v));
    assert.equal(parsed.upstreamMs, Math.round(v * 100) / 100, `upstreamMs of ${v}`);
    assert.equal(parsed.totalMs, Math.round(v * 100) / 100, `totalMs of ${v}`);
  }
  // A request that ends before it began on the clock (never expected, but a line must stay JSON).
  assert.equal(JSON.parse(accessLine(base, -3.5)).totalMs, -3.5);
  const before = Date.now();
  const time = JSON.parse(accessLine(base, 1)).time as string;
  assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Date.parse(time) >= before && Date.parse(time) <= Date.now(), `${time} is now`);
  // Strings that need escaping, and those that need none, are both exactly what JSON.parse gives back.
  for (const path of ['/plain/path?q=1', '/a"b', '/back\\slash', '/tab\there', '/del\u007f', '/é', '/lone\ud800surrogate', '/emoji\u{1f600}', '']) {
    const parsed = JSON.parse(accessLine({ ...base, path, url: path || '/fallback', requestId: path }, 1));
    assert.equal(parsed.path, path || '/fallback');
    assert.equal(parsed.requestId, path);
  }
});
