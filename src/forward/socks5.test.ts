import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeAddress, encodeReply, encodeUdpHeader, isFault, type Parsed, parseCredentials, parseGreeting, parseRequest, parseUdpHeader, REP } from './socks5.ts';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);
const name = (n: string, port: number): Buffer => {
  const out = Buffer.concat([b(3, n.length), Buffer.from(n, 'latin1'), b(0, 0)]);
  out.writeUInt16BE(port, out.length - 2);
  return out;
};

/** Every proper prefix of a complete message is incomplete (TCP may deliver a byte at a time). */
function prefixesIncomplete<T>(parse: (x: Buffer) => Parsed<T>, whole: Buffer): void {
  for (let i = 0; i < whole.length; i++) assert.equal(parse(whole.subarray(0, i)), undefined, `prefix of ${i} bytes`);
}

test('greeting: methods; incomplete prefixes; faults', () => {
  const whole = b(5, 2, 0, 2);
  prefixesIncomplete(parseGreeting, whole);
  assert.deepEqual(parseGreeting(Buffer.concat([whole, b(1, 9)])), { value: [0, 2], length: 4 }, 'bytes past it are left');
  for (const bad of [b(4), b(5, 0)]) assert.ok(isFault(parseGreeting(bad)), bad.toString('hex'));
});

test('credentials (RFC 1929): UTF-8 fields, an empty password allowed, an empty username or another version a fault', () => {
  const user = Buffer.from('zoë');
  const whole = Buffer.concat([b(1, user.length), user, b(3), Buffer.from('p:w')]);
  prefixesIncomplete(parseCredentials, whole);
  assert.deepEqual(parseCredentials(whole), { value: { user: 'zoë', password: 'p:w' }, length: whole.length });
  assert.deepEqual(parseCredentials(b(1, 1, 97, 0)), { value: { user: 'a', password: '' }, length: 4 });
  assert.ok(isFault(parseCredentials(b(1, 0, 1, 97))));
  assert.ok(isFault(parseCredentials(b(5, 1, 97, 1, 97))));
});

test('request: IPv4, IPv6 (RFC 5952 text), names (lower-cased, trailing dot dropped); faults carry their reply', () => {
  const cases: Array<[Buffer, string, number]> = [
    [b(5, 1, 0, 1, 10, 0, 0, 1, 1, 187), '10.0.0.1', 443],
    [Buffer.concat([b(5, 1, 0, 4), Buffer.from('20010db8000000000000000000000001', 'hex'), b(0, 80)]), '2001:db8::1', 80],
    [Buffer.concat([b(5, 1, 0, 4), Buffer.alloc(15), b(1, 0, 22)]), '::1', 22],
    [Buffer.concat([b(5, 1, 0, 4), Buffer.from('00000000000000000000ffff7f000001', 'hex'), b(0, 80)]), '::ffff:127.0.0.1', 80],
    [Buffer.concat([b(5, 3, 0), name('Example.COM.', 53)]), 'example.com', 53],
    [Buffer.concat([b(5, 1, 0), name('0x7f.1', 80)]), '0x7f.1', 80],
  ];
  for (const [bytes, host, port] of cases) {
    prefixesIncomplete(parseRequest, bytes);
    const p = parseRequest(bytes);
    assert.ok(p !== undefined && !isFault(p), host);
    assert.deepEqual(p.value.destination, { host, port });
    assert.equal(p.length, bytes.length);
  }
  const faults: Array<[Buffer, number | undefined]> = [
    [b(4, 1, 0, 1, 1, 2, 3, 4, 0, 80), REP.generalFailure],
    [b(5, 1, 1, 1, 1, 2, 3, 4, 0, 80), REP.generalFailure],
    [b(5, 1, 0, 2, 1, 2, 3, 4, 0, 80), REP.addressTypeNotSupported],
    [b(5, 1, 0, 3, 0, 0, 80), REP.hostUnreachable],
    [Buffer.concat([b(5, 1, 0), name('a b', 80)]), REP.hostUnreachable],
    [Buffer.concat([b(5, 1, 0), name('a\0b', 80)]), REP.hostUnreachable],
    [Buffer.concat([b(5, 1, 0), name('[::1]', 80)]), REP.hostUnreachable],
    [Buffer.concat([b(5, 1, 0), name('a..b', 80)]), REP.hostUnreachable],
  ];
  for (const [bytes, reply] of faults) {
    const p = parseRequest(bytes);
    assert.ok(isFault(p), bytes.toString('hex'));
    assert.equal(p.reply, reply, bytes.toString('hex'));
  }
});

test('replies and addresses encode as RFC 1928 §6 says; IPv4-mapped addresses go as IPv4', () => {
  assert.deepEqual([...encodeReply(REP.notAllowed)], [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeReply(0, { host: '::ffff:127.0.0.1', port: 1080 })], [5, 0, 0, 1, 127, 0, 0, 1, 4, 56]);
  assert.deepEqual([...encodeAddress('2001:db8::1', 80)], [4, 0x20, 1, 0x0d, 0xb8, ...Array(11).fill(0), 1, 0, 80]);
  assert.deepEqual([...encodeAddress('::', 1)], [4, ...Array(16).fill(0), 0, 1]);
  assert.deepEqual([...encodeAddress('a.example', 2)], [3, 9, ...Buffer.from('a.example'), 0, 2]);
  for (const host of ['10.1.2.3', '2001:db8::1', 'fe80::1:2', 'x.example']) {
    const req = Buffer.concat([b(5, 1, 0), encodeAddress(host, 9)]);
    assert.deepEqual((parseRequest(req) as { value: { destination: unknown } }).value.destination, { host, port: 9 }, 'round trip');
  }
});

test('UDP header: destination and data offset; short, reserved-byte and address faults; the reply header', () => {
  const d = Buffer.concat([b(0, 0, 0, 1, 127, 0, 0, 1, 0, 53), Buffer.from('q')]);
  assert.deepEqual(parseUdpHeader(d), { frag: 0, destination: { host: '127.0.0.1', port: 53 }, dataOffset: 10 });
  assert.equal((parseUdpHeader(Buffer.concat([b(0, 0, 3), d.subarray(3)])) as { frag: number }).frag, 3);
  for (const bad of [b(0, 0, 0), b(0, 1, 0, 1, 1, 2, 3, 4, 0, 1), b(0, 0, 0, 1, 1, 2), b(0, 0, 0, 7, 1, 2, 3, 4, 0, 1)]) {
    assert.ok('fault' in parseUdpHeader(bad), bad.toString('hex'));
  }
  assert.deepEqual([...encodeUdpHeader({ host: '127.0.0.1', port: 53 })], [0, 0, 0, 1, 127, 0, 0, 1, 0, 53]);
});
