import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { after, describe, test } from 'node:test';
import { createPki } from '../../test/integration/helpers/certs.ts';
import type { Dispatcher } from 'undici';
import { upstreamError } from '../errors.ts';
import { H1Agent } from './h1-client.ts';

/** A raw origin: `answer` gets each request head (and body, when it has a length or is chunked) and returns the bytes to write. */
interface Raw {
  origin: string;
  /** Connections accepted so far. */
  connections: number;
  /** Request heads seen, in order. */
  heads: string[];
  /** Request bodies seen (raw bytes after the head), in order. */
  bodies: Buffer[];
  /** Resolves when a connection closes. */
  closed: () => Promise<void>;
  server: net.Server;
}

type Answer = (head: string, socket: net.Socket, n: number) => string | Buffer | undefined | Promise<string | Buffer | undefined>;

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function rawOrigin(answer: Answer): Promise<Raw> {
  const waiters: (() => void)[] = [];
  const raw: Raw = {
    origin: '',
    connections: 0,
    heads: [],
    bodies: [],
    closed: () => new Promise((resolve) => waiters.push(resolve)),
    server: undefined as unknown as net.Server,
  };
  const server = net.createServer((socket) => {
    raw.connections++;
    let buf = Buffer.alloc(0);
    socket.on('close', () => {
      for (const w of waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
    socket.on('data', async (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.subarray(0, end + 4).toString('latin1');
        let bodyEnd = end + 4;
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        if (cl) {
          bodyEnd += Number(cl[1]);
          if (buf.length < bodyEnd) return;
        } else if (/transfer-encoding: chunked/i.test(head)) {
          const last = buf.indexOf('0\r\n\r\n', end + 4);
          if (last === -1) return;
          bodyEnd = last + 5;
        }
        raw.heads.push(head);
        raw.bodies.push(buf.subarray(end + 4, bodyEnd));
        buf = buf.subarray(bodyEnd);
        const out = await answer(head, socket, raw.heads.length);
        if (out !== undefined && !socket.destroyed) socket.write(out);
      }
    });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  raw.origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  raw.server = server;
  return raw;
}

interface Outcome {
  started: boolean;
  informational: number[];
  status?: number;
  reason?: string;
  headers?: Record<string, string | string[]>;
  body: Buffer;
  trailers?: Record<string, string | string[]>;
  error?: Error & { code?: string };
}

type Hooks = {
  onStart?: (c: Dispatcher.DispatchController) => void;
  onData?: (c: Dispatcher.DispatchController, chunk: Buffer) => void;
};

function send(agent: H1Agent, origin: string, opts: Partial<Dispatcher.DispatchOptions> = {}, hooks: Hooks = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { started: false, informational: [], body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    agent.dispatch(
      { origin, path: '/', method: 'GET', headers: ['host', 'example.test'], body: null, headersTimeout: 10_000, bodyTimeout: 10_000, ...opts },
      {
        onRequestStart() {
          out.started = true;
        },
        onResponseStart(c, status, headers, reason) {
          if (status < 200) {
            out.informational.push(status);
            return;
          }
          out.status = status;
          out.reason = reason;
          out.headers = headers as Record<string, string | string[]>;
          hooks.onStart?.(c);
        },
        onResponseData(c, chunk) {
          chunks.push(chunk);
          hooks.onData?.(c, chunk);
        },
        onResponseEnd(_c, trailers) {
          out.body = Buffer.concat(chunks);
          out.trailers = trailers as Record<string, string | string[]>;
          resolve(out);
        },
        onResponseError(_c, err) {
          out.body = Buffer.concat(chunks);
          out.error = err;
          resolve(out);
        },
      },
    );
  });
}

/** The agent most tests use: long keep-alive, a 1 s connect timeout; `opts` adds to it. */
const newAgent = (opts: Partial<ConstructorParameters<typeof H1Agent>[0]> = {}): H1Agent => new H1Agent({ keepAliveTimeout: 10_000, connectTimeout: 1000, ...opts });

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('H1Agent: the own HTTP/1.1 client', () => {
  test('keep-alive: sequential requests to one origin share one connection; the head is written as given', async () => {
    const o = await rawOrigin(() => ok('hello', 'x-a: 1\r\nx-a: 2\r\nSet-Cookie: a=1\r\n'));
    const agent = newAgent();
    for (let i = 0; i < 3; i++) {
      const r = await send(agent, o.origin, { path: `/p${i}?q=1`, headers: ['host', 'example.test', 'X-Custom', 'v'] });
      assert.equal(r.error, undefined);
      assert.equal(r.status, 200);
      assert.equal(r.reason, 'OK');
      assert.equal(r.body.toString(), 'hello');
      assert.deepEqual(r.headers?.['x-a'], ['1', '2']);
      assert.equal(r.headers?.['set-cookie'], 'a=1');
    }
    assert.equal(o.connections, 1);
    assert.equal(o.heads[2], 'GET /p2?q=1 HTTP/1.1\r\nhost: example.test\r\nX-Custom: v\r\nconnection: keep-alive\r\n\r\n');
    await agent.close();
  });

  test('a request without Host gets the origin as Host; POST without a body sends content-length: 0', async () => {
    const o = await rawOrigin(() => ok(''));
    const agent = newAgent();
    const r = await send(agent, o.origin, { method: 'POST', headers: [] });
    assert.equal(r.status, 200);
    assert.equal(o.heads[0], `POST / HTTP/1.1\r\nhost: ${o.origin.slice(7)}\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n`);
    await agent.close();
  });

  test('chunked responses are de-chunked, chunk extensions ignored, trailers handed over; the connection is reused', async () => {
    const o = await rawOrigin(() => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7;a;b="q \\" s"\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n');
    const agent = newAgent();
    for (let i = 0; i < 2; i++) {
      const r = await send(agent, o.origin);
      assert.equal(r.error, undefined);
      assert.equal(r.body.toString(), 'hello, world');
      assert.deepEqual({ ...r.trailers }, { 'x-trailer': 't' });
    }
    assert.equal(o.connections, 1);
    await agent.close();
  });

  test('a response written a few bytes at a time parses the same', async () => {
    const text = 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-Long: abcdefghijklmnop\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n';
    const o = await rawOrigin(async (_h, socket) => {
      for (let i = 0; i < text.length; i += 3) {
        socket.write(text.slice(i, i + 3));
        await new Promise((r) => setImmediate(r));
      }
      return undefined;
    });
    const agent = newAgent();
    const r = await send(agent, o.origin);
    assert.equal(r.status, 201);
    assert.equal(r.headers?.['x-long'], 'abcdefghijklmnop');
    assert.equal(r.body.toString(), 'abcdefg');
    await agent.close();
  });

  test('HEAD, 204 and 304 have no body whatever their Content-Length; the connection stays usable', async () => {
    const o = await rawOrigin((head) => {
      if (head.startsWith('HEAD')) return 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n';
      if (head.includes('/204')) return 'HTTP/1.1 204 No Content\r\n\r\n';
      if (head.includes('/304')) return 'HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n';
      return ok('after');
    });
    const agent = newAgent();
    const h = await send(agent, o.origin, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers?.['content-length'], '100');
    assert.equal(h.body.length, 0);
    assert.equal((await send(agent, o.origin, { path: '/204' })).status, 204);
    assert.equal((await send(agent, o.origin, { path: '/304' })).status, 304);
    assert.equal((await send(agent, o.origin)).body.toString(), 'after');
    assert.equal(o.connections, 1);
    await agent.close();
  });

  test('1xx heads reach the handler before the final one', async () => {
    const o = await rawOrigin(() => `HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n${ok('x')}`);
    const agent = newAgent();
    const r = await send(agent, o.origin);
    assert.deepEqual(r.informational, [103]);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'x');
    await agent.close();
  });

  test('a body without length runs to the close (HTTP/1.0, or a final coding other than chunked); such connections are not reused', async () => {
    const o = await rawOrigin((head, socket) => {
      if (head.includes('/te')) socket.end('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nraw bytes');
      else socket.end('HTTP/1.0 200 OK\r\n\r\nuntil close');
      return undefined;
    });
    const agent = newAgent();
    const a = await send(agent, o.origin);
    assert.equal(a.error, undefined);
    assert.equal(a.body.toString(), 'until close');
    const b = await send(agent, o.origin, { path: '/te' });
    assert.equal(b.body.toString(), 'raw bytes');
    assert.equal(o.connections, 2);
    await agent.close();
  });

  test('Connection: close, and HTTP/1.0 without keep-alive, end the connection; HTTP/1.0 with keep-alive keeps it', async () => {
    const o = await rawOrigin((head) => {
      if (head.includes('/close')) return 'HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 1\r\n\r\nc';
      if (head.includes('/10ka')) return 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 1\r\n\r\nk';
      return 'HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nz';
    });
    const agent = newAgent();
    await send(agent, o.origin, { path: '/close' });
    await send(agent, o.origin, { path: '/10' });
    await send(agent, o.origin, { path: '/10ka' });
    await send(agent, o.origin, { path: '/10ka' });
    assert.equal(o.connections, 3);
    await agent.close();
  });

  test('request bodies: with a length as is; without one chunked; the origin gets every byte', async () => {
    const o = await rawOrigin(() => ok('ok'));
    const agent = newAgent();
    const r1 = await send(agent, o.origin, {
      method: 'PUT',
      headers: ['host', 'h', 'content-length', '10'],
      body: Readable.from([Buffer.from('01234'), Buffer.from('56789')]),
    });
    assert.equal(r1.status, 200);
    assert.equal(o.bodies[0].toString(), '0123456789');
    const r2 = await send(agent, o.origin, { method: 'POST', body: Readable.from([Buffer.from('ab'), Buffer.from('cde')]) });
    assert.equal(r2.status, 200);
    assert.match(o.heads[1], /\r\ntransfer-encoding: chunked\r\n/);
    assert.equal(o.bodies[1].toString(), '2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n');
    const r3 = await send(agent, o.origin, { method: 'PUT', headers: ['host', 'h', 'content-length', '3'], body: Readable.from([Buffer.from('toolong')]) });
    assert.equal(r3.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
    await agent.close();
  });

  test('request headers that would break framing are refused before anything is sent', async () => {
    const o = await rawOrigin(() => ok('x'));
    const agent = newAgent();
    for (const headers of [
      ['host', 'h', 'x-bad', 'a\r\nx-injected: 1'],
      ['host', 'h', 'x-bad\r\nx-injected', '1'],
      ['host', 'h', 'x bad', '1'],
      ['host', 'h', 'Transfer-Encoding', 'chunked'],
      ['host', 'h', 'Connection', 'close'],
      ['host', 'h', 'content-length', '1x'],
      ['host', 'h', 'expect', '100-continue'],
    ]) {
      const r = await send(agent, o.origin, { headers });
      assert.ok(r.error, headers.join(' '));
      assert.equal(upstreamError(r.error).kind.status, 502);
    }
    for (const bad of [{ path: '/a b' }, { path: '/a\r\nx-injected: 1' }, { method: 'GE T' }]) {
      const r = await send(agent, o.origin, bad);
      assert.equal(r.error?.code, 'UND_ERR_INVALID_ARG', JSON.stringify(bad));
    }
    assert.equal(o.heads.length, 0);
    assert.equal((await send(agent, o.origin)).status, 200);
    await agent.close();
  });

  // Each is a response undici (llhttp) refuses: the exchange fails with an HPE_ code, mapped to UPSTREAM_BAD_RESPONSE, and the connection is closed.
  const malformed: [string, string][] = [
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two Content-Length fields', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx'],
    ['a Content-Length that is not digits', 'HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\nx'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 0\r\n\r\n'],
    ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nx-a : 1\r\ncontent-length: 0\r\n\r\n'],
    ['a bare LF line end', 'HTTP/1.1 200 OK\nx-a: 1\r\ncontent-length: 0\r\n\r\n'],
    ['a NUL in a value', 'HTTP/1.1 200 OK\r\nx-a: 1\x002\r\ncontent-length: 0\r\n\r\n'],
    ['a bare CR in a value', 'HTTP/1.1 200 OK\r\nx-a: 1\r2\r\ncontent-length: 0\r\n\r\n'],
    ['a header name that is not a token', 'HTTP/1.1 200 OK\r\nx(a): 1\r\ncontent-length: 0\r\n\r\n'],
    ['a bad status line', 'HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n'],
    ['a chunk size of 17 digits', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n00000000000000001\r\na\r\n0\r\n\r\n'],
    ['chunk data not followed by CRLF', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n'],
    ['a 101 nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n'],
    ['a head over maxHeaderSize', `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(20_000)}\r\ncontent-length: 0\r\n\r\n`],
    ['a bad trailer line', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n'],
    ['whitespace after a chunk size', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\t\r\nab\r\n0\r\n\r\n'],
    ['whitespace after the ; of a chunk extension', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2; a=b\r\nab\r\n0\r\n\r\n'],
    ['Content-Length in the trailers', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\ncontent-length: 1\r\n\r\n'],
    ['a tab in Transfer-Encoding', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\t\r\n\r\n2\r\nab\r\n0\r\n\r\n'],
  ];
  for (const [what, response] of malformed) {
    test(`refuses ${what}`, async () => {
      const o = await rawOrigin(() => response);
      const agent = newAgent();
      const closed = o.closed();
      const r = await send(agent, o.origin);
      assert.ok(r.error, 'an error');
      assert.match(r.error.code ?? '', /^HPE_/);
      assert.equal(upstreamError(r.error).code, 'UPSTREAM_BAD_RESPONSE');
      await closed;
      assert.equal(agent.connections, 0);
      await agent.close();
    });
  }

  test('bytes beyond the response in the same read fail it (before its head when the length shows it); later ones close the idle connection', async () => {
    let late: net.Socket | undefined;
    const o = await rawOrigin((head, socket) => {
      if (head.includes('/beyond')) return `${ok('one')}HTTP/1.1 200 OK\r\n`;
      if (head.includes('/chunked')) return 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\nEXTRA';
      late = socket;
      return ok('two');
    });
    const agent = newAgent();
    const a = await send(agent, o.origin, { path: '/beyond' });
    assert.equal(a.error?.code, 'HPE_INVALID_CONSTANT');
    assert.equal(a.status, undefined, 'the head was never handed on: the owner can still answer 502');
    const b = await send(agent, o.origin, { path: '/chunked' });
    assert.equal(b.error?.code, 'HPE_INVALID_CONSTANT', 'a chunked response with bytes after its end fails (its client sees it cut)');
    assert.equal(agent.connections, 0);
    // After a clean response, bytes on the idle connection: closed, never read as the next response.
    const c = await send(agent, o.origin, { path: '/late' });
    assert.equal(c.body.toString(), 'two');
    const closed = o.closed();
    late!.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfake');
    await closed;
    assert.equal(agent.connections, 0);
    assert.equal((await send(agent, o.origin, { path: '/late' })).body.toString(), 'two');
    assert.equal(o.connections, 4);
    await agent.close();
  });

  test('a connection closed mid-body fails the exchange as a reset (not a clean short response)', async () => {
    const o = await rawOrigin((_h, socket) => {
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
      return undefined;
    });
    const agent = newAgent();
    const r = await send(agent, o.origin);
    assert.equal(r.status, 200);
    assert.equal(r.error?.code, 'UND_ERR_SOCKET');
    assert.equal(upstreamError(r.error).code, 'UPSTREAM_RESET');
    await agent.close();
  });

  test('a refused connection fails before the request starts (a retry to another address is safe)', async () => {
    const o = await rawOrigin(() => ok(''));
    o.server.close();
    await once(o.server, 'close');
    const agent = newAgent();
    const r = await send(agent, o.origin);
    assert.equal(r.started, false);
    assert.equal(r.error?.code, 'ECONNREFUSED');
    await agent.close();
  });

  test('the response-head and body-silence timeouts fail the exchange with undici codes', async () => {
    const o = await rawOrigin((head) => (head.includes('/body') ? 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab' : undefined));
    const agent = newAgent();
    const a = await send(agent, o.origin, { headersTimeout: 100 });
    assert.equal(a.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    assert.equal(upstreamError(a.error).code, 'UPSTREAM_TIMEOUT');
    const b = await send(agent, o.origin, { path: '/body', bodyTimeout: 100 });
    assert.equal(b.status, 200);
    assert.equal(b.error?.code, 'UND_ERR_BODY_TIMEOUT');
    await agent.close();
  });

  test("the origin's Keep-Alive hint: reused while 2 s remain of it; a hint of 2 s or less means no reuse (as undici)", async () => {
    const o = await rawOrigin((head) => ok('x', head.includes('/short') ? 'keep-alive: timeout=2\r\n' : 'Keep-Alive: timeout=5, max=100\r\n'));
    const agent = newAgent();
    await send(agent, o.origin, { path: '/long' });
    await send(agent, o.origin, { path: '/long' });
    assert.equal(o.connections, 1, 'timeout=5: reused');
    const closed = o.closed();
    await send(agent, o.origin, { path: '/short' });
    await closed;
    await send(agent, o.origin, { path: '/long' });
    assert.equal(o.connections, 2, 'timeout=2: closed after its response');
    await agent.close();
  });

  test('an idle connection past its limit is never reused, even before the sweeper saw it; the pool stays registered', async () => {
    const o = await rawOrigin(() => ok('x'));
    const agent = newAgent({ keepAliveTimeout: 50 });
    await send(agent, o.origin);
    assert.equal(agent.connections, 1);
    // Block the thread past the limit so that no sweep runs before the next dispatch.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 80);
    const r = await send(agent, o.origin);
    assert.equal(r.body.toString(), 'x');
    assert.equal(o.connections, 2, 'a new connection, not the expired one');
    assert.equal(agent.connections, 1, 'the new connection is counted: its pool is the registered one');
    await agent.close();
  });

  test('idle connections close after keepAliveTimeout', async () => {
    const o = await rawOrigin(() => ok('x'));
    const agent = newAgent({ keepAliveTimeout: 50 });
    const closed = o.closed();
    await send(agent, o.origin);
    assert.equal(agent.connections, 1);
    await closed;
    assert.equal(agent.connections, 0);
    await agent.close();
  });

  test('pause holds the body back until resume; nothing is lost', async () => {
    const body = 'x'.repeat(200_000);
    const o = await rawOrigin(() => ok(body));
    const agent = newAgent();
    let pausedAt = -1;
    let total = 0;
    const r = await send(
      agent,
      o.origin,
      {},
      {
        onData(c, chunk) {
          total += chunk.length;
          if (pausedAt === -1) {
            pausedAt = total;
            c.pause();
            setImmediate(() => {
              assert.equal(total, pausedAt, 'no data while paused');
              c.resume();
            });
          }
        },
      },
    );
    assert.equal(r.error, undefined);
    assert.equal(r.body.toString(), body);
    await agent.close();
  });

  test('abort mid-response: the handler hears the reason and the connection is closed, not reused', async () => {
    const o = await rawOrigin(() => 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc');
    const agent = newAgent();
    const closed = o.closed();
    const reason = new Error('client gone');
    const r = await send(agent, o.origin, {}, { onStart: (c) => c.abort(reason) });
    assert.equal(r.error, reason);
    await closed;
    assert.equal(agent.connections, 0);
    await agent.close();
  });

  test('a response that cannot be HTTP fails at once, without waiting for a head that never ends', async () => {
    const o = await rawOrigin(() => 'SSH-2.0-OpenSSH_9.6\r\n');
    const agent = newAgent();
    const r = await send(agent, o.origin, { headersTimeout: 60_000 });
    assert.equal(r.error?.code, 'HPE_INVALID_CONSTANT');
    await agent.close();
  });

  test('connections: at most N per origin; the others wait in order and go out as connections free up', async () => {
    const held: net.Socket[] = [];
    let bothHeld!: () => void;
    const twoHeld = new Promise<void>((resolve) => (bothHeld = resolve));
    const o = await rawOrigin((head, socket) => {
      if (head.includes('/hold')) {
        if (held.push(socket) === 2) bothHeld();
        return undefined;
      }
      return ok(/GET (\S+)/.exec(head)![1]);
    });
    const agent = newAgent({ origin: o.origin, connections: 2 });
    const a = send(agent, o.origin, { path: '/hold/a' });
    const b = send(agent, o.origin, { path: '/hold/b' });
    const order: string[] = [];
    const c = send(agent, o.origin, { path: '/c' }).then((r) => order.push(r.body.toString()));
    const d = send(agent, o.origin, { path: '/d' }).then((r) => order.push(r.body.toString()));
    await twoHeld;
    assert.equal(o.connections, 2);
    assert.equal(o.heads.length, 2, 'c and d wait for a connection');
    held[0].write(ok('a'));
    await Promise.all([c, d]);
    assert.deepEqual(order, ['/c', '/d']);
    held[1].write(ok('b'));
    assert.equal((await a).body.toString(), 'a');
    assert.equal((await b).body.toString(), 'b');
    assert.equal(o.connections, 2);
    // An H1Agent made for one origin takes requests that name none.
    assert.equal((await send(agent, undefined as unknown as string, { path: '/e' })).body.toString(), '/e');
    await agent.close();
  });

  test('https origins: verified against the CA, and a second connection resumes the TLS session', async () => {
    const pki = await createPki();
    try {
      const cert = await pki.issue({ names: ['localhost', '127.0.0.1'] });
      const resumed: boolean[] = [];
      const server = tls.createServer({ cert: cert.cert, key: cert.key }, (socket) => {
        resumed.push(socket.isSessionReused());
        socket.on('error', () => undefined);
        socket.once('data', () => socket.end(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok`));
      });
      servers.push(server as unknown as net.Server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const origin = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      const agent = newAgent({ tls: { ca: pki.ca.cert, servername: 'localhost' } });
      for (let i = 0; i < 2; i++) {
        const r = await send(agent, origin);
        assert.equal(r.error, undefined);
        assert.equal(r.body.toString(), 'ok');
      }
      assert.deepEqual(resumed, [false, true]);
      await agent.close();
      const untrusted = newAgent({ tls: { servername: 'localhost' } });
      const bad = await send(untrusted, origin);
      assert.equal(upstreamError(bad.error).code, 'UPSTREAM_TLS_ERROR');
      assert.equal(bad.started, false);
      await untrusted.close();
    } finally {
      await pki.cleanup();
    }
  });

  test('a request body that fails is never an uncaught exception: not while waiting for a connection, not after the response', async () => {
    let release!: () => void;
    const o = await rawOrigin((head, socket) => {
      if (head.includes('/hold')) {
        release = () => socket.write(ok('held'));
        held();
      }
      return undefined;
    });
    const agent = newAgent({ origin: o.origin, connections: 1 });
    let held!: () => void;
    const isHeld = new Promise<void>((resolve) => (held = resolve));
    const first = send(agent, o.origin, { path: '/hold' });
    await isHeld;
    // Waiting: the only connection is busy; its body fails before it is sent.
    const waitingBody = new Readable({ read() {} });
    const waiting = send(agent, o.origin, { method: 'POST', headers: ['host', 'h', 'content-length', '10'], body: waitingBody });
    const reason = new Error('the client aborted the request body');
    waitingBody.destroy(reason);
    assert.equal((await waiting).error, reason);
    release();
    assert.equal((await first).body.toString(), 'held');
    // Sending: the origin answers at the head, not reading the body; the body fails after the response ended.
    const eager = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.write(ok('early')));
    });
    servers.push(eager);
    eager.listen(0, '127.0.0.1');
    await once(eager, 'listening');
    const late = new Readable({ read() {} });
    late.push('abc');
    const r = await send(agent, `http://127.0.0.1:${(eager.address() as net.AddressInfo).port}`, {
      method: 'POST',
      headers: ['host', 'h', 'content-length', '10'],
      body: late,
    });
    assert.equal(r.body.toString(), 'early');
    // No listener of the test's own: only the client's keeps this error from being uncaught.
    const closed = new Promise((resolve) => late.on('close', resolve));
    late.destroy(new Error('the client aborted the request body'));
    await closed;
    await agent.close();
  });

  test('an answer before the whole upload went out: the rest of the body is let go (not left paused), the connection dropped', { timeout: 20_000 }, async () => {
    // The origin answers at the head and never reads: the upload fills the socket and is paused for drain.
    const eager = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        socket.pause();
        socket.write('HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n');
      });
    });
    servers.push(eager);
    eager.listen(0, '127.0.0.1');
    await once(eager, 'listening');
    // Far more than loopback's socket buffers take (tcp_rmem's maximum is 32 MiB here).
    const total = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(65_536);
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= total) return void this.push(null);
        sent += chunk.length;
        this.push(chunk);
      },
    });
    const agent = newAgent();
    const ended = new Promise((resolve) => body.on('end', resolve));
    let sentAtAnswer = -1;
    const r = await send(
      agent,
      `http://127.0.0.1:${(eager.address() as net.AddressInfo).port}`,
      { method: 'PUT', headers: ['host', 'h', 'content-length', String(total)], body },
      { onStart: () => (sentAtAnswer = sent) },
    );
    assert.equal(r.status, 413);
    assert.ok(sentAtAnswer > 0 && sentAtAnswer < total, `the answer came while the body was still going (${sentAtAnswer} read)`);
    await ended; // the rest flowed to nobody
    assert.equal(agent.connections, 0, 'a connection with half a body on it is not reused');
    await agent.close();
  });

  test('close: idle connections end at once, new requests fail', async () => {
    const o = await rawOrigin(() => ok('x'));
    const agent = newAgent();
    await send(agent, o.origin);
    const closed = o.closed();
    await agent.close();
    await closed;
    const r = await send(agent, o.origin);
    assert.equal(r.error?.code, 'UND_ERR_CLOSED');
  });
});
