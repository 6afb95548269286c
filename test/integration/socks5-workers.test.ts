/**
 * A socks5 listener under `workers: 2` (`switchboard start`): the workers share its socket as they
 * do a tcp listener's, and a UDP association's relay lives in the worker that took its TCP
 * connection. curl and a raw UDP client through the real supervisor and workers.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Instance } from './helpers/instance.ts';
import { startOrigin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'switchboard-socks-workers-'));
const origin = await startOrigin('o1');
let inst: Instance | undefined;
after(async () => {
  inst?.kill();
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

test('two workers serve one socks5 listener: CONNECT through curl and a UDP round trip', async () => {
  ({ inst } = await Instance.startWith(
    dir,
    'socks',
    `workers: 2
listeners:
  socks:
    address: "127.0.0.1:0"
    protocol: socks5
    forward: { rules: [{ action: allow, destinations: ["127.0.0.0/8"] }] }
`,
  ));
  const port = Number(new URL(inst.url('socks')).port);
  for (let i = 0; i < 6; i++) {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${port}`, `http://127.0.0.1:${origin.port}/w${i}`]);
    assert.equal(JSON.parse(r.stdout).url, `/w${i}`);
  }

  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, from) => echo.send(m, from.port, from.address));
  await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
  const client = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  const control = net.connect({ port, host: '127.0.0.1' });
  control.on('error', () => undefined);
  try {
    const got: Buffer[] = [];
    const replies = new Promise<Buffer>((resolve) =>
      control.on('data', (d: Buffer) => {
        got.push(d);
        const all = Buffer.concat(got);
        if (all.length >= 12) resolve(all);
      }),
    );
    const declared = Buffer.from([5, 3, 0, 1, 127, 0, 0, 1, 0, 0]);
    declared.writeUInt16BE((client.address() as AddressInfo).port, 8);
    control.write(Buffer.concat([Buffer.from([5, 1, 0]), declared]));
    const answer = await guard(replies, 'the UDP ASSOCIATE reply');
    assert.deepEqual([...answer.subarray(0, 4)], [5, 0, 5, 0]);
    const relay = answer.readUInt16BE(10);
    const datagram = Buffer.from([0, 0, 0, 1, 127, 0, 0, 1, 0, 0, ...Buffer.from('hi')]);
    datagram.writeUInt16BE((echo.address() as AddressInfo).port, 8);
    const back = guard(new Promise<Buffer>((resolve) => client.once('message', resolve)), 'the echoed datagram');
    client.send(datagram, relay, '127.0.0.1');
    assert.equal((await back).subarray(10).toString(), 'hi');
  } finally {
    control.destroy();
    client.close();
    echo.close();
  }
});
