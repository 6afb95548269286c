import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cookieValue, queryValue, redactQuery } from './request-values.ts';

test('cookieValue finds a cookie among others, exactly by name', () => {
  assert.equal(cookieValue('a=1; sb_ep=xyz; b=2', 'sb_ep'), 'xyz');
  assert.equal(cookieValue('sb_ep=first', 'sb_ep'), 'first');
  assert.equal(cookieValue('xsb_ep=1; sb_ep2=2', 'sb_ep'), undefined);
  assert.equal(cookieValue('a=1;sb_ep="q"', 'sb_ep'), 'q');
  assert.equal(cookieValue(undefined, 'sb_ep'), undefined);
  assert.equal(cookieValue('novalue; sb_ep=', 'sb_ep'), '');
});

test('queryValue finds the first value of a parameter, decoded', () => {
  assert.equal(queryValue('?user=ann&x=1', 'user'), 'ann');
  assert.equal(queryValue('?x=1&user=b%20c&user=d', 'user'), 'b c');
  assert.equal(queryValue('?username=1', 'user'), undefined);
  assert.equal(queryValue('?user', 'user'), '');
  assert.equal(queryValue('', 'user'), undefined);
  assert.equal(queryValue('?user=%E0%A4%A', 'user'), '%E0%A4%A');
});

test('redactQuery: the values of the named parameters become [REDACTED], as written or percent-encoded; the rest is kept', () => {
  const names = new Set(['apikey', 'access token']);
  assert.equal(redactQuery('/a?x=1&apikey=s3cret&y=2', names), '/a?x=1&apikey=[REDACTED]&y=2');
  assert.equal(redactQuery('/a?access%20token=t&apikey', names), '/a?access%20token=[REDACTED]&apikey=[REDACTED]');
  assert.equal(redactQuery('/a?apikeys=x', names), '/a?apikeys=x');
  assert.equal(redactQuery('/a', names), '/a');
  assert.equal(redactQuery('/a?apikey=x', new Set()), '/a?apikey=x');
});
