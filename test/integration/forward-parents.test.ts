/**
 * Parent proxies (issue 15 §3) over real sockets: a guard wrapped by withParents connects direct or
 * through tiny HTTP CONNECT and SOCKS5 parents (helpers/parent-proxies.ts) to TCP origins on
 * 127.0.0.1. The inner guard "resolves" test names to 127.0.0.1, as a resolver the test controls.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { type AddressInfo, createServer, connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ForwardParentConfig } from '../../src/config/types.ts';
import { parseParentUrl } from '../../src/config/parent-url.ts';
import type { DestinationGuard, Permit } from '../../src/forward/destination-guard.ts';
import { ParentProxyError, withParents } from '../../src/forward/parents.ts';
import { ParentHealth, parentKey } from '../../src/forward/parent-health.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { HealthCheckConfig } from '../../src/config/types.ts';
import type { ForwardParentEvent } from '../../src/observability/events.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { startEchoOrigin, startHttpParent, startSilentParent, startSocksParent } from './helpers/parent-proxies.ts';
import { guard as within } from './helpers/guard.ts';
import { hasSquid, startSquid } from './helpers/squid.ts';

/** A guard that permits every name at 127.0.0.1 and connects direct, counting its connects. */
function testGuard(): DestinationGuard & { direct: number } {
  const guard = {
    direct: 0,
    async check(ask: { host: string; port: number }) {
      return { allowed: true as const, rule: 'test', host: ask.host, port: ask.port, addresses: ['127.0.0.1'] };
    },
    connect(permit: Permit, timeout: number): Promise<Socket> {
      guard.direct++;
      return new Promise((resolve, reject) => {
        const s = netConnect({ host: permit.addresses[0], port: permit.port, timeout });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    },
  };
  return guard;
}

function permit(host: string, port: number, addresses = ['127.0.0.1']): Permit {
  return { allowed: true, rule: 'test', host, port, addresses };
}

function entry(urls: string[], domains: string[] = [], balance: ForwardParentConfig['balance'] = 'round-robin'): ForwardParentConfig {
  const problems: never[] = [];
  const proxies = urls.map((u) => parseParentUrl(u, ['parent', 'url'], problems));
  assert.deepEqual(problems, []);
  return { proxies: proxies.filter((p) => p !== undefined), domains, balance, healthCheck: undefined };
}

/** Reads from `socket` until `expected` bytes have arrived. */
async function readBytes(socket: Socket, length: number): Promise<string> {
  let got = Buffer.alloc(0);
  while (got.length < length) {
    const chunk = socket.read() as Buffer | null;
    if (chunk === null) {
      await Promise.race([once(socket, 'readable'), once(socket, 'close').then(() => assert.fail(`closed after ${got.length} bytes: ${got}`))]);
      continue;
    }
    got = Buffer.concat([got, chunk]);
  }
  return got.toString();
}

describe('parent proxies', () => {
  let origin: Awaited<ReturnType<typeof startEchoOrigin>>;
  before(async () => {
    origin = await startEchoOrigin('origin');
  });
  after(() => origin.close());

  test('a matching host goes through the HTTP parent, asked for the checked address; others go direct', async () => {
    const parent = await startHttpParent();
    const inner = testGuard();
    const guard = withParents(inner, [entry([parent.url()], ['*.eu.example', 'exact.example', '~re[0-9]+\\.example'])]);
    for (const host of ['www.eu.example', 'exact.example', 're42.example']) {
      const s = await guard.connect(permit(host, origin.port), 2000);
      assert.equal(await readBytes(s, 13), 'hello origin\n');
      s.destroy();
    }
    assert.deepEqual(
      parent.asks.map((a) => a.target),
      Array(3).fill(`127.0.0.1:${origin.port}`),
      'the parent is asked for the checked IP, never the name',
    );
    for (const host of ['eu.example', 'www.us.example', 'sub.exact.example', 're.example']) {
      const s = await guard.connect(permit(host, origin.port), 2000);
      s.destroy();
    }
    assert.equal(parent.asks.length, 3, 'non-matching hosts never reach the parent');
    assert.equal(inner.direct, 4);
    assert.equal(parent.asks[0].credentials, undefined);
    await parent.close();
  });

  test('bytes go both ways through an HTTP tunnel, the bytes the parent sent after its reply first', async () => {
    const parent = await startHttpParent({ after: Buffer.from('PARENT-FIRST;') });
    const guard = withParents(testGuard(), [entry([parent.url()])]);
    const s = await guard.connect(permit('any.example', origin.port), 2000);
    assert.equal(await readBytes(s, 13 + 13), 'PARENT-FIRST;hello origin\n');
    s.write('ping through the tunnel');
    assert.equal(await readBytes(s, 23), 'ping through the tunnel');
    s.destroy();
    await parent.close();
  });

  test('HTTP parent credentials are sent as Basic (percent-decoded); a 407 is a clear PARENT_PROXY_FAILED', async () => {
    const parent = await startHttpParent({ require: 'eu user:p@ss:w0rd' });
    const good = withParents(testGuard(), [entry([parent.url('eu%20user:p%40ss%3Aw0rd')])]);
    const s = await good.connect(permit('a.example', origin.port), 2000);
    assert.equal(await readBytes(s, 13), 'hello origin\n');
    s.destroy();
    assert.equal(parent.asks[0].credentials, 'eu user:p@ss:w0rd');

    const bad = withParents(testGuard(), [entry([parent.url('eu%20user:wrong')])]);
    const err = await bad.connect(permit('a.example', origin.port), 2000).then(
      () => assert.fail('connected with wrong credentials'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ParentProxyError);
    assert.equal(err.code, 'PARENT_PROXY_FAILED');
    assert.equal(err.kind.status, 502);
    assert.match(err.message, /407/);
    assert.equal(err.parent, `http://127.0.0.1:${parent.port}`);
    assert.doesNotMatch(`${err.message} ${err.parent}`, /wrong|eu%20user/, 'no credentials in the error');
    await parent.close();
  });

  test('SOCKS5 parent: RFC 1929 credentials, IPv4 address type with the checked address, bytes both ways', async () => {
    const parent = await startSocksParent({ require: 'alice:s3cret', after: Buffer.from('SOCKS-FIRST;') });
    const guard = withParents(testGuard(), [entry([parent.url('alice:s3cret')], ['*.asia.example'])]);
    const s = await guard.connect(permit('www.asia.example', origin.port), 2000);
    assert.equal(await readBytes(s, 12 + 13), 'SOCKS-FIRST;hello origin\n');
    s.write('echo me');
    assert.equal(await readBytes(s, 7), 'echo me');
    s.destroy();
    assert.deepEqual(parent.asks, [{ target: `127.0.0.1:${origin.port}`, atyp: 1, credentials: 'alice:s3cret' }]);

    const bad = withParents(testGuard(), [entry([parent.url('alice:nope')])]);
    await assert.rejects(bad.connect(permit('www.asia.example', origin.port), 2000), (e: unknown) => {
      assert.ok(e instanceof ParentProxyError);
      assert.match(e.message, /rejected the username and password/);
      return true;
    });
    await parent.close();
  });

  test('SOCKS5 parent: an IPv6 checked address is asked with address type 4; an unreachable one moves to the next address', async (t) => {
    const parent = await startSocksParent();
    t.after(() => parent.close());
    const guard = withParents(testGuard(), [entry([parent.url()])]);
    // ::1 is not where the origin listens: the parent answers REP 5, and the next checked address is asked.
    const s = await guard.connect(permit('dual.example', origin.port, ['::1', '127.0.0.1']), 2000);
    assert.equal(await readBytes(s, 13), 'hello origin\n');
    s.destroy();
    assert.deepEqual(
      parent.asks.map((a) => [a.target, a.atyp]),
      [
        [`[0000:0000:0000:0000:0000:0000:0000:0001]:${origin.port}`, 4],
        [`127.0.0.1:${origin.port}`, 1],
      ],
    );
  });

  test('first matching entry wins; an entry without domains takes the rest', async () => {
    const eu = await startHttpParent();
    const rest = await startSocksParent();
    const inner = testGuard();
    const guard = withParents(inner, [entry([eu.url()], ['*.eu.example']), entry([rest.url()])]);
    for (const host of ['a.eu.example', 'b.example', 'c.eu.example']) (await guard.connect(permit(host, origin.port), 2000)).destroy();
    assert.equal(eu.asks.length, 2);
    assert.equal(rest.asks.length, 1);
    assert.equal(inner.direct, 0);
    await eu.close();
    await rest.close();
  });

  test('two parents are balanced; when one dies the other takes over and the dead one is reported down', async () => {
    const a = await startHttpParent();
    const b = await startHttpParent();
    const events: ForwardParentEvent[] = [];
    const onEvent = (m: unknown): void => {
      events.push(m as ForwardParentEvent);
    };
    diagnostics.subscribe('switchboard:forward:parent', onEvent);
    const metrics = new Metrics();
    try {
      const guard = withParents(testGuard(), [entry([a.url(), b.url()])], { listener: 'proxy', downTime: 60_000 });
      for (let i = 0; i < 4; i++) (await guard.connect(permit('x.example', origin.port), 2000)).destroy();
      assert.equal(a.asks.length, 2, 'round robin');
      assert.equal(b.asks.length, 2, 'round robin');
      await a.close();
      for (let i = 0; i < 4; i++) {
        const s = await guard.connect(permit('x.example', origin.port), 2000);
        assert.equal(await readBytes(s, 13), 'hello origin\n');
        s.destroy();
      }
      assert.equal(b.asks.length, 6, 'b took every connection once a died');
      assert.deepEqual(events, [{ listener: 'proxy', parent: `http://127.0.0.1:${a.port}`, up: false, reason: 'ECONNREFUSED' }], 'a reported down once');
      const { body } = await metrics.render(undefined);
      assert.match(body, new RegExp(`switchboard_forward_parent_up\\{listener="proxy",parent="http://127.0.0.1:${a.port}"\\} 0`));
      assert.match(body, new RegExp(`switchboard_forward_parent_down_total\\{listener="proxy",parent="http://127.0.0.1:${a.port}"\\} 1`));
    } finally {
      metrics.close();
      diagnostics.unsubscribe('switchboard:forward:parent', onEvent);
      await b.close();
    }
  });

  test('a parent its active checks marked down is left out without a try; when every parent is down they are all tried', async () => {
    const a = await startHttpParent();
    const b = await startHttpParent();
    const events: ForwardParentEvent[] = [];
    const onEvent = (m: unknown): void => void events.push(m as ForwardParentEvent);
    diagnostics.subscribe('switchboard:forward:parent', onEvent);
    // A worker's ParentHealth: its health is what the supervisor's checkers say (setHealth), no checker runs here.
    const keyA = parentKey('proxy', 0, a.url());
    const keyB = parentKey('proxy', 0, b.url());
    const health = new ParentHealth(createLogger('silent'), { external: new Map([[keyB, false]]) });
    try {
      const check: HealthCheckConfig = {
        type: 'tcp',
        method: 'GET',
        path: '/',
        host: undefined,
        statuses: [[200, 399]],
        bodyContains: undefined,
        interval: 60_000,
        timeout: 1000,
        jitter: 0,
        rise: 1,
        fall: 1,
        initialState: 'healthy',
      };
      const e = { ...entry([a.url(), b.url()]), healthCheck: check };
      health.apply({ listeners: [{ name: 'proxy', forward: { parents: [e] } }] } as never);
      const guard = withParents(testGuard(), [e], { listener: 'proxy', health });
      for (let i = 0; i < 4; i++) (await guard.connect(permit('x.example', origin.port), 2000)).destroy();
      assert.deepEqual([a.asks.length, b.asks.length], [4, 0], 'b, marked down by the checks, is never tried');

      health.setHealth(keyB, true, 'up');
      for (let i = 0; i < 4; i++) (await guard.connect(permit('x.example', origin.port), 2000)).destroy();
      assert.deepEqual([a.asks.length, b.asks.length], [6, 2], 'back in the round robin');

      health.setHealth(keyA, false, 'down');
      health.setHealth(keyB, false, 'down');
      for (let i = 0; i < 4; i++) (await guard.connect(permit('x.example', origin.port), 2000)).destroy();
      assert.equal(a.asks.length + b.asks.length, 12, 'every parent down: all tried anyway, and they answer');
      assert.ok(
        events.every((ev) => ev.peer === true),
        `only the checks' flips were published, no passive one: ${JSON.stringify(events)}`,
      );
    } finally {
      health.close();
      diagnostics.unsubscribe('switchboard:forward:parent', onEvent);
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a parent that is down is left out for downTime, then tried again and reported up when it answers', async (t) => {
    const a = await startHttpParent();
    const b = await startHttpParent();
    t.after(() => b.close());
    const events: ForwardParentEvent[] = [];
    const onEvent = (m: unknown): void => {
      events.push(m as ForwardParentEvent);
    };
    diagnostics.subscribe('switchboard:forward:parent', onEvent);
    t.after(() => diagnostics.unsubscribe('switchboard:forward:parent', onEvent));
    let clock = 0;
    const guard = withParents(testGuard(), [entry([a.url(), b.url()])], { listener: 'proxy', downTime: 10_000, now: () => clock });
    const port = a.port;
    await a.close();
    for (let i = 0; i < 3; i++) (await guard.connect(permit('x.example', origin.port), 2000)).destroy();
    assert.equal(b.asks.length, 3);
    const back = await startHttpParent({ port });
    t.after(() => back.close());
    clock = 5_000;
    for (let i = 0; i < 3; i++) (await guard.connect(permit('x.example', origin.port), 2000)).destroy();
    assert.equal(back.asks.length, 0, 'still left out before downTime has passed');
    clock = 10_001;
    for (let i = 0; i < 2; i++) (await guard.connect(permit('x.example', origin.port), 2000)).destroy();
    assert.equal(back.asks.length, 1, 'in the set again after downTime');
    assert.deepEqual(
      events.map((e) => [e.parent, e.up]),
      [
        [`http://127.0.0.1:${port}`, false],
        [`http://127.0.0.1:${port}`, true],
      ],
    );
  });

  test('a parent that never answers fails the connect at its timeout', async (t) => {
    const silent = await startSilentParent();
    t.after(() => silent.close());
    const guard = withParents(testGuard(), [entry([silent.url()])]);
    await assert.rejects(guard.connect(permit('x.example', origin.port), 300), (e: unknown) => {
      assert.ok(e instanceof ParentProxyError);
      assert.match(e.message, /no answer within 300 ms/);
      return true;
    });
  });

  test('a parent that answers something other than a proxy reply is down, and the next parent is tried', async (t) => {
    // It reads (and drops) what it is sent, so that our side's close reaches it.
    const liar = createServer((socket) => socket.resume().end('SSH-2.0-OpenSSH_9.2\r\nProtocol mismatch.\r\n\r\n'));
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => liar.close(() => resolve())));
    const good = await startHttpParent();
    t.after(() => good.close());
    const liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
    const guard = withParents(testGuard(), [entry([liarUrl, good.url()])]);
    const s = await guard.connect(permit('x.example', origin.port), 2000);
    assert.equal(await readBytes(s, 13), 'hello origin\n');
    s.destroy();
    assert.equal(good.asks.length, 1);
    const alone = withParents(testGuard(), [entry([liarUrl])]);
    await assert.rejects(alone.connect(permit('x.example', origin.port), 2000), /no parent proxy answered .*HTTP\/1\.x status line/);
  });

  test('a reply head longer than 16 KiB is refused as broken, not buffered on', async (t) => {
    const chatty = createServer((socket) => {
      socket.resume();
      socket.write(`HTTP/1.1 200 OK\r\n${'X-Filler: 0123456789\r\n'.repeat(1000)}`);
    });
    await new Promise<void>((resolve) => chatty.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => chatty.close(() => resolve())));
    const guard = withParents(testGuard(), [entry([`http://127.0.0.1:${(chatty.address() as AddressInfo).port}`])]);
    await assert.rejects(guard.connect(permit('x.example', origin.port), 2000), /longer than 16384 bytes/);
  });

  test('an aborted connect rejects with the abort reason and does not mark the parent down', async (t) => {
    const silent = await startSilentParent();
    t.after(() => silent.close());
    const events: ForwardParentEvent[] = [];
    const onEvent = (m: unknown): void => {
      events.push(m as ForwardParentEvent);
    };
    diagnostics.subscribe('switchboard:forward:parent', onEvent);
    t.after(() => diagnostics.unsubscribe('switchboard:forward:parent', onEvent));
    const guard = withParents(testGuard(), [entry([silent.url()])]);
    const controller = new AbortController();
    const pending = guard.connect(permit('x.example', origin.port), 10_000, controller.signal);
    controller.abort(new Error('client went away'));
    await assert.rejects(pending, /client went away/);
    assert.deepEqual(events, []);
  });

  test('every parent down: PARENT_PROXY_FAILED naming the last one tried', async () => {
    const a = await startHttpParent();
    await a.close();
    const guard = withParents(testGuard(), [entry([a.url()])]);
    await assert.rejects(guard.connect(permit('x.example', origin.port), 2000), (e: unknown) => {
      assert.ok(e instanceof ParentProxyError);
      assert.equal(e.code, 'PARENT_PROXY_FAILED');
      assert.match(e.message, /no parent proxy answered .*ECONNREFUSED/);
      return true;
    });
  });

  test('Squid as the parent: CONNECT to the checked address with Basic credentials; a wrong password is a 407 refusal', {
    skip: !hasSquid() && 'squid is not installed',
  }, async (t) => {
    const squid = await startSquid('alice', 'p@ss word');
    t.after(() => squid.stop());
    const guard = withParents(testGuard(), [entry([`http://alice:p%40ss%20word@127.0.0.1:${squid.port}`], ['*.eu.example'])]);
    const s = await guard.connect(permit('www.eu.example', origin.port), 5000);
    assert.equal(await readBytes(s, 13), 'hello origin\n');
    s.write('through squid');
    assert.equal(await readBytes(s, 13), 'through squid');
    s.destroy();
    const bad = withParents(testGuard(), [entry([`http://alice:wrong@127.0.0.1:${squid.port}`])]);
    await assert.rejects(bad.connect(permit('www.eu.example', origin.port), 5000), (e: unknown) => {
      assert.ok(e instanceof ParentProxyError);
      assert.match(e.message, /refused CONNECT 127\.0\.0\.1:\d+ \(407/);
      return true;
    });
    // Squid logs a tunnel when it ends: wait for both lines.
    await within(
      (async () => {
        while (squid.accessLog().length < 2) await new Promise<void>((r) => setTimeout(r, 50));
      })(),
      "squid's access log",
      5000,
    );
    assert.deepEqual(
      squid.accessLog().map((l) => l.split(' ').slice(0, 3).join(' ')),
      [`CONNECT 127.0.0.1:${origin.port} alice`, `CONNECT 127.0.0.1:${origin.port} alice`],
      'squid was asked for the address, by alice (the second one refused: its log names the user it could not verify)',
    );
  });

  test('withParents without parents is the guard itself', () => {
    const inner = testGuard();
    assert.equal(withParents(inner, []), inner);
  });
});
