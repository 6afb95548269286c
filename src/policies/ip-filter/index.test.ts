import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeResolveContext } from '../../../test/helpers/policy.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import { loadConfigText } from '../../config/load-text.ts';
import { ipFilterPolicy } from './index.ts';
import type { RawIpFilterConfig } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'ip-filter-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Validates and resolves `raw` as the loader would; returns the problems and the resolved config. */
function resolve(raw: unknown) {
  const parsed = ipFilterPolicy.config.safeParse(raw);
  assert.ok(parsed.success, parsed.error?.message);
  const { ctx, problems } = fakeResolveContext({ baseDir: dir });
  return { problems, resolved: ipFilterPolicy.resolve(parsed.data, ctx) };
}

/** A filter from a config that must resolve cleanly. */
function filter(raw: RawIpFilterConfig) {
  const { problems, resolved } = resolve(raw);
  assert.deepEqual(problems, []);
  return ipFilterPolicy.create(resolved);
}

function refused(f: ReturnType<typeof filter>, ip: string): boolean {
  const verdict = f.onRequest(fakeSession({ client: { ip } }));
  assert.ok(!(verdict instanceof Promise));
  return verdict !== undefined;
}

const office: RawIpFilterConfig = { allow: ['10.0.0.0/8', '192.168.0.0/16'] };

test('allow, deny and both: deny wins, an allow list refuses the rest, deny alone lets the rest through', () => {
  const table: Array<[string, RawIpFilterConfig, string, boolean]> = [
    ['allow: inside', office, '10.1.2.3', false],
    ['allow: second range', office, '192.168.44.1', false],
    ['allow: outside', office, '11.0.0.1', true],
    ['allow: an IPv6 client against IPv4 ranges', office, '2001:db8::1', true],
    ['deny: listed', { deny: ['203.0.113.0/24'] }, '203.0.113.77', true],
    ['deny: not listed', { deny: ['203.0.113.0/24'] }, '198.51.100.1', false],
    ['deny: IPv6 client, IPv4 list', { deny: ['0.0.0.0/0'] }, '2001:db8::1', false],
    ['both: allowed, not denied', { allow: ['10.0.0.0/8'], deny: ['10.9.0.0/16'] }, '10.1.0.1', false],
    ['both: allowed and denied', { allow: ['10.0.0.0/8'], deny: ['10.9.0.0/16'] }, '10.9.0.1', true],
    ['both: denied, allowed more narrowly', { allow: ['10.9.9.9'], deny: ['10.0.0.0/8'] }, '10.9.9.9', true],
    ['both: neither', { allow: ['10.0.0.0/8'], deny: ['10.9.0.0/16'] }, '172.16.0.1', true],
    ['empty allow list: everyone refused', { allow: [] }, '10.1.2.3', true],
    ['empty deny list: everyone passes', { deny: [] }, '10.1.2.3', false],
  ];
  for (const [name, config, ip, want] of table) assert.equal(refused(filter(config), ip), want, name);
});

test('IPv6, IPv4-mapped clients and mapped ranges, /0, /32, /128, first and last addresses', () => {
  const table: Array<[string, RawIpFilterConfig, string, boolean]> = [
    ['v6 inside', { allow: ['2001:db8::/32'] }, '2001:db8:1::1', false],
    ['v6 first', { allow: ['2001:db8::/32'] }, '2001:db8::', false],
    ['v6 last', { allow: ['2001:db8::/32'] }, '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', false],
    ['v6 before', { allow: ['2001:db8::/32'] }, '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['v6 after', { allow: ['2001:db8::/32'] }, '2001:db9::', true],
    ['v6 upper case, zone', { allow: ['fe80::/10'] }, 'FE80::1%eth0', false],
    ['v4 first', office, '10.0.0.0', false],
    ['v4 last', office, '10.255.255.255', false],
    ['v4 before', office, '9.255.255.255', true],
    ['v4 after', office, '11.0.0.0', true],
    ['mapped client, v4 range', office, '::ffff:10.1.2.3', false],
    ['mapped client outside', office, '::ffff:11.1.2.3', true],
    ['mapped client, hex form', office, '::ffff:a01:203', false],
    ['mapped range, v4 client', { allow: ['::ffff:10.0.0.0/104'] }, '10.200.0.1', false],
    ['mapped range, v4 client outside', { allow: ['::ffff:10.0.0.0/104'] }, '11.0.0.1', true],
    ['mapped address, v4 client', { deny: ['::ffff:192.0.2.7'] }, '192.0.2.7', true],
    ['/0 v4 allows every v4', { allow: ['0.0.0.0/0'] }, '255.255.255.255', false],
    ['/0 v4 not v6', { allow: ['0.0.0.0/0'] }, '::1', true],
    ['/0 v6 allows every v6', { allow: ['::/0'] }, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', false],
    ['/0 v6 not v4', { allow: ['::/0'] }, '10.1.2.3', true],
    ['/32 itself', { allow: ['192.0.2.7/32'] }, '192.0.2.7', false],
    ['/32 neighbour', { allow: ['192.0.2.7/32'] }, '192.0.2.8', true],
    ['/128 itself', { allow: ['2001:db8::7/128'] }, '2001:db8::7', false],
    ['/128 neighbour', { allow: ['2001:db8::7/128'] }, '2001:db8::6', true],
    ['overlapping and adjacent ranges', { allow: ['10.0.0.0/24', '10.0.1.0/24', '10.0.0.128/25'] }, '10.0.1.255', false],
    ['just past adjacent ranges', { allow: ['10.0.0.0/24', '10.0.1.0/24', '10.0.0.128/25'] }, '10.0.2.0', true],
  ];
  for (const [name, config, ip, want] of table) assert.equal(refused(filter(config), ip), want, name);
});

test('an address that does not parse is refused, whatever the lists', () => {
  for (const config of [office, { deny: ['203.0.113.0/24'] }, { allow: ['0.0.0.0/0', '::/0'] }]) {
    for (const ip of ['', 'unknown', '10.1.2', '10.1.2.3:80', '[::1]', '::ffff:1.2.3'])
      assert.equal(refused(filter(config), ip), true, `${ip} ${JSON.stringify(config)}`);
  }
});

test('the refusal is one frozen 403 IP_FORBIDDEN Reply', () => {
  const f = filter(office);
  const a = f.onRequest(fakeSession({ client: { ip: '11.0.0.1' } }));
  const b = f.onRequest(fakeSession({ client: { ip: '::1' } }));
  assert.deepEqual(a, { status: 403, error: { code: 'IP_FORBIDDEN', message: 'the client address is not allowed here' } });
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a) && Object.isFrozen((a as { error: object }).error));
});

test('config problems: none given, bad entries with their index, unknown keys', () => {
  assert.deepEqual(resolve({}).problems, [{ path: [], expected: 'at least one of allow, allowFiles, deny, denyFiles', found: 'none of them' }]);
  const { problems } = resolve({ allow: ['10.0.0.0/8', '10.0.0.300/8', '::ffff:10.0.0.0/8'], deny: ['192.0.2.1', 'example.com'] });
  assert.deepEqual(
    problems.map((p) => [p.path, p.found]),
    [
      [['allow', 1], '"10.0.0.300/8"'],
      [['allow', 2], '"::ffff:10.0.0.0/8"'],
      [['deny', 1], '"example.com"'],
    ],
  );
  assert.match(problems[0].expected, /CIDR range/);
  assert.equal(ipFilterPolicy.config.safeParse({ allow: ['10.0.0.0/8'], alow: [] }).success, false);
  assert.equal(ipFilterPolicy.config.safeParse({ allow: '10.0.0.0/8' }).success, false);
});

test('files: comments, blank lines, CRLF, relative to the config, several files adding up', () => {
  writeFileSync(join(dir, 'allow.txt'), '\uFEFF# the office\n10.0.0.0/8   # HQ\n\n  192.168.0.0/16\r\n\t2001:db8::/32\n# end\n');
  writeFileSync(join(dir, 'more.txt'), '172.16.0.0/12');
  writeFileSync(join(dir, 'deny.txt'), '10.66.0.0/16\n');
  const f = filter({ allowFiles: ['allow.txt', join(dir, 'more.txt')], allow: ['198.51.100.7'], denyFiles: ['deny.txt'] });
  const table: Array<[string, boolean]> = [
    ['10.1.2.3', false],
    ['192.168.1.1', false],
    ['2001:db8::1', false],
    ['172.20.0.1', false],
    ['198.51.100.7', false],
    ['10.66.1.1', true],
    ['8.8.8.8', true],
  ];
  for (const [ip, want] of table) assert.equal(refused(f, ip), want, ip);
  // An allow file with nothing in it leaves an allow list that refuses everyone.
  writeFileSync(join(dir, 'empty.txt'), '# nothing yet\n');
  assert.equal(refused(filter({ allowFiles: ['empty.txt'] }), '10.1.2.3'), true);
});

test('files: a bad line names the file and line; a missing file; many bad lines are capped', () => {
  const lines = Array.from({ length: 41 }, (_, i) => `10.0.${i}.0/24`);
  lines.push('10.0.0.300/8', '# fine', '2001:db8::/33 extra');
  writeFileSync(join(dir, 'bad.txt'), lines.join('\n'));
  let { problems } = resolve({ allowFiles: ['bad.txt', 'missing.txt'] });
  assert.deepEqual(problems, [
    { path: ['allowFiles', 0], expected: 'an IP address or CIDR range, e.g. 10.0.0.0/8 or 2001:db8::/32', found: '"10.0.0.300/8" (bad.txt line 42)' },
    { path: ['allowFiles', 0], expected: 'an IP address or CIDR range, e.g. 10.0.0.0/8 or 2001:db8::/32', found: '"2001:db8::/33 extra" (bad.txt line 44)' },
    { path: ['allowFiles', 1], expected: 'a readable file of addresses or CIDR ranges, one a line', found: '"missing.txt" (ENOENT)' },
  ]);
  writeFileSync(join(dir, 'garbage.txt'), 'x\n'.repeat(25));
  ({ problems } = resolve({ denyFiles: ['garbage.txt'] }));
  assert.equal(problems.length, 11);
  assert.deepEqual(problems[0].found, '"x" (garbage.txt line 1)');
  assert.deepEqual(problems[10], { path: ['denyFiles', 0], expected: 'one address or CIDR range a line', found: '15 more bad lines in garbage.txt' });
});

test('a file of 100,000 ranges resolves, and lookups agree with the ranges written', () => {
  const lines: string[] = [];
  for (let i = 0; i < 100_000; i++) lines.push(`${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`);
  writeFileSync(join(dir, 'big.txt'), lines.join('\n'));
  const f = filter({ denyFiles: ['big.txt'] });
  // 10.0.0.0 to 11.134.159.255 are denied (coalesced into one range), the next address passes.
  const table: Array<[string, boolean]> = [
    ['9.255.255.255', false],
    ['10.0.0.0', true],
    ['10.200.3.4', true],
    ['11.134.159.255', true],
    ['11.134.160.0', false],
  ];
  for (const [ip, want] of table) assert.equal(refused(f, ip), want, ip);
});

test('through the loader: file:line:column errors at the entry, a file relative to the config', () => {
  writeFileSync(join(dir, 'office.txt'), '10.0.0.0/8\n10.0.0.300/8\n');
  const text = `listeners:
  web: { address: "127.0.0.1:8080", protocol: http, policies: [office] }
upstreams:
  api: { endpoints: [ { url: "http://127.0.0.1:9001" } ] }
routes:
  main: { upstream: api }
policies:
  office:
    type: ip-filter
    allow: ["10.0.0.0/8", "192.168.0.0/16", "::1", "10.1"]
    allowFiles: [office.txt]
`;
  const result = loadConfigText(text, join(dir, 'gw.yaml'), {});
  assert.equal(result.ok, false);
  assert.deepEqual(result.ok ? [] : result.errors.map((e) => e.message.slice(dir.length + 1)), [
    'gw.yaml:10:52: policies.office.allow[3]: expected an IP address or CIDR range, e.g. 10.0.0.0/8 or 2001:db8::/32, found "10.1"',
    'gw.yaml:11:18: policies.office.allowFiles[0]: expected an IP address or CIDR range, e.g. 10.0.0.0/8 or 2001:db8::/32, found "10.0.0.300/8" (office.txt line 2)',
  ]);
  writeFileSync(join(dir, 'office.txt'), '10.0.0.0/8\n172.16.0.0/12\n');
  const ok = loadConfigText(text.replace(', "10.1"', ''), join(dir, 'gw.yaml'), {});
  assert.ok(ok.ok, ok.ok ? '' : ok.errors.map((e) => e.message).join('\n'));
});

test('the policy type is complete: type, description, a description on every key', () => {
  assert.equal(ipFilterPolicy.type, 'ip-filter');
  assert.ok(ipFilterPolicy.description.length > 20);
  for (const [key, schema] of Object.entries(ipFilterPolicy.config.shape)) assert.ok(schema.description, key);
});
