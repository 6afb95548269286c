import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeProxyV1, encodeProxyV2, parseProxyHeader, type ParseResult, type ProxyAddresses } from './proxy-protocol.ts';

const text = (s: string): Buffer => Buffer.from(s, 'latin1');
const bytes = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const SIG = '0d0a0d0a 000d0a51 5549540a';
const MAX6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

/** The spec's TCP4 example, as a v2 header written out byte by byte. */
const V2_TCP4 = bytes(`${SIG} 21 11 000c  c0a80001 c0a8000b  dc04 01bb`);
/** TCP6 with an IPv4-mapped destination and a PP2_TYPE_AUTHORITY TLV "example.com". */
const V2_TCP6_TLV = bytes(`${SIG} 21 21 0032
  20010db8 00000000 00000000 00000001  00000000 00000000 0000ffff 7f000001  1f90 0050
  02 000b ${Buffer.from('example.com').toString('hex')}`);
const V2_LOCAL = bytes(`${SIG} 20 00 0000`);

function ok(result: ParseResult): Extract<ParseResult, { kind: 'ok' }> {
  assert.equal(result.kind, 'ok', JSON.stringify(result));
  return result as Extract<ParseResult, { kind: 'ok' }>;
}

function assertInvalid(buf: Buffer, name: string): void {
  const result = parseProxyHeader(buf);
  assert.equal(result.kind, 'invalid', `${name}: ${JSON.stringify(result)}`);
  if (result.kind === 'invalid') assert.ok(result.reason.length > 0, name);
}

const v1Cases: ProxyAddresses[] = [
  { family: 'tcp4', sourceAddress: '192.168.0.1', destinationAddress: '192.168.0.11', sourcePort: 56324, destinationPort: 443 },
  { family: 'tcp4', sourceAddress: '0.0.0.0', destinationAddress: '255.255.255.255', sourcePort: 0, destinationPort: 65535 },
  { family: 'tcp6', sourceAddress: '2001:db8::1', destinationAddress: '::1', sourcePort: 1, destinationPort: 2 },
  { family: 'tcp6', sourceAddress: '::ffff:1.2.3.4', destinationAddress: MAX6, sourcePort: 65535, destinationPort: 65535 },
  { family: 'unknown' },
];

test('v1 round trips tcp4, tcp6 and unknown', () => {
  for (const a of v1Cases) {
    const header = encodeProxyV1(a);
    const result = ok(parseProxyHeader(header));
    assert.deepEqual(result, { kind: 'ok', version: 1, command: 'proxy', addresses: a, headerLength: header.length });
  }
});

test('v1 encodes families it cannot carry as UNKNOWN', () => {
  for (const family of ['udp4', 'udp6', 'unix', 'unixgram', 'unknown'] as const) {
    assert.equal(encodeProxyV1({ family, sourceAddress: '/run/a.sock' }).toString(), 'PROXY UNKNOWN\r\n');
  }
});

const v2Cases: ProxyAddresses[] = [
  ...v1Cases.slice(0, 4),
  { family: 'udp4', sourceAddress: '10.0.0.1', destinationAddress: '10.0.0.2', sourcePort: 53, destinationPort: 5353 },
  { family: 'udp6', sourceAddress: 'fe80::1', destinationAddress: '::ffff:10.0.0.2', sourcePort: 53, destinationPort: 5353 },
  { family: 'unix', sourceAddress: '', destinationAddress: '/run/switchboard/lb.sock' },
  { family: 'unixgram', sourceAddress: '\0abstract', destinationAddress: `/${'p'.repeat(107)}` },
  { family: 'unknown' },
];
const TLVS = [
  { type: 0x01, value: Buffer.from('h2') },
  { type: 0x02, value: Buffer.from('example.com') },
  { type: 0x04, value: Buffer.alloc(0) },
  { type: 0xea, value: Buffer.alloc(1000, 7) },
];

test('v2 round trips every family, with and without TLVs', () => {
  for (const a of v2Cases) {
    for (const tlvs of [[], TLVS]) {
      const header = encodeProxyV2(a, { tlvs });
      const result = ok(parseProxyHeader(header));
      assert.deepEqual(result, { kind: 'ok', version: 2, command: 'proxy', addresses: a, headerLength: header.length, tlvs });
    }
  }
});

test('v2 LOCAL round trips with the addresses ignored', () => {
  const header = encodeProxyV2(v2Cases[0], { command: 'local' });
  assert.deepEqual(header, V2_LOCAL);
  assert.deepEqual(parseProxyHeader(header), {
    kind: 'ok',
    version: 2,
    command: 'local',
    addresses: { family: 'unknown' },
    headerLength: 16,
  });
});

test('parses the known-good vectors of the spec and hand-built v2 headers', () => {
  const spec4 = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
  assert.deepEqual(ok(parseProxyHeader(text(spec4))).addresses, v1Cases[0]);
  assert.equal(encodeProxyV1(v1Cases[0]).toString(), spec4);

  const spec6 = `PROXY TCP6 ${MAX6} ${MAX6} 65535 65535\r\n`;
  assert.deepEqual(ok(parseProxyHeader(text(spec6))).addresses, {
    family: 'tcp6',
    sourceAddress: MAX6,
    destinationAddress: MAX6,
    sourcePort: 65535,
    destinationPort: 65535,
  });
  assert.deepEqual(ok(parseProxyHeader(text('PROXY UNKNOWN\r\n'))), {
    kind: 'ok',
    version: 1,
    command: 'proxy',
    addresses: { family: 'unknown' },
    headerLength: 15,
  });
  // The spec's worst case: exactly 107 bytes, everything after UNKNOWN ignored.
  const worst = text(`PROXY UNKNOWN ${MAX6} ${MAX6} 65535 65535\r\n`);
  assert.equal(worst.length, 107);
  assert.deepEqual(ok(parseProxyHeader(worst)).addresses, { family: 'unknown' });

  assert.deepEqual(ok(parseProxyHeader(V2_TCP4)), { kind: 'ok', version: 2, command: 'proxy', addresses: v1Cases[0], headerLength: 28, tlvs: [] });
  assert.deepEqual(encodeProxyV2(v1Cases[0]), V2_TCP4);

  const tcp6 = { family: 'tcp6', sourceAddress: '2001:db8::1', destinationAddress: '::ffff:127.0.0.1', sourcePort: 8080, destinationPort: 80 };
  const tlvs = [{ type: 0x02, value: Buffer.from('example.com') }];
  assert.deepEqual(ok(parseProxyHeader(V2_TCP6_TLV)), { kind: 'ok', version: 2, command: 'proxy', addresses: tcp6, headerLength: 66, tlvs });
  assert.deepEqual(encodeProxyV2({ ...tcp6, family: 'tcp6' }, { tlvs }), V2_TCP6_TLV);

  // PROXY with UNSPEC: no addresses, the whole block is TLVs.
  assert.deepEqual(ok(parseProxyHeader(bytes(`${SIG} 21 00 0003 01 0000`))).tlvs, [{ type: 1, value: Buffer.alloc(0) }]);
});

test('v1 addresses come back in canonical form', () => {
  const result = ok(parseProxyHeader(text('PROXY TCP6 2001:DB8:0:0:0:0:0:1 0:0:0:0:0:ffff:7f00:1 1 2\r\n')));
  assert.equal(result.addresses.sourceAddress, '2001:db8::1');
  assert.equal(result.addresses.destinationAddress, '::ffff:127.0.0.1');
});

const validHeaders: [string, Buffer][] = [
  ['v1 tcp4', text('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n')],
  ['v1 tcp6', encodeProxyV1(v1Cases[3])],
  ['v1 unknown', text('PROXY UNKNOWN\r\n')],
  ['v1 unknown, 107 bytes', text(`PROXY UNKNOWN ${MAX6} ${MAX6} 65535 65535\r\n`)],
  ['v2 tcp4', V2_TCP4],
  ['v2 tcp6 with TLV', V2_TCP6_TLV],
  ['v2 unix with TLVs', encodeProxyV2(v2Cases[6], { tlvs: TLVS })],
  ['v2 local', V2_LOCAL],
];

test('every proper prefix of a valid header is incomplete', () => {
  for (const [name, header] of validHeaders) {
    for (let n = 0; n < header.length; n++) {
      assert.deepEqual(parseProxyHeader(header.subarray(0, n)), { kind: 'incomplete' }, `${name}, ${n} bytes`);
    }
    assert.equal(ok(parseProxyHeader(header)).headerLength, header.length, name);
  }
});

test('headerLength ends at the header and leaves what follows to the caller', () => {
  const payloads = [text('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), text('\r\n'), text('PROXY UNKNOWN\r\n'), V2_TCP4, Buffer.alloc(70000, 1)];
  for (const [name, header] of validHeaders) {
    for (const payload of payloads) {
      const buf = Buffer.concat([header, payload]);
      const result = ok(parseProxyHeader(buf));
      assert.equal(result.headerLength, header.length, name);
      assert.deepEqual(buf.subarray(result.headerLength), payload, name);
    }
  }
});

test('rejects malformed v1 headers', () => {
  const cases: [string, string][] = [
    ['not a header', 'GET / HTTP/1.1\r\n'],
    ['lower-case signature', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['no space after PROXY', 'PROXY\r\n'],
    ['unknown family', 'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['lower-case family', 'PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['UNKNOWN with a suffix', 'PROXY UNKNOWNX\r\n'],
    ['octet over 255', 'PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n'],
    ['leading zero in an octet', 'PROXY TCP4 010.1.1.1 5.6.7.8 1 2\r\n'],
    ['leading zero in the last octet', 'PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n'],
    ['three octets', 'PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n'],
    ['IPv6 under TCP4', 'PROXY TCP4 ::1 5.6.7.8 1 2\r\n'],
    ['IPv4 under TCP6', 'PROXY TCP6 1.2.3.4 ::1 1 2\r\n'],
    ['IPv6 zone index', 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'],
    ['port 65536', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'],
    ['port with a leading zero', 'PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n'],
    ['signed port', 'PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'],
    ['double space after PROXY', 'PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['double space between fields', 'PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n'],
    ['tab as separator', 'PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n'],
    ['trailing space', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'],
    ['LF only', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'],
    ['CR inside the line', 'PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n'],
    ['missing destination port', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
    ['missing everything after the family', 'PROXY TCP4\r\n'],
    ['missing family', 'PROXY \r\n'],
    ['extra field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'],
    ['control byte after UNKNOWN', 'PROXY UNKNOWN \0\r\n'],
    ['107 bytes without CRLF', `PROXY UNKNOWN ${'a'.repeat(93)}`],
    ['CRLF ending at byte 108', `PROXY UNKNOWN ${'a'.repeat(92)}\r\n`],
  ];
  for (const [name, line] of cases) assertInvalid(text(line), name);
});

test('rejects a v1 beginning as soon as it can no longer become valid', () => {
  const cases = [
    'G',
    'PROXY\t',
    'PROXY  ',
    'PROXY TCP5',
    'PROXY TCP44',
    'PROXY UNKNOWNX',
    'PROXY TCP4 256',
    'PROXY TCP4 01',
    'PROXY TCP4 1.2.3.4.',
    'PROXY TCP4 1..',
    'PROXY TCP4 1.2.3.4  ',
    'PROXY TCP6 ::g',
    'PROXY TCP6 ::1%',
    'PROXY TCP4 1.2.3.4 5.6.7.8 080',
    'PROXY TCP4 1.2.3.4 5.6.7.8 65536',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ',
    'PROXY TCP4 1.2.3.4\r',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX',
    'PROXY TCP4 1.2.3.4\n',
    'PROXY UNKNOWN \x7f',
  ];
  for (const prefix of cases) assertInvalid(text(prefix), JSON.stringify(prefix));
  const stillValid = [
    '',
    'P',
    'PROXY ',
    'PROXY T',
    'PROXY UNK',
    'PROXY UNKNOWN',
    'PROXY UNKNOWN anything at all',
    'PROXY TCP4 1.2.3.',
    'PROXY TCP6 ::ffff:1.2.',
    'PROXY TCP4 1.2.3.4 5.6.7.8 6553',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r',
    `PROXY UNKNOWN ${'a'.repeat(92)}`,
  ];
  for (const prefix of stillValid) assert.equal(parseProxyHeader(text(prefix)).kind, 'incomplete', JSON.stringify(prefix));
});

test('rejects malformed v2 headers, as soon as the bad byte arrives', () => {
  for (let i = 0; i < 12; i++) {
    const header = Buffer.from(V2_TCP4);
    header[i] ^= 0x40;
    assertInvalid(header.subarray(0, i + 1), `signature byte ${i}`);
  }
  const cases: [string, Buffer, number][] = [
    ['version 1', bytes(`${SIG} 11 11 000c`), 13],
    ['version 3', bytes(`${SIG} 31 11 000c`), 13],
    ['command 2', bytes(`${SIG} 22 11 000c`), 13],
    ['command 15', bytes(`${SIG} 2f 11 000c`), 13],
    ['transport 3', bytes(`${SIG} 21 13 000c`), 14],
    ['family 4', bytes(`${SIG} 21 41 000c`), 14],
    ['IPv4 with UNSPEC transport', bytes(`${SIG} 21 10 000c`), 14],
    ['UNSPEC family with STREAM', bytes(`${SIG} 21 01 0000`), 14],
    ['short IPv4 block', bytes(`${SIG} 21 11 000b`), 16],
    ['short IPv6 block', bytes(`${SIG} 21 21 000c`), 16],
    ['short unix block', bytes(`${SIG} 21 31 00d7`), 16],
    ['TLV value overruns', Buffer.concat([bytes(`${SIG} 21 11 0010`), V2_TCP4.subarray(16), bytes('02 0005 61')]), 32],
    ['TLV header cut short', Buffer.concat([bytes(`${SIG} 21 11 000e`), V2_TCP4.subarray(16), bytes('02 00')]), 30],
  ];
  for (const [name, header, decidedAt] of cases) {
    assertInvalid(header.subarray(0, decidedAt), name);
    assertInvalid(Buffer.concat([header, Buffer.alloc(300)]), `${name}, more bytes`);
  }
});

test('v2 LOCAL ignores the family byte and the block', () => {
  const header = bytes(`${SIG} 20 ff 0005 0102030405`);
  assert.deepEqual(parseProxyHeader(header), {
    kind: 'ok',
    version: 2,
    command: 'local',
    addresses: { family: 'unknown' },
    headerLength: 21,
  });
});

test('encoders reject what the protocol cannot carry', () => {
  const tcp4: ProxyAddresses = v1Cases[0];
  const bad: [string, () => unknown][] = [
    ['v1 IPv6 under tcp4', () => encodeProxyV1({ ...tcp4, sourceAddress: '::1' })],
    ['v1 leading zero', () => encodeProxyV1({ ...tcp4, destinationAddress: '010.0.0.1' })],
    ['v1 IPv4 under tcp6', () => encodeProxyV1({ ...tcp4, family: 'tcp6' })],
    ['v1 zone index', () => encodeProxyV1({ ...v1Cases[2], sourceAddress: 'fe80::1%eth0' })],
    ['v1 missing address', () => encodeProxyV1({ ...tcp4, sourceAddress: undefined })],
    ['v1 port 65536', () => encodeProxyV1({ ...tcp4, sourcePort: 65536 })],
    ['v1 fractional port', () => encodeProxyV1({ ...tcp4, destinationPort: 1.5 })],
    ['v1 missing port', () => encodeProxyV1({ ...tcp4, destinationPort: undefined })],
    ['v2 IPv6 under udp4', () => encodeProxyV2({ ...tcp4, family: 'udp4', sourceAddress: '::1' })],
    ['v2 negative port', () => encodeProxyV2({ ...tcp4, sourcePort: -1 })],
    ['v2 unix path of 109 bytes', () => encodeProxyV2({ family: 'unix', sourceAddress: `/${'p'.repeat(108)}` })],
    ['v2 TLV type 256', () => encodeProxyV2(tcp4, { tlvs: [{ type: 256, value: Buffer.alloc(0) }] })],
    ['v2 TLV of 65536 bytes', () => encodeProxyV2(tcp4, { tlvs: [{ type: 1, value: Buffer.alloc(65536) }] })],
    [
      'v2 block over 65535 bytes',
      () =>
        encodeProxyV2(tcp4, {
          tlvs: [
            { type: 1, value: Buffer.alloc(40000) },
            { type: 2, value: Buffer.alloc(40000) },
          ],
        }),
    ],
    ['v2 LOCAL with TLVs', () => encodeProxyV2(tcp4, { command: 'local', tlvs: TLVS })],
  ];
  for (const [name, encode] of bad) assert.throws(encode, RangeError, name);
});
