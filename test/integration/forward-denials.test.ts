/**
 * Every safe default of the destination guard through the real listeners, with real clients
 * (issue 15 §6; EDGE-CASES 33, 34): curl `-x` with absolute-form URLs in every spelling of a
 * loopback, unspecified, link-local and private address, raw CONNECT requests with the same
 * spellings (curl normalises some; a raw request does not), ports outside `connectPorts` and
 * `safePorts`, a domain deny rule, and SOCKS5 (curl `--socks5-hostname` and raw requests). The
 * listeners have no rule that allows loopback. A refusal is shown to come from the guard, before
 * any connection, by the rule the refusal event names (`default:link-local`, …), never by timing;
 * a 127.0.0.1 origin counts the connections it gets: none.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { startGateway, type Gateway } from '../../src/index.ts';
import type { ForwardRefusalEvent } from '../../src/observability/events.ts';
import { curl, errorAnswer } from './helpers/forward.ts';
import { guard } from './helpers/guard.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { connect, rawRequest } from './helpers/raw.ts';

const refusals: ForwardRefusalEvent[] = [];
const onRefusal = (m: unknown): void => {
  refusals.push(m as ForwardRefusalEvent);
};

let origin: Origin;
let connections = 0;
let gw: Gateway;
let proxy: string;
let proxyPort: number;
let socksPort: number;

before(async () => {
  origin = await startOrigin('o');
  origin.server.on('connection', () => connections++);
  // The origin's port is a CONNECT port here, so a tunnel to it is refused for its address only.
  const forward = {
    rules: [{ name: 'ads', action: 'deny', domains: ['blocked.example', '*.blocked.example'] }],
    connectPorts: [443, origin.port],
  };
  gw = await startGateway({
    config: {
      listeners: {
        proxy: { address: '127.0.0.1:0', protocol: 'forward', forward },
        socks: { address: '127.0.0.1:0', protocol: 'socks5', forward },
      },
    },
    accessLog: 'off',
    logLevel: 'silent',
  });
  proxyPort = gw.address('proxy').port;
  proxy = `http://127.0.0.1:${proxyPort}`;
  socksPort = gw.address('socks').port;
  diagnostics.subscribe('switchboard:forward:refusal', onRefusal);
});

after(async () => {
  diagnostics.unsubscribe('switchboard:forward:refusal', onRefusal);
  await gw?.stop({ drainTimeout: 1000 });
  await origin?.close();
});

/** The refusal event of the request just answered (the guard decided; nothing was connected). */
function lastRefusal(): ForwardRefusalEvent | undefined {
  return refusals.at(-1);
}

/** Hosts (as written in a URL or a CONNECT authority) and the default that must refuse them. */
function spellings(p: number): Array<[string, string]> {
  return [
    [`2130706433:${p}`, 'default:loopback'],
    [`0x7f.0.0.1:${p}`, 'default:loopback'],
    [`0x7f000001:${p}`, 'default:loopback'],
    [`0177.0.0.1:${p}`, 'default:loopback'],
    [`127.1:${p}`, 'default:loopback'],
    [`127.0.0.1:${p}`, 'default:loopback'],
    [`[::1]:${p}`, 'default:loopback'],
    [`[::ffff:127.0.0.1]:${p}`, 'default:loopback'],
    [`[::ffff:7f00:1]:${p}`, 'default:loopback'],
    [`localhost:${p}`, 'default:loopback'],
    [`0.0.0.0:${p}`, 'default:unspecified'],
    [`0:${p}`, 'default:unspecified'],
    [`[::]:${p}`, 'default:unspecified'],
    [`169.254.169.254:${p}`, 'default:link-local'],
    [`[fe80::1]:${p}`, 'default:link-local'],
    [`10.0.0.1:${p}`, 'default:private'],
    [`172.16.0.1:${p}`, 'default:private'],
    [`192.168.0.1:${p}`, 'default:private'],
    [`100.64.0.1:${p}`, 'default:private'],
    [`[fc00::1]:${p}`, 'default:private'],
    [`[fd00:ec2::254]:${p}`, 'default:private'],
  ];
}

describe('absolute-form through curl -x', () => {
  test('every spelling of a loopback, unspecified, link-local or private destination: 403 DESTINATION_FORBIDDEN, nothing reaches the origin', async () => {
    const before = connections;
    const hosts: Array<[string, string]> = [
      ...spellings(origin.port),
      ['169.254.169.254', 'default:link-local'],
      ['10.0.0.1', 'default:private'],
      ['100.64.0.1', 'default:private'],
      ['[fe80::1]', 'default:link-local'],
      ['[fc00::1]', 'default:private'],
    ];
    for (const [host, rule] of hosts) {
      const r = await curl(['-i', '-x', proxy, `http://${host}/latest/meta-data/`]);
      assert.deepEqual(errorAnswer(r.stdout), { status: 403, code: 'DESTINATION_FORBIDDEN' }, `${host}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /content-type: application\/json/i);
      assert.deepEqual(lastRefusal(), { listener: 'proxy', code: 'DESTINATION_FORBIDDEN', rule }, host);
    }
    assert.equal(connections, before, 'no connection reached the 127.0.0.1 origin');
    assert.equal(origin.seen.length, 0);
  });

  test('ports outside Safe_ports: 403 PORT_FORBIDDEN; a domain deny rule: 403 DOMAIN_BLOCKED', async () => {
    for (const [url, code, rule] of [
      ['http://127.0.0.1:25/', 'PORT_FORBIDDEN', 'default:port'],
      ['http://93.184.215.14:22/', 'PORT_FORBIDDEN', 'default:port'],
      ['http://blocked.example/', 'DOMAIN_BLOCKED', 'ads'],
      ['http://www.blocked.example:8080/x', 'DOMAIN_BLOCKED', 'ads'],
    ]) {
      const r = await curl(['-i', '-x', proxy, url]);
      assert.deepEqual(errorAnswer(r.stdout), { status: 403, code }, `${url}: ${r.stdout}${r.stderr}`);
      assert.deepEqual(lastRefusal(), { listener: 'proxy', code, rule }, url);
    }
  });
});

describe('CONNECT', () => {
  async function connectAnswer(authority: string): Promise<{ status: number; code: string | undefined }> {
    const r = await rawRequest(proxyPort, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    return errorAnswer(r.text);
  }

  test('raw CONNECT with every address spelling (to the origin’s port, a CONNECT port here): 403, nothing connected', async () => {
    const before = connections;
    for (const [authority, rule] of spellings(origin.port)) {
      assert.deepEqual(await connectAnswer(authority), { status: 403, code: 'DESTINATION_FORBIDDEN' }, authority);
      assert.deepEqual(lastRefusal(), { listener: 'proxy', code: 'DESTINATION_FORBIDDEN', rule }, authority);
    }
    assert.equal(connections, before, 'no connection reached the 127.0.0.1 origin');
  });

  test('curl -p (CONNECT) to loopback spellings: 403 on the tunnel, nothing connected', async () => {
    const before = connections;
    for (const host of ['127.0.0.1', '2130706433', '0x7f.0.0.1', '[::1]', 'localhost']) {
      const r = await curl(['-i', '-p', '-x', proxy, `http://${host}:${origin.port}/`]);
      assert.notEqual(r.exit, 0, host);
      assert.match(r.stdout + r.stderr, /403/, host);
      assert.equal(lastRefusal()?.code, 'DESTINATION_FORBIDDEN', host);
    }
    assert.equal(connections, before);
  });

  test('ports: outside connectPorts 403 PORT_FORBIDDEN (default:connect-port); outside Safe_ports (25) 403 default:port; a blocked domain 403 DOMAIN_BLOCKED', async () => {
    assert.deepEqual(await connectAnswer('93.184.215.14:8443'), { status: 403, code: 'PORT_FORBIDDEN' });
    assert.equal(lastRefusal()?.rule, 'default:connect-port');
    assert.deepEqual(await connectAnswer('93.184.215.14:80'), { status: 403, code: 'PORT_FORBIDDEN' });
    assert.equal(lastRefusal()?.rule, 'default:connect-port');
    assert.deepEqual(await connectAnswer('93.184.215.14:25'), { status: 403, code: 'PORT_FORBIDDEN' });
    assert.equal(lastRefusal()?.rule, 'default:port');
    assert.deepEqual(await connectAnswer('blocked.example:443'), { status: 403, code: 'DOMAIN_BLOCKED' });
    assert.equal(lastRefusal()?.rule, 'ads');
  });
});

describe('SOCKS5', () => {
  /** A raw SOCKS5 CONNECT (no authentication): the reply's REP byte. */
  async function socksReply(address: Buffer, port: number): Promise<number> {
    const s = await connect(socksPort);
    try {
      const chunks: Buffer[] = [];
      const replied = new Promise<Buffer>((resolve, reject) => {
        s.on('data', (c: Buffer) => {
          chunks.push(c);
          const all = Buffer.concat(chunks);
          if (all.length >= 4) resolve(all);
        });
        s.once('close', () => reject(new Error(`closed after ${Buffer.concat(chunks).toString('hex')}`)));
      });
      const p = Buffer.alloc(2);
      p.writeUInt16BE(port);
      s.write(Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from([5, 1, 0]), address, p]));
      const all = await guard(replied, 'the SOCKS5 reply');
      assert.deepEqual([...all.subarray(0, 2)], [5, 0], 'no authentication accepted');
      return all[3];
    } finally {
      s.destroy();
    }
  }
  const ipv4 = (a: string): Buffer => Buffer.from([1, ...a.split('.').map(Number)]);
  const name = (n: string): Buffer => Buffer.concat([Buffer.from([3, n.length]), Buffer.from(n)]);
  const ipv6 = (bytes: number[]): Buffer => Buffer.from([4, ...bytes]);

  test('raw requests: ATYP 1 127.0.0.1, ATYP 4 ::1 and ::ffff:127.0.0.1, ATYP 3 with every spelling: REP 0x02, nothing connected', async () => {
    const before = connections;
    const loop6 = [...Array(15).fill(0), 1];
    const mapped = [...Array(10).fill(0), 0xff, 0xff, 127, 0, 0, 1];
    const requests: Array<[string, Buffer]> = [
      ['ATYP 1 127.0.0.1', ipv4('127.0.0.1')],
      ['ATYP 1 0.0.0.0', ipv4('0.0.0.0')],
      ['ATYP 1 169.254.169.254', ipv4('169.254.169.254')],
      ['ATYP 4 ::1', ipv6(loop6)],
      ['ATYP 4 ::ffff:127.0.0.1', ipv6(mapped)],
      ...spellings(0).map(([host]): [string, Buffer] => {
        // An IPv6 literal as a name is written bare: brackets are no host-name characters (REP 4).
        const h = host.slice(0, host.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
        return [`ATYP 3 ${h}`, name(h)];
      }),
    ];
    for (const [what, address] of requests) {
      assert.equal(await socksReply(address, origin.port), 2, what);
    }
    assert.equal(await socksReply(name('[::1]'), origin.port), 4, 'a bracketed name is malformed: host unreachable');
    assert.equal(connections, before, 'no connection reached the 127.0.0.1 origin');
  });

  test('curl --socks5-hostname to loopback names and addresses: refused (REP 2), nothing connected', async () => {
    const before = connections;
    for (const host of ['localhost', '127.0.0.1', '2130706433', '[::1]']) {
      const r = await curl(['--socks5-hostname', `127.0.0.1:${socksPort}`, `http://${host}:${origin.port}/`]);
      assert.notEqual(r.exit, 0, host);
      assert.match(r.stderr, /\(2\)|not allowed/, `${host}: ${r.stderr}`);
    }
    const blocked = await curl(['--socks5-hostname', `127.0.0.1:${socksPort}`, 'http://blocked.example:443/']);
    assert.match(blocked.stderr, /\(2\)|not allowed/, blocked.stderr);
    assert.equal(connections, before);
  });

  test('a port outside connectPorts: REP 0x02', async () => {
    assert.equal(await socksReply(ipv4('93.184.215.14'), 8443), 2);
    assert.equal(await socksReply(ipv4('93.184.215.14'), 25), 2);
  });
});
