import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileDomains } from './parent-domains.ts';

test('parent domains: exact, *.suffix (not itself), ~regex on the whole name, empty = every one', () => {
  const takes = compileDomains(['exact.example', '*.eu.example', '~cdn[0-9]+\\.example']);
  const cases: Array<[string, boolean]> = [
    ['exact.example', true],
    ['www.exact.example', false],
    ['www.eu.example', true],
    ['a.b.eu.example', true],
    ['eu.example', false],
    ['xeu.example', false],
    ['cdn7.example', true],
    ['cdn7.example.evil', false],
    ['xcdn7.example', false],
    ['other.example', false],
  ];
  for (const [host, expected] of cases) assert.equal(takes(host), expected, host);
  assert.equal(compileDomains([])('anything.example'), true);
});
