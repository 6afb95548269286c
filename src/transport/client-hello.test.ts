import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { CLIENT_HELLO_MAX_BYTES, parseClientHello, type ClientHelloResult } from './client-hello.ts';

/** The first TLS record `tls.connect(options)` writes, captured by a local server that then closes. */
async function capture(options: tls.ConnectionOptions): Promise<Buffer> {
  let got = Buffer.alloc(0);
  const server = net.createServer();
  const captured = new Promise<Buffer>((resolve) => {
    server.on('connection', (s) => {
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
          resolve(got.subarray(0, 5 + got.readUInt16BE(3)));
          s.destroy();
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...options });
  client.on('error', () => undefined);
  const hello = await captured;
  client.destroy();
  server.close();
  return hello;
}

/** A handshake message cut into records of `size` bytes of fragment. */
function records(message: Buffer, size: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < message.length; i += size) {
    const f = message.subarray(i, i + size);
    out.push(Buffer.from([22, 3, 1, f.length >> 8, f.length & 0xff]), f);
  }
  return Buffer.concat(out);
}

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

/** A synthetic ClientHello: `ext` the extensions block's content (undefined: no block at all). */
function hello(opts: { ext?: Buffer; extLength?: number; session?: number; suites?: number; type?: number; version?: number } = {}): Buffer {
  const session = opts.session ?? 0;
  const suites = opts.suites ?? 2;
  const parts = [
    Buffer.from([opts.version ?? 3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([session]),
    Buffer.alloc(Math.min(session, 40)),
    u16(suites),
    Buffer.alloc(suites, 0x13),
    Buffer.from([1, 0]),
  ];
  if (opts.ext !== undefined) parts.push(u16(opts.extLength ?? opts.ext.length), opts.ext);
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([opts.type ?? 1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
}

/** A server_name extension with the given (type, name) entries; `listLength` overrides its length. */
function sni(entries: Array<[number, string]>, listLength?: number): Buffer {
  const list = Buffer.concat(entries.map(([t, n]) => Buffer.concat([Buffer.from([t]), u16(n.length), Buffer.from(n, 'latin1')])));
  const data = Buffer.concat([u16(listLength ?? list.length), list]);
  return Buffer.concat([u16(0), u16(data.length), data]);
}

const ok = (serverName: string | undefined): ClientHelloResult => ({ kind: 'ok', serverName });
const incomplete: ClientHelloResult = { kind: 'incomplete' };
const invalid = (reason: string): ClientHelloResult => ({ kind: 'invalid', reason });

let named: Buffer;
let mixedCase: Buffer;
let nameless: Buffer;
let tls12: Buffer;

before(async () => {
  [named, mixedCase, nameless, tls12] = await Promise.all([
    capture({ servername: 'a.example.test' }),
    capture({ servername: 'Shop.B.Example.TEST' }),
    capture({}),
    capture({ servername: 'old.example.test', maxVersion: 'TLSv1.2' }),
  ]);
});

const cases: Array<{ name: string; bytes: () => Buffer; want: ClientHelloResult }> = [
  { name: 'a real ClientHello with SNI', bytes: () => named, want: ok('a.example.test') },
  { name: 'a real ClientHello, the name lower-cased', bytes: () => mixedCase, want: ok('shop.b.example.test') },
  { name: 'a real ClientHello without SNI (an IP address host)', bytes: () => nameless, want: ok(undefined) },
  { name: 'a real TLS 1.2 ClientHello', bytes: () => tls12, want: ok('old.example.test') },
  { name: 'followed by more bytes', bytes: () => Buffer.concat([named, Buffer.from([23, 3, 3, 0, 1, 0])]), want: ok('a.example.test') },
  { name: 'spread over records of 100 bytes', bytes: () => records(named.subarray(5), 100), want: ok('a.example.test') },
  {
    name: 'spread over 1-byte records',
    bytes: () => records(hello({ ext: Buffer.concat([sni([[0, 'x.io']]), u16(21), u16(100), Buffer.alloc(100)]) }), 1),
    want: invalid('ClientHello over more than 64 records'),
  },
  { name: 'no extensions block', bytes: () => records(hello(), 512), want: ok(undefined) },
  {
    name: 'a non-host_name entry skipped',
    bytes: () =>
      records(
        hello({
          ext: sni([
            [7, 'zz'],
            [0, 'h.example'],
          ]),
        }),
        512,
      ),
    want: ok('h.example'),
  },
  { name: 'HTTP instead of TLS', bytes: () => Buffer.from('GET / HTTP/1.1\r\n'), want: invalid('not a TLS handshake record') },
  { name: 'one wrong byte is enough', bytes: () => Buffer.from([0x16, 0x02]), want: invalid('not a TLS record version') },
  { name: 'an empty record', bytes: () => Buffer.from([22, 3, 1, 0, 0]), want: invalid('bad record length 0') },
  { name: 'a record too long', bytes: () => Buffer.from([22, 3, 1, 0x50, 0]), want: invalid('bad record length 20480') },
  { name: 'not a ClientHello', bytes: () => records(hello({ type: 2 }), 512), want: invalid('not a ClientHello') },
  { name: 'not a ClientHello, told by its first byte', bytes: () => Buffer.from([22, 3, 1, 0, 200, 2]), want: invalid('not a ClientHello') },
  { name: 'a ClientHello over the cap', bytes: () => Buffer.from([22, 3, 1, 0, 4, 1, 0, 0x40, 0]), want: invalid('ClientHello too large') },
  { name: 'a bad ClientHello version', bytes: () => records(hello({ version: 2 }), 512), want: invalid('not a TLS ClientHello version') },
  { name: 'session id too long', bytes: () => records(hello({ session: 33 }), 512), want: invalid('session id longer than 32 bytes') },
  { name: 'odd cipher suites length', bytes: () => records(hello({ suites: 3 }), 512), want: invalid('bad cipher suites length') },
  {
    name: 'extensions length past the end',
    bytes: () => records(hello({ ext: sni([[0, 'a.io']]), extLength: 200 }), 512),
    want: invalid('length past its enclosing block'),
  },
  {
    name: 'bytes after the extensions',
    bytes: () => records(hello({ ext: Buffer.concat([sni([[0, 'a.io']]), Buffer.from([0])]), extLength: 13 }), 512),
    want: invalid('bytes after the extensions'),
  },
  { name: 'server_name list length wrong', bytes: () => records(hello({ ext: sni([[0, 'a.io']], 3) }), 512), want: invalid('bad server_name extension') },
  {
    name: 'two host names',
    bytes: () =>
      records(
        hello({
          ext: sni([
            [0, 'a.io'],
            [0, 'b.io'],
          ]),
        }),
        512,
      ),
    want: invalid('two host names'),
  },
  { name: 'server_name twice', bytes: () => records(hello({ ext: Buffer.concat([sni([[0, 'a.io']]), sni([[0, 'a.io']])]) }), 512), want: invalid('extension 0 twice') },
  { name: 'a host name with a space', bytes: () => records(hello({ ext: sni([[0, 'a b.io']]) }), 512), want: invalid('bad host name') },
  { name: 'an empty host name', bytes: () => records(hello({ ext: sni([[0, '']]) }), 512), want: invalid('bad host name') },
];

for (const c of cases) {
  test(`parseClientHello: ${c.name}`, () => {
    assert.deepEqual(parseClientHello(c.bytes()), c.want);
  });
}

test('parseClientHello: every prefix of a complete ClientHello is incomplete', () => {
  for (const whole of [named, records(named.subarray(5), 100)]) {
    const end = whole.length;
    for (let n = 0; n < end; n++) assert.deepEqual(parseClientHello(whole.subarray(0, n)), incomplete, `${n} of ${end} bytes`);
  }
});

test('parseClientHello: the cap is the handshake message, records headers aside', () => {
  const ext = Buffer.concat([u16(21), u16(CLIENT_HELLO_MAX_BYTES - 200), Buffer.alloc(CLIENT_HELLO_MAX_BYTES - 200)]); // padding
  const message = hello({ ext: Buffer.concat([sni([[0, 'big.example']]), ext]) });
  assert.ok(message.length <= CLIENT_HELLO_MAX_BYTES, `${message.length}`);
  assert.deepEqual(parseClientHello(records(message, 16384)), ok('big.example'));
  const over = hello({ ext: Buffer.concat([sni([[0, 'big.example']]), u16(21), u16(CLIENT_HELLO_MAX_BYTES), Buffer.alloc(CLIENT_HELLO_MAX_BYTES)]) });
  assert.deepEqual(parseClientHello(records(over, 16384)), invalid('ClientHello too large'));
});
