import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFieldValue, toFieldValue } from './header-fields.ts';

const cases: Array<{ value: string; ok: boolean; clean: string }> = [
  { value: 'text/html; charset=utf-8', ok: true, clean: 'text/html; charset=utf-8' },
  { value: 'a\tb c', ok: true, clean: 'a\tb c' },
  { value: 'zürich', ok: true, clean: 'zürich' },
  { value: '', ok: true, clean: '' },
  { value: 'a\r\nSet-Cookie: x=1', ok: false, clean: 'aSet-Cookie: x=1' },
  { value: 'a\0b\x7f', ok: false, clean: 'ab' },
  { value: '\nx', ok: false, clean: 'x' },
  { value: 'snow ☃', ok: false, clean: 'snow ' },
];

for (const c of cases) {
  test(`header field value ${JSON.stringify(c.value)}`, () => {
    assert.equal(isFieldValue(c.value), c.ok);
    assert.equal(toFieldValue(c.value), c.clean);
  });
}
