import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RawForward } from '../config/forward-schema.ts';
import type { Problem } from '../config/problems.ts';
import { resolveForward } from '../config/resolve-forward.ts';
import type { Decision, ForwardAsk } from './destination-guard.ts';
import { compileForwardRules, type CompileOptions } from './rules.ts';

function guard(raw: RawForward, options: CompileOptions = {}, baseDir = '.') {
  const problems: Problem[] = [];
  const config = resolveForward(raw, ['listeners', 'proxy', 'forward'], baseDir, problems);
  assert.deepEqual(problems, []);
  return compileForwardRules(config, options);
}

const base: ForwardAsk = { client: '127.0.0.1', consumer: undefined, groups: [], method: 'GET', scheme: 'http', host: '93.184.215.14', port: 80 };
const ask = (over: Partial<ForwardAsk>): ForwardAsk => ({ ...base, ...over });
/** `allow rule addresses` or `deny rule code`, to compare decisions in tables. */
function show(d: Decision): string {
  return d.allowed ? `allow ${d.rule} ${d.addresses.join(',')}` : `deny ${d.rule} ${d.code}`;
}

test('the defaults refuse every address form of EDGE-CASES 34, before connecting', async () => {
  const g = guard({});
  const table: Array<[string, string]> = [
    ['127.0.0.1', 'default:loopback'],
    ['127.255.255.254', 'default:loopback'],
    ['2130706433', 'default:loopback'], // decimal
    ['0177.0.0.1', 'default:loopback'], // octal
    ['0x7f.0.0.1', 'default:loopback'], // hex
    ['0x7f000001', 'default:loopback'],
    ['127.1', 'default:loopback'], // short forms
    ['127.0.1', 'default:loopback'],
    ['127.0.0.1.', 'default:loopback'], // trailing dot
    ['::1', 'default:loopback'],
    ['[::1]', 'default:loopback'],
    ['::ffff:127.0.0.1', 'default:loopback'], // IPv4-mapped
    ['::ffff:7f00:1', 'default:loopback'],
    ['::127.0.0.1', 'default:loopback'], // IPv4-compatible
    ['64:ff9b::127.0.0.1', 'default:loopback'], // NAT64
    ['2002:7f00:1::1', 'default:loopback'], // 6to4
    ['::ffff:0:127.0.0.1', 'default:loopback'], // IPv4-translated
    ['0.0.0.0', 'default:unspecified'],
    ['0', 'default:unspecified'],
    ['::', 'default:unspecified'],
    ['0.1.2.3', 'default:unspecified'],
    ['169.254.169.254', 'default:link-local'], // cloud metadata
    ['2852039166', 'default:link-local'],
    ['0xa9.0xfe.0xa9.0xfe', 'default:link-local'],
    ['::ffff:169.254.169.254', 'default:link-local'],
    ['fe80::1', 'default:link-local'],
    ['febf::1', 'default:link-local'],
    ['10.0.0.1', 'default:private'],
    ['012.0.0.1', 'default:private'], // octal 10.0.0.1
    ['172.16.0.1', 'default:private'],
    ['172.31.255.255', 'default:private'],
    ['192.168.1.1', 'default:private'],
    ['100.64.0.1', 'default:private'], // RFC 6598
    ['100.100.100.200', 'default:private'], // Alibaba metadata
    ['fc00::1', 'default:private'], // RFC 4193
    ['fd00:ec2::254', 'default:private'], // AWS IPv6 metadata
    ['::ffff:10.1.2.3', 'default:private'],
    ['64:ff9b::10.0.0.1', 'default:private'],
    ['2002:c0a8:101::', 'default:private'], // 6to4 of 192.168.1.1
    ['64:ff9b:1::1', 'default:private'],
    ['224.0.0.1', 'default:multicast'],
    ['ff02::1', 'default:multicast'],
    ['255.255.255.255', 'default:reserved'],
    ['240.0.0.1', 'default:reserved'],
    ['192.0.0.192', 'default:reserved'], // Oracle Cloud metadata
    ['198.18.0.1', 'default:reserved'],
    ['100::1', 'default:reserved'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'default:loopback'], // Teredo, client 127.0.0.1 inverted
  ];
  for (const [host, rule] of table) {
    for (const scheme of ['http', 'https'] as const) {
      const d = await g.check(ask({ host, scheme, method: scheme === 'https' ? 'CONNECT' : 'GET', port: scheme === 'https' ? 443 : 80 }));
      assert.equal(show(d), `deny ${rule} DESTINATION_FORBIDDEN`, `${host} ${scheme}`);
    }
  }
});

test('the defaults allow public addresses, in their canonical spelling', async () => {
  const g = guard({});
  const table: Array<[string, string]> = [
    ['93.184.215.14', '93.184.215.14'],
    ['1572394766', '93.184.215.14'],
    ['8.8.8.8', '8.8.8.8'],
    ['172.32.0.1', '172.32.0.1'], // just outside 172.16/12
    ['100.128.0.1', '100.128.0.1'], // just outside 100.64/10
    ['[2606:4700:4700::1111]', '2606:4700:4700::1111'],
    ['::ffff:8.8.8.8', '8.8.8.8'],
    ['64:ff9b::8.8.8.8', '64:ff9b::808:808'],
    ['2002:808:808::1', '2002:808:808::1'],
  ];
  for (const [host, address] of table) assert.equal(show(await g.check(ask({ host }))), `allow default ${address}`, host);
});

test('hosts that are neither a name nor an address are refused', async () => {
  const g = guard({});
  for (const host of ['1.2.3.4.5', '256.1.1.1', 'example.123', 'a..b', 'fe80::1%eth0', 'exa mple.com', '']) {
    const d = await g.check(ask({ host }));
    assert.equal(show(d), 'deny default:host DESTINATION_FORBIDDEN', host);
    assert.ok(!d.allowed && !d.reason.includes('\n'));
  }
});

test('ports: Safe_ports, then CONNECT only to connectPorts (80 too with connectToHttp)', async () => {
  const strict = guard({});
  const http80 = guard({ connectToHttp: true });
  const custom = guard({ safePorts: [80, '8000-8099'], connectPorts: ['8443-8444'] });
  const table: Array<[ReturnType<typeof guard>, Partial<ForwardAsk>, string]> = [
    [strict, { port: 22 }, 'deny default:port PORT_FORBIDDEN'],
    [strict, { port: 25 }, 'deny default:port PORT_FORBIDDEN'],
    [strict, { port: 443 }, 'allow default 93.184.215.14'],
    [strict, { port: 8080 }, 'allow default 93.184.215.14'],
    [strict, { method: 'CONNECT', scheme: 'https', port: 443 }, 'allow default 93.184.215.14'],
    [strict, { method: 'CONNECT', scheme: 'https', port: 8443 }, 'deny default:connect-port PORT_FORBIDDEN'],
    [strict, { method: 'CONNECT', scheme: 'https', port: 80 }, 'deny default:connect-port PORT_FORBIDDEN'],
    [strict, { method: 'CONNECT', scheme: 'https', port: 22 }, 'deny default:port PORT_FORBIDDEN'],
    [http80, { method: 'CONNECT', scheme: 'https', port: 80 }, 'allow default 93.184.215.14'],
    [http80, { method: 'CONNECT', scheme: 'https', port: 8080 }, 'deny default:connect-port PORT_FORBIDDEN'],
    [custom, { port: 443 }, 'deny default:port PORT_FORBIDDEN'],
    [custom, { port: 8050 }, 'allow default 93.184.215.14'],
    [custom, { method: 'CONNECT', scheme: 'https', port: 8443 }, 'deny default:port PORT_FORBIDDEN'],
  ];
  for (const [g, over, want] of table) assert.equal(show(await g.check(ask(over))), want, JSON.stringify(over));
  // The port is refused before the loopback address: the first default that applies decides.
  assert.equal(show(await strict.check(ask({ host: '127.0.0.1', port: 22 }))), 'deny default:port PORT_FORBIDDEN');
});

test('rules come first, in order: an explicit allow wins over the defaults, the first match wins', async () => {
  const g = guard({
    rules: [
      { action: 'deny', destinations: ['127.0.0.9'] },
      { name: 'origins', action: 'allow', destinations: ['127.0.0.0/8'], ports: [8080] },
      { action: 'allow', destinations: ['::1'], ports: ['9000-9001'] },
      { action: 'deny', destinations: ['8.8.0.0/16'] },
    ],
  });
  const table: Array<[Partial<ForwardAsk>, string]> = [
    [{ host: '127.0.0.1', port: 8080 }, 'allow origins 127.0.0.1'],
    [{ host: '0x7f000001', port: 8080 }, 'allow origins 127.0.0.1'],
    [{ host: '::ffff:127.0.0.1', port: 8080 }, 'allow origins 127.0.0.1'],
    [{ host: '127.0.0.1', port: 8081 }, 'deny default:loopback DESTINATION_FORBIDDEN'],
    [{ host: '127.0.0.9', port: 8080 }, 'deny rules[0] DESTINATION_FORBIDDEN'],
    [{ host: '::1', port: 9001 }, 'allow rules[2] ::1'],
    [{ host: '::1', port: 8080 }, 'deny default:loopback DESTINATION_FORBIDDEN'],
    [{ host: '8.8.8.8' }, 'deny rules[3] DESTINATION_FORBIDDEN'],
    [{ host: '8.9.8.8' }, 'allow default 8.9.8.8'],
    // An explicit allow skips the port defaults too (8080 is safe; CONNECT to it is not by default).
    [{ host: '127.0.0.1', port: 8080, method: 'CONNECT', scheme: 'https' }, 'allow origins 127.0.0.1'],
  ];
  for (const [over, want] of table) assert.equal(show(await g.check(ask(over))), want, JSON.stringify(over));
});

test('each condition: clients, consumers, groups, domains, methods, schemes', async () => {
  const g = guard({
    rules: [
      { name: 'lan', action: 'allow', clients: ['10.0.0.0/8', '::ffff:192.0.2.0/120'], destinations: ['10.9.0.0/16'] },
      { name: 'alice', action: 'allow', consumers: ['alice'], destinations: ['10.1.0.0/16'] },
      { name: 'ops', action: 'allow', groups: ['ops', 'sre'], destinations: ['10.2.0.0/16'] },
      { name: 'no-post', action: 'deny', methods: ['post'] },
      { name: 'no-udp', action: 'deny', schemes: ['udp'] },
      { name: 'ads', action: 'deny', domains: ['*.ads.example', 'tracker.example', '~^(.*\\.)?evil[0-9]*\\.test$'] },
      { name: 'ip-literal', action: 'deny', domains: ['~.*'] },
    ],
  });
  const table: Array<[Partial<ForwardAsk>, string]> = [
    [{ client: '10.3.4.5', host: '10.9.0.1' }, 'allow lan 10.9.0.1'],
    [{ client: '::ffff:10.3.4.5', host: '10.9.0.1' }, 'allow lan 10.9.0.1'],
    [{ client: '192.0.2.7', host: '10.9.0.1' }, 'allow lan 10.9.0.1'],
    [{ client: '11.0.0.1', host: '10.9.0.1' }, 'deny default:private DESTINATION_FORBIDDEN'],
    [{ consumer: 'alice', host: '10.1.2.3' }, 'allow alice 10.1.2.3'],
    [{ consumer: 'bob', host: '10.1.2.3' }, 'deny default:private DESTINATION_FORBIDDEN'],
    [{ host: '10.1.2.3' }, 'deny default:private DESTINATION_FORBIDDEN'],
    [{ consumer: 'bob', groups: ['dev', 'sre'], host: '10.2.0.1' }, 'allow ops 10.2.0.1'],
    [{ consumer: 'bob', groups: ['dev'], host: '10.2.0.1' }, 'deny default:private DESTINATION_FORBIDDEN'],
    [{ method: 'POST' }, 'deny no-post DESTINATION_FORBIDDEN'],
    [{ method: 'GET' }, 'allow default 93.184.215.14'],
    [{ method: 'UDP', scheme: 'udp', port: 4000 }, 'deny no-udp DESTINATION_FORBIDDEN'],
    // A domain rule decides before any lookup: these names are never resolved.
    [{ host: 'x.ads.example' }, 'deny ads DOMAIN_BLOCKED'],
    [{ host: 'tracker.example' }, 'deny ads DOMAIN_BLOCKED'],
    [{ host: 'TRACKER.example.' }, 'deny ads DOMAIN_BLOCKED'],
    [{ host: 'evil42.test' }, 'deny ads DOMAIN_BLOCKED'],
    [{ host: 'www.evil.test', method: 'CONNECT', scheme: 'https', port: 443 }, 'deny ads DOMAIN_BLOCKED'],
    // Domain conditions never match an IP literal.
    [{ host: '93.184.215.14' }, 'allow default 93.184.215.14'],
  ];
  for (const [over, want] of table) assert.equal(show(await g.check(ask(over))), want, JSON.stringify(over));
  const d = await g.check(ask({ host: 'x.ads.example' }));
  assert.ok(!d.allowed && d.reason.includes('x.ads.example') && d.reason.includes('ads'), !d.allowed ? d.reason : '');
});

test('time of day and days, local or UTC, on an injected clock; spans across midnight', async () => {
  let now = Date.UTC(2026, 11, 7, 12, 0); // Monday 12:00 UTC
  const g = guard(
    {
      rules: [
        { name: 'office', action: 'allow', destinations: ['10.0.0.0/8'], time: { from: '09:00', to: '17:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], zone: 'utc' } },
        { name: 'night', action: 'deny', time: { from: '22:00', to: '06:00', days: ['fri'], zone: 'utc' } },
      ],
    },
    { now: () => now },
  );
  const at = async (iso: string, host: string) => {
    now = Date.parse(iso);
    return show(await g.check(ask({ host })));
  };
  assert.equal(await at('2026-12-07T12:00:00Z', '10.0.0.1'), 'allow office 10.0.0.1'); // Monday
  assert.equal(await at('2026-12-07T09:00:00Z', '10.0.0.1'), 'allow office 10.0.0.1'); // from is inclusive
  assert.equal(await at('2026-12-07T17:00:00Z', '10.0.0.1'), 'deny default:private DESTINATION_FORBIDDEN'); // to is not
  assert.equal(await at('2026-12-07T08:59:00Z', '10.0.0.1'), 'deny default:private DESTINATION_FORBIDDEN');
  assert.equal(await at('2026-12-06T12:00:00Z', '10.0.0.1'), 'deny default:private DESTINATION_FORBIDDEN'); // Sunday
  assert.equal(await at('2026-12-11T23:00:00Z', '8.8.8.8'), 'deny night DESTINATION_FORBIDDEN'); // Friday night
  assert.equal(await at('2026-12-12T05:59:00Z', '8.8.8.8'), 'deny night DESTINATION_FORBIDDEN'); // …until Saturday 06:00
  assert.equal(await at('2026-12-12T06:00:00Z', '8.8.8.8'), 'allow default 8.8.8.8');
  assert.equal(await at('2026-12-12T23:00:00Z', '8.8.8.8'), 'allow default 8.8.8.8'); // Saturday night is not Friday's
  assert.equal(await at('2026-12-11T05:00:00Z', '8.8.8.8'), 'allow default 8.8.8.8'); // Friday early morning is Thursday's night

  // Local time: the same rule read on the machine's clock.
  const local = guard({ rules: [{ name: 'lunch', action: 'deny', time: { from: '12:00', to: '13:00' } }] }, { now: () => now });
  now = new Date(2026, 11, 7, 12, 30).getTime();
  assert.equal(show(await local.check(ask({}))), 'deny lunch DESTINATION_FORBIDDEN');
  now = new Date(2026, 11, 7, 13, 30).getTime();
  assert.equal(show(await local.check(ask({}))), 'allow default 93.184.215.14');
});

test('domainFiles: 100,000 names in hosts and plain format, relative to the config file, looked up before any lookup', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fwd-domains-'));
  try {
    const hosts = ['# a blocklist', '127.0.0.1 localhost', '0.0.0.0 0.0.0.0', ''];
    for (let i = 0; i < 60_000; i++) hosts.push(`0.0.0.0 ad${i}.tracker${i % 101}.example`);
    writeFileSync(join(dir, 'hosts.txt'), hosts.join('\r\n'));
    const plain = ['*.malware.example  # every name under it'];
    for (let i = 0; i < 40_000; i++) plain.push(`site${i}.bad.example.`);
    writeFileSync(join(dir, 'plain.txt'), plain.join('\n'));
    const g = guard({ rules: [{ name: 'blocklist', action: 'deny', domainFiles: ['hosts.txt', 'plain.txt'] }] }, {}, dir);
    const table: Array<[string, string]> = [
      ['ad59999.tracker5.example', 'deny blocklist DOMAIN_BLOCKED'],
      ['ad0.tracker0.example', 'deny blocklist DOMAIN_BLOCKED'],
      ['site39999.bad.example', 'deny blocklist DOMAIN_BLOCKED'],
      ['a.b.malware.example', 'deny blocklist DOMAIN_BLOCKED'],
      ['localhost', 'deny blocklist DOMAIN_BLOCKED'],
      ['93.184.215.14', 'allow default 93.184.215.14'],
    ];
    for (const [host, want] of table) assert.equal(show(await g.check(ask({ host }))), want, host);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('decideNow: the decision check gives, at once, when no lookup is needed; undefined when a name must be resolved', async () => {
  const g = guard({
    rules: [
      { name: 'ads', action: 'deny', domains: ['ads.example'] },
      { name: 'lab', action: 'allow', destinations: ['10.1.0.0/16'] },
    ],
  });
  const asks = [
    ask({}), // a public IP literal: allowed by the defaults
    ask({ host: '127.0.0.1' }), // loopback: refused by the defaults
    ask({ host: '0x0a010203' }), // hex spelling of 10.1.2.3: allowed by rule lab
    ask({ host: '[2001:4860::8888]', port: 22 }), // a port outside Safe_ports
    ask({ host: 'ads.example' }), // a name a rule denies before any lookup
    ask({ host: 'a..b' }), // neither a name nor an address
  ];
  for (const a of asks) {
    const now = g.decideNow?.(a);
    assert.ok(now !== undefined, a.host);
    assert.equal(show(now), show(await g.check(a)), a.host);
  }
  assert.equal(g.decideNow?.(ask({ host: 'www.example.com' })), undefined);
});
