/**
 * The own HTTP/1.1 server's response writing (h1-server.ts `H1Exchange`), with a host that answers
 * as each test says, on 127.0.0.1 port 0, read by a raw socket: framing by status, method and
 * version, the connection fields, 1xx, trailers, and what it refuses to write.
 * (Through a real gateway: test/integration/h1-server.test.ts.)
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { H1Connections, type H1Exchange, type H1Host } from './h1-server.ts';

let answer: (ex: H1Exchange) => void = () => undefined;
let closed: boolean[] = [];
const host: H1Host = {
  settings: { maxHeaderSize: 16384, headerTimeout: 5000, requestTimeout: 10000, keepAliveTimeout: 5000, maxRequestsPerConnection: 0 },
  start(ex) {
    ex.attach({ status: 0, bytesOut: 0, draining: false, closed: (complete) => closed.push(complete) });
    answer(ex);
  },
  upgrade(req) {
    req.socket.destroy();
  },
};
const own = new H1Connections();
const server = net.createServer({ allowHalfOpen: true }, (socket) => own.serve(socket, host));
let port = 0;

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});
after(() => {
  own.closeAll();
  server.close();
});

/** Sends `request`, returns everything until the server closes (every request here ends with `Connection: close` or a close). */
function exchange(request: string): Promise<string> {
  return new Promise((resolve) => {
    closed = [];
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
    socket.write(request);
  });
}

const GET = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

test('no Content-Length: chunked for HTTP/1.1 with trailers after the last chunk; the exchange ends complete', async () => {
  answer = (ex) => {
    ex.head(200, undefined, ['x-a', 'b']);
    ex.data(Buffer.from('hello'));
    ex.end({ 'x-checksum': 'abc' });
  };
  const text = await exchange(GET);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /\r\nTransfer-Encoding: chunked\r\n/);
  assert.match(text, /\r\nConnection: close\r\n/);
  assert.match(text, /\r\nDate: [A-Z][a-z]{2}, /);
  assert.ok(text.endsWith('\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n'), JSON.stringify(text));
  assert.deepEqual(closed, [true]);
});

test('HTTP/1.0 and no Content-Length: the body ends with the connection, no chunked framing, no trailers', async () => {
  answer = (ex) => {
    ex.head(200, undefined, []);
    ex.data(Buffer.from('hello'));
    ex.end({ 'x-checksum': 'abc' });
  };
  const text = await exchange('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.doesNotMatch(text, /Transfer-Encoding/i);
  assert.match(text, /\r\nConnection: close\r\n/);
  assert.ok(text.endsWith('\r\n\r\nhello'), JSON.stringify(text));
});

test('HEAD, 204 and 304: no body bytes and no chunked framing, Content-Length kept', async () => {
  for (const [request, status] of [
    ['HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 200],
    [GET, 204],
    [GET, 304],
  ] as const) {
    answer = (ex) => {
      ex.head(status, undefined, status === 200 ? ['content-length', '5'] : []);
      ex.data(Buffer.from('hello'));
      ex.end(undefined);
    };
    const text = await exchange(request);
    assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `));
    assert.ok(text.endsWith('\r\n\r\n'), `${status}: ${JSON.stringify(text)}`);
    assert.doesNotMatch(text, /Transfer-Encoding/i);
    if (status === 200) assert.match(text, /\r\ncontent-length: 5\r\n/);
  }
});

test('a reason phrase that could split the status line is replaced by the standard one; a header value with CR or LF throws before anything is written', async () => {
  answer = (ex) => {
    ex.head(200, 'OK\r\nX-Injected: yes', ['content-length', '0']);
    ex.end(undefined);
  };
  const text = await exchange(GET);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.doesNotMatch(text, /X-Injected/);

  let thrown: unknown;
  answer = (ex) => {
    try {
      ex.head(200, undefined, ['x-bad', 'a\r\nX-Injected: yes']);
    } catch (err) {
      thrown = err;
    }
    ex.closeAfter();
    ex.head(500, undefined, ['content-length', '0']);
    ex.end(undefined);
  };
  const second = await exchange(GET);
  assert.equal((thrown as NodeJS.ErrnoException).code, 'ERR_INVALID_CHAR');
  assert.match(second, /^HTTP\/1\.1 500 /);
  assert.doesNotMatch(second, /X-Injected/);
});

test('the connection fields from the response are the server’s own: a Connection: close in them closes; Keep-Alive and Transfer-Encoding are not passed', async () => {
  answer = (ex) => {
    ex.head(200, undefined, ['connection', 'close', 'keep-alive', 'timeout=99', 'transfer-encoding', 'chunked', 'content-length', '2']);
    ex.data(Buffer.from('ok'));
    ex.end(undefined);
  };
  const text = await exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(text, /\r\nConnection: close\r\n/);
  assert.doesNotMatch(text, /timeout=99|Transfer-Encoding/i);
  assert.ok(text.endsWith('\r\n\r\nok'));
});

test('1xx: 100 Continue and 103 Early Hints go out before the final head, never after it, never to HTTP/1.0', async () => {
  let late: boolean | undefined;
  answer = (ex) => {
    assert.equal(ex.informational(100), true);
    assert.equal(ex.informational(103, { link: '</a.css>; rel=preload' }), true);
    ex.head(200, undefined, ['content-length', '0']);
    late = ex.informational(103, { link: '</b.css>' });
    ex.end(undefined);
  };
  const text = await exchange(GET);
  assert.ok(text.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n'), JSON.stringify(text));
  assert.equal(late, false);

  let old: boolean | undefined;
  answer = (ex) => {
    old = ex.informational(103, { link: '</a.css>' });
    ex.head(200, undefined, ['content-length', '0']);
    ex.end(undefined);
  };
  assert.match(await exchange('GET / HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 /);
  assert.equal(old, false);
});
