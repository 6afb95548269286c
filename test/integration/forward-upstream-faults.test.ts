/**
 * Destination faults through the forward proxy (EDGE-CASES 30-32), whose plain-HTTP requests go
 * through Switchboard's own HTTP/1.1 client (transport/h1-client.ts): invalid responses are a 502
 * UPSTREAM_BAD_RESPONSE and the connection to the destination is dropped; a destination that dies
 * mid-body leaves the client an aborted response; 1xx, 304, HEAD, chunked with trailers and
 * close-delimited bodies are relayed and re-framed; a good connection is reused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { guard } from './helpers/guard.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { forwardConfig } from './helpers/forward.ts';
import { rawRequest } from './helpers/raw.ts';

const GUARD_MS = 10_000;

/** A raw destination that answers each request head with `answer(head)`; counts connections; `closed` resolves when one closes. */
async function rawDestination(answer: (head: string, socket: net.Socket) => string | Buffer | undefined) {
  let connections = 0;
  const heads: string[] = [];
  let onClose!: () => void;
  const closed = new Promise<void>((resolve) => (onClose = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    let buf = '';
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      onClose();
    });
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      let end = buf.indexOf('\r\n\r\n');
      while (end !== -1) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        heads.push(head);
        const out = answer(head, socket);
        if (out !== undefined) socket.write(out);
        end = buf.indexOf('\r\n\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    heads,
    closed,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function withProxy(fn: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await startTestGateway(forwardConfig(), 'proxy');
  try {
    await fn(gw);
  } finally {
    await gw.stop();
  }
}

/** One absolute-form request on its own connection, which the proxy closes after the answer. */
function ask(gw: TestGateway, port: number, method = 'GET', path = '/x') {
  return rawRequest(gw.port, `${method} http://127.0.0.1:${port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, GUARD_MS);
}

test('forward: an invalid destination response is a 502 UPSTREAM_BAD_RESPONSE, and that connection is dropped (EDGE-CASES 31)', async (t) => {
  const garbage: Record<string, string> = {
    'two Content-Length headers': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'Transfer-Encoding with Content-Length': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'NUL in a header value': 'HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\nok',
    'bad status line': 'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok',
    'obs-fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok',
    'not HTTP at all': 'SSH-2.0-OpenSSH_9.6\r\n\r\n',
  };
  await withProxy(async (gw) => {
    for (const [name, bytes] of Object.entries(garbage)) {
      await t.test(name, async () => {
        const d = await rawDestination(() => bytes);
        try {
          const r = await ask(gw, d.port);
          assert.equal(r.status, 502);
          assert.match(r.text, /"code":"UPSTREAM_BAD_RESPONSE"/);
          // The destination never closes: the proxy must drop the connection it cannot trust.
          await guard(d.closed, 'the proxy closes the destination connection', GUARD_MS);
        } finally {
          await d.close();
        }
      });
    }
  });
});

test("forward: a bad chunk size after a good head: the client's response is cut, never completed; the connection is dropped (EDGE-CASES 31)", async () => {
  const d = await rawDestination(() => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nxyz\r\nmore\r\n0\r\n\r\n');
  await withProxy(async (gw) => {
    const r = await ask(gw, d.port);
    assert.ok(r.closedByServer, 'the proxy closes the client connection');
    // The head may or may not have gone out; the chunked terminator never does.
    assert.ok(r.status === 0 || r.status === 200, `status ${r.status}`);
    assert.doesNotMatch(r.text, /\r\n0\r\n\r\n$/, 'no chunked terminator');
    await guard(d.closed, 'the proxy closes the destination connection', GUARD_MS);
  });
  await d.close();
});

test('forward: bytes beyond Content-Length are an invalid response: 502, and the connection is not reused (EDGE-CASES 31)', async () => {
  const d = await rawDestination((head) =>
    head.includes('/extra') ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  );
  await withProxy(async (gw) => {
    const r = await ask(gw, d.port, 'GET', '/extra');
    assert.equal(r.status, 502);
    assert.match(r.text, /"code":"UPSTREAM_BAD_RESPONSE"/);
    await guard(d.closed, 'the proxy closes the destination connection', GUARD_MS);
    assert.equal((await ask(gw, d.port)).status, 200);
    assert.equal(d.connections, 2);
  });
  await d.close();
});

test('forward: a destination that dies mid-body leaves the client an aborted response, never a clean short one (EDGE-CASES 30)', async () => {
  const d = await rawDestination((_h, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part');
    return undefined;
  });
  await withProxy(async (gw) => {
    const r = await ask(gw, d.port);
    assert.equal(r.status, 200);
    assert.ok(r.closedByServer);
    assert.match(r.text, /first part$/);
    // The client was promised 100 bytes and gets fewer before the close: it knows the response is cut.
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    assert.ok(body.length < 100);
  });
  await d.close();
});

test('forward: 103, 304, HEAD, chunked with trailers and close-delimited bodies are relayed and re-framed; keep-alive reused (EDGE-CASES 32)', async () => {
  const d = await rawDestination((head, socket) => {
    const path = /^\w+ (\S+)/.exec(head)?.[1];
    if (path === '/hints') return 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints';
    if (path === '/304') return 'HTTP/1.1 304 Not Modified\r\nETag: "a"\r\nContent-Length: 99\r\n\r\n';
    if (head.startsWith('HEAD')) return 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n';
    if (path === '/chunked') return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n3\r\ndef\r\n0\r\nX-T: 1\r\n\r\n';
    if (path === '/close') {
      socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close');
      return undefined;
    }
    return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  });
  await withProxy(async (gw) => {
    const hints = await ask(gw, d.port, 'GET', '/hints');
    assert.match(hints.text, /^HTTP\/1\.1 103 Early Hints\r\n/);
    assert.match(hints.text, /\r\nHTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhints$/);
    const nm = await ask(gw, d.port, 'GET', '/304');
    assert.equal(nm.status, 304);
    assert.match(nm.text, /\r\netag: "a"\r\n/i);
    assert.ok(nm.text.endsWith('\r\n\r\n'), 'no body after a 304');
    const head = await ask(gw, d.port, 'HEAD', '/h');
    assert.equal(head.status, 200);
    assert.match(head.text, /\r\ncontent-length: 1234\r\n/i);
    assert.ok(head.text.endsWith('\r\n\r\n'), 'no body after a HEAD response');
    const chunked = await ask(gw, d.port, 'GET', '/chunked');
    assert.equal(chunked.status, 200);
    assert.match(chunked.text, /\r\ntransfer-encoding: chunked\r\n/i);
    assert.match(chunked.text, /abc/);
    assert.match(chunked.text, /def/);
    assert.match(chunked.text, /\r\n0\r\nx-t: 1\r\n\r\n$/i);
    // Every answer so far came on one connection to the destination: each response left it clean.
    assert.equal(d.connections, 1);
    const close = await ask(gw, d.port, 'GET', '/close');
    assert.equal(close.status, 200);
    assert.match(close.text, /until the close/);
    assert.ok(/\r\ntransfer-encoding: chunked\r\n/i.test(close.text) || /\r\ncontent-length: 15\r\n/i.test(close.text), 're-framed for the client');
  });
  await d.close();
});
