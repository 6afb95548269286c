import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigObject } from './load.ts';

const config = (pac: unknown): unknown => ({ listeners: { proxy: { address: '127.0.0.1:3128', protocol: 'forward', forward: { pac } } } });

test('forward.pac: on by default, off with false, proxy and direct checked', () => {
  const on = loadConfigObject(config(undefined));
  assert.ok(on.ok);
  assert.deepEqual(on.config.listeners[0].forward?.pac, { proxy: undefined, direct: [] });
  const off = loadConfigObject(config(false));
  assert.ok(off.ok);
  assert.equal(off.config.listeners[0].forward?.pac, undefined);
  const set = loadConfigObject(config({ proxy: '[2001:db8::1]:3128', direct: ['Intranet.Example', '*.corp.example'] }));
  assert.ok(set.ok, JSON.stringify(!set.ok && set.errors));
  assert.deepEqual(set.config.listeners[0].forward?.pac, { proxy: '[2001:db8::1]:3128', direct: ['intranet.example', '*.corp.example'] });
  const bad = loadConfigObject(config({ proxy: 'proxy.example', direct: ['ok.example', 'x"; alert(1); "', 'a.*.example', '~re'] }));
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.errors.map((e) => /listeners\.proxy\.forward\.pac\.[a-z]+(\[\d\])?/.exec(e.message)?.[0]),
    ['listeners.proxy.forward.pac.proxy', 'listeners.proxy.forward.pac.direct[1]', 'listeners.proxy.forward.pac.direct[2]', 'listeners.proxy.forward.pac.direct[3]'],
  );
});
