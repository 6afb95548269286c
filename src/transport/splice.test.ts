import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net, { type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { splice } from './splice.ts';

/** A listening socket on 127.0.0.1 port 0 and its first accepted connection. */
async function accepting(options: net.ServerOpts = {}): Promise<{ server: net.Server; port: number; accepted: Promise<Socket> }> {
  const server = net.createServer(options);
  const accepted = once(server, 'connection').then(([s]) => s as Socket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, accepted };
}

/** Bytes whose every 64 KiB block differs: a read buffer reused too early would show. */
function pattern(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(i, i);
  return b;
}

function userBufferOf(s: Socket): unknown {
  const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'kBuffer');
  return sym === undefined ? undefined : (s as unknown as Record<symbol, unknown>)[sym];
}

test('splice: bytes arrive intact and in order through a receiver that keeps pausing; FIN passed on', async () => {
  const sink = await accepting({ allowHalfOpen: true });
  const proxy = await accepting({ allowHalfOpen: true });
  const data = pattern(24 * 1024 * 1024);
  const client = net.connect(proxy.port, '127.0.0.1');
  // Bytes sent before the splice starts sit in the accepted socket's readable buffer: they go first.
  client.write(data.subarray(0, 1000));
  const inbound = await proxy.accepted;
  await new Promise((r) => setImmediate(r));
  const upstream = net.connect({ port: sink.port, host: '127.0.0.1', allowHalfOpen: true });
  await once(upstream, 'connect');
  splice(inbound, upstream);
  splice(upstream, inbound);
  assert.ok(Buffer.isBuffer(userBufferOf(inbound)), 'the accepted socket reads into the splice’s own buffer');
  client.end(data.subarray(1000));

  const receiver = await sink.accepted;
  const hash = createHash('sha256');
  let n = 0;
  receiver.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    n += chunk.length;
    // Stop now and then so that the proxy's writes back up (backpressure).
    receiver.pause();
    setImmediate(() => receiver.resume());
  });
  await once(receiver, 'end');
  assert.equal(n, data.length);
  assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
  // Half-close: the client's FIN arrived; an answer still goes back.
  const answer: Buffer[] = [];
  client.on('data', (d: Buffer) => answer.push(d));
  receiver.end('done');
  await once(client, 'end');
  assert.equal(Buffer.concat(answer).toString(), 'done');
  client.destroy();
  sink.server.close();
  proxy.server.close();
});

test('splice: a TLS-less socket without the read-buffer mechanism falls back to pipe()', async () => {
  const sink = await accepting();
  const proxy = await accepting();
  const client = net.connect(proxy.port, '127.0.0.1');
  const inbound = await proxy.accepted;
  const upstream = net.connect(sink.port, '127.0.0.1');
  await once(upstream, 'connect');
  // A stand-in socket object whose handle cannot read into a buffer of ours.
  const handle = (inbound as unknown as { _handle: { useUserBuffer?: unknown } })._handle;
  const own = handle.useUserBuffer;
  Object.defineProperty(handle, 'useUserBuffer', { value: undefined, configurable: true });
  splice(inbound, upstream);
  Object.defineProperty(handle, 'useUserBuffer', { value: own, configurable: true });
  assert.equal(userBufferOf(inbound), null);
  client.write('hello');
  const receiver = await sink.accepted;
  const [got] = await once(receiver, 'data');
  assert.equal(String(got), 'hello');
  client.destroy();
  receiver.destroy();
  upstream.destroy();
  sink.server.close();
  proxy.server.close();
});
