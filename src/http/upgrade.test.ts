/** Which upgrade requests the listener tunnels as WebSockets; the rest are plain requests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWebSocketUpgrade } from './h1-head.ts';

type Head = Parameters<typeof isWebSocketUpgrade>[0];

function req(method: string, version: string, headers: Record<string, string>): Head {
  const [major, minor] = version.split('.').map(Number);
  return { method, httpVersionMajor: major, httpVersionMinor: minor, headers };
}

test('only GET HTTP/1.1 Upgrade: websocket without a body is a WebSocket upgrade', () => {
  const cases: Array<[string, Head, boolean]> = [
    ['websocket', req('GET', '1.1', { upgrade: 'websocket' }), true],
    ['any case', req('GET', '1.1', { upgrade: 'WebSocket' }), true],
    ['Content-Length: 0', req('GET', '1.1', { upgrade: 'websocket', 'content-length': '0' }), true],
    ['h2c', req('GET', '1.1', { upgrade: 'h2c' }), false],
    ['a list of protocols', req('GET', '1.1', { upgrade: 'websocket, h2c' }), false],
    ['POST', req('POST', '1.1', { upgrade: 'websocket' }), false],
    ['HTTP/1.0 (Upgrade is ignored there)', req('GET', '1.0', { upgrade: 'websocket' }), false],
    ['a Content-Length body', req('GET', '1.1', { upgrade: 'websocket', 'content-length': '5' }), false],
    ['a chunked body', req('GET', '1.1', { upgrade: 'websocket', 'transfer-encoding': 'chunked' }), false],
    ['no Upgrade', req('GET', '1.1', {}), false],
  ];
  for (const [what, r, expected] of cases) assert.equal(isWebSocketUpgrade(r), expected, what);
});
