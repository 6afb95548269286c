/**
 * The SOCKS5 session's answers to the destination guard's refusals, with a guard this test
 * controls (the rules engine has its own tests): REP 0x02 for a rule's refusal, 0x04 for a name
 * that did not resolve, the access-log record naming the rule and the code, and the asks the guard
 * got (the consumer and its groups, CONNECT as `https`). Real sockets on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { resolveForward } from '../../src/config/resolve-forward.ts';
import type { Decision, DestinationGuard, ForwardAsk, Permit } from '../../src/forward/destination-guard.ts';
import type { SocksGeneration } from '../../src/forward/socks5-generation.ts';
import { serveSocks } from '../../src/forward/socks5-session.ts';
import type { ConnectionRecord } from '../../src/observability/access-log.ts';
import { Tunnels } from '../../src/transport/tunnel.ts';
import { guard } from './helpers/guard.ts';

const asks: ForwardAsk[] = [];
const controlled: DestinationGuard = {
  async check(ask: ForwardAsk): Promise<Decision> {
    asks.push(ask);
    if (ask.port === 25) return { allowed: false, rule: 'no-mail', code: 'PORT_FORBIDDEN', reason: 'port 25' };
    if (ask.host === 'nowhere.test') return { allowed: false, rule: 'resolver', code: 'DESTINATION_UNRESOLVED', reason: 'nowhere.test did not resolve' };
    return { allowed: true, rule: 'rules[0]', host: ask.host, port: ask.port, addresses: ['127.0.0.1'] };
  },
  connect(permit: Permit): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: permit.addresses[0], port: permit.port });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  },
};

/** A socks5 "listener" of one connection: serveSocks with the controlled guard and one password. */
async function serveOne(onRecord: (r: ConnectionRecord) => void): Promise<{ port: number; close(): void }> {
  const gen: SocksGeneration = {
    name: 't',
    guard: controlled,
    forward: resolveForward({}, [], '.', []),
    passwords: [
      async (user, password) =>
        user === 'alice' && password === 'pw' ? { consumer: { name: 'alice', groups: ['staff'], metadata: {} }, credential: 'alice/basic/0' } : undefined,
    ],
    generation: { enter: () => undefined, leave: () => undefined },
    drainTimeout: 0,
    tunnels: new Tunnels(),
    associations: new Set(),
    onConnectionEnd: undefined,
  };
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const record: ConnectionRecord = {
      protocol: 'socks5',
      clientIp: '127.0.0.1',
      clientPort: 0,
      listener: 't',
      upstream: undefined,
      endpoint: undefined,
      bytesIn: 0,
      bytesOut: 0,
      startedAt: 0,
      error: undefined,
    };
    void serveSocks(gen, client, { handshakeTimeout: 2000, udpHost: '127.0.0.1' }, record);
    client.once('close', () => onRecord(record));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** Sends a whole handshake and returns every byte the proxy sent until it closed. */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return guard(
    new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      s.on('error', () => undefined);
      s.once('close', () => resolve(Buffer.concat(got)));
      s.write(bytes);
    }),
    'the proxy to answer and close',
  );
}

const login = Buffer.from([5, 1, 2, 1, 5, ...Buffer.from('alice'), 2, ...Buffer.from('pw')]);
const named = (name: string, port: number): Buffer => Buffer.from([5, 1, 0, 3, name.length, ...Buffer.from(name), port >> 8, port & 255]);

test('a refusal gets REP 0x02, an unresolved name 0x04; the record names the rule and the code; the guard saw the consumer', async (t) => {
  const records: ConnectionRecord[] = [];
  let both: () => void = () => undefined;
  const logged = new Promise<void>((resolve) => (both = resolve));
  const proxy = await serveOne((r) => {
    records.push(r);
    if (records.length === 2) both();
  });
  t.after(() => proxy.close());
  const denied = await exchange(proxy.port, Buffer.concat([login, named('mail.example', 25)]));
  assert.deepEqual([...denied], [5, 2, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
  const unresolved = await exchange(proxy.port, Buffer.concat([login, named('nowhere.test', 80)]));
  assert.equal(unresolved[5], 0x04);
  await guard(logged, 'both records');
  assert.deepEqual(
    records.map((r) => [r.destination, r.rule, r.error, r.consumer]),
    [
      ['mail.example:25', 'no-mail', 'PORT_FORBIDDEN', 'alice'],
      ['nowhere.test:80', 'resolver', 'DESTINATION_UNRESOLVED', 'alice'],
    ],
  );
  assert.deepEqual(asks[0], { client: '127.0.0.1', consumer: 'alice', groups: ['staff'], method: 'CONNECT', scheme: 'https', host: 'mail.example', port: 25 });
});
