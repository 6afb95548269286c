/** Connection caps per listener and per client address (EDGE-CASES 27): others keep being served. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startOrigin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { simpleConfig, startTestGateway } from './helpers/gateway.ts';

/** A keep-alive client connection that sends one request at a time and reads one response. */
async function client(port: number, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; get: () => Promise<string> }> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  await once(socket, 'connect');
  let buffered = '';
  let waiter: ((text: string) => void) | undefined;
  const check = (): void => {
    const end = buffered.indexOf('\r\n\r\n');
    if (end === -1 || !waiter) return;
    const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
    if (buffered.length < end + 4 + length) return;
    const text = buffered.slice(0, end + 4 + length);
    buffered = buffered.slice(end + 4 + length);
    const w = waiter;
    waiter = undefined;
    w(text);
  };
  socket.setEncoding('latin1').on('data', (d: string) => {
    buffered += d;
    check();
  });
  socket.on('error', () => undefined);
  const closed = once(socket, 'close').then(() => buffered);
  return {
    socket,
    get: () => {
      const answer = new Promise<string>((resolve) => (waiter = resolve));
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      return guard(Promise.race([answer, closed]), 'a response or a close');
    },
  };
}

test('a listener past maxConnections answers 503 and closes; open connections keep being served', async () => {
  const origin = await startOrigin('o', (_req, res) => res.end('ok'));
  const gw = await startTestGateway(simpleConfig([origin.url], { listener: { maxConnections: 2 } }));
  try {
    const a = await client(gw.port);
    const b = await client(gw.port);
    assert.match(await a.get(), /^HTTP\/1\.1 200 /);
    assert.match(await b.get(), /^HTTP\/1\.1 200 /);
    const c = await client(gw.port);
    const refused = await c.get();
    assert.match(refused, /^HTTP\/1\.1 503 /);
    assert.match(refused, /"code":"TOO_MANY_CONNECTIONS"/);
    await guard(once(c.socket, 'close'), 'the refused connection to close');
    assert.match(await a.get(), /^HTTP\/1\.1 200 /, 'an admitted connection is still served');
    a.socket.destroy();
    await guard(
      (async () => {
        // The cap frees up once the gateway has seen the close; retry until it has.
        for (;;) {
          const d = await client(gw.port);
          const answer = await d.get();
          d.socket.destroy();
          if (answer.startsWith('HTTP/1.1 200')) return;
        }
      })(),
      'a new connection to be admitted after one closed',
    );
    b.socket.destroy();
  } finally {
    await gw.stop();
    await origin.close();
  }
});

test('maxConnectionsPerClient caps one address while another is served', async () => {
  const origin = await startOrigin('o', (_req, res) => res.end('ok'));
  const gw = await startTestGateway(simpleConfig([origin.url], { listener: { address: '0.0.0.0:0', maxConnectionsPerClient: 1 } }));
  try {
    const first = await client(gw.port, '127.0.0.1');
    assert.match(await first.get(), /^HTTP\/1\.1 200 /);
    const second = await client(gw.port, '127.0.0.1');
    assert.match(await second.get(), /^HTTP\/1\.1 503 /);
    const other = await client(gw.port, '127.0.0.2');
    assert.match(await other.get(), /^HTTP\/1\.1 200 /, 'another client address is not affected');
    assert.match(await first.get(), /^HTTP\/1\.1 200 /);
    first.socket.destroy();
    other.socket.destroy();
  } finally {
    await gw.stop();
    await origin.close();
  }
});
