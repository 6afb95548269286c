/**
 * The `forward:` section resolved from a YAML file: domain files read relative to the config file
 * (plain and hosts format), and every refused entry (a missing file, a bad line, a bad regex, a bad
 * CIDR, a bad DNS server) reported at its key path.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from './load-text.ts';

const dir = mkdtempSync(join(tmpdir(), 'forward-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function load(forward: string, files: Record<string, string> = {}) {
  mkdirSync(join(dir, 'lists'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const main = `listeners:\n  proxy:\n    address: "127.0.0.1:3128"\n    protocol: forward\n    forward:\n${forward}`;
  const r = loadConfigText(main, join(dir, 'sb.yaml'), {});
  return { r, errors: r.ok ? [] : r.errors.map((e) => e.message.replaceAll(dir, '<dir>')) };
}

test('domainFiles are read relative to the config file and appended to the rule’s domains', () => {
  const { r, errors } = load(
    `      rules:\n        - { action: deny, domains: ["Tracker.Example.", "*.ADS.example", "~^x[0-9]+\\\\.test$"], domainFiles: [lists/hosts.txt, lists/plain.txt] }\n      resolver: { servers: ["127.0.0.1:5353", "::1", "[::1]:53"], maxTtl: 10s }\n`,
    {
      'lists/hosts.txt': '# StevenBlack-style\n127.0.0.1 localhost\n::1 localhost\n0.0.0.0 0.0.0.0\n0.0.0.0 ad.one.example ad.two.example # two names\n',
      'lists/plain.txt': '*.malware.example\r\nbad.example.\r\n\r\n',
    },
  );
  assert.deepEqual(errors, []);
  assert.ok(r.ok);
  const fwd = r.config.listeners.find((l) => l.name === 'proxy')?.forward;
  assert.deepEqual(fwd?.rules[0].domains, [
    'tracker.example',
    '*.ads.example',
    '~^x[0-9]+\\.test$',
    'localhost',
    'localhost',
    'ad.one.example',
    'ad.two.example',
    '*.malware.example',
    'bad.example',
  ]);
  assert.deepEqual(fwd?.resolverServers, ['127.0.0.1:5353', '::1', '[::1]:53']);
  assert.equal(fwd?.resolverMaxTtl, 10_000);
});

test('a missing domain file, bad lines, a bad regex, a bad CIDR and a bad DNS server are problems at their keys', () => {
  const { errors } = load(
    `      rules:\n        - { action: deny, domainFiles: [lists/missing.txt, lists/bad.txt] }\n        - { action: deny, domains: ["~(unclosed", "a b.example", "*.*.example"] }\n        - { action: allow, clients: ["10/8"], destinations: ["127.0.0.1/33", "fe80::1%eth0"] }\n      resolver: { servers: ["dns.example", "127.0.0.1:99999", "::1:53"] }\n`,
    { 'lists/bad.txt': 'good.example\nbad_line!.example\n0.0.0.0 also..bad\n' },
  );
  const want = [
    /rules\[0\]\.domainFiles\[0\].*readable file.*lists\/missing\.txt.*ENOENT/,
    /rules\[0\]\.domainFiles\[1\].*"bad_line!\.example" \(lists\/bad\.txt line 2\)/,
    /rules\[0\]\.domainFiles\[1\].*"also\.\.bad" \(lists\/bad\.txt line 3\)/,
    /rules\[1\]\.domains\[0\].*valid regular expression/,
    /rules\[1\]\.domains\[1\].*host name/,
    /rules\[1\]\.domains\[2\].*host name/,
    /rules\[2\]\.clients\[0\].*CIDR/,
    /rules\[2\]\.destinations\[0\].*CIDR/,
    /rules\[2\]\.destinations\[1\].*CIDR/,
    /resolver\.servers\[0\].*DNS server/,
    /resolver\.servers\[1\].*DNS server/,
  ];
  for (const re of want)
    assert.ok(
      errors.some((e) => re.test(e)),
      `${re}\n${errors.join('\n')}`,
    );
  assert.ok(!errors.some((e) => /servers\[2\]/.test(e)), '::1:53 is an IPv6 address (port 53 needs brackets)');
});
