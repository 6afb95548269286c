/**
 * Switchboard's own HTTP/1.1 server (h1-server.ts, h1-head.ts) against llhttp (a node:http server,
 * strict mode, the options the listeners used) on seeded mutations of valid request heads: whatever
 * the own server takes as a request, llhttp takes too, with the same method, target, fields, the
 * same joined `headers` and the same body framing, and its framing checks (strict.ts) pass too. The
 * own server may refuse more, never less: a request two parsers would frame differently is how
 * request smuggling starts.
 *
 * Each case is one connection: the mutated bytes, then the client's FIN. Both servers record a head
 * the moment they parse it, before the FIN (which aborts the request, or fails a partial head).
 *
 * `SEED=… N=…` runs other cases; the default seed makes the test repeatable.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { FRAMING_BYTES, mutate, seededRandom } from '../../test/helpers/mutations.ts';
import { H1Connections, type H1Exchange, type H1Host } from './h1-server.ts';
import { checkFraming } from './strict.ts';

const SEED = Number(process.env.SEED ?? 20261206) >>> 0 || 1;
const N = Number(process.env.N ?? 400);
/** The framing test's cases (more: a framing mutation needs to land in a chunk line). */
const FRAMING_N = Number(process.env.N ?? 1500);

const BASES = [
  'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
  'POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'GET /x HTTP/1.0\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: a.example:8080\r\nCookie: a=1\r\nCookie: b=2\r\nX-A: 1\r\nx-a: 2\r\nConnection: keep-alive\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
  'PUT http://x/y HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n',
];
/** What a mutation inserts: the bytes that matter to framing, and whole framing fields. */
const INSERTS = [
  ...FRAMING_BYTES,
  '  ',
  'chunked',
  'Host: y\r\n',
  'Content-Length: 1\r\n',
  'Content-Length: 00\r\n',
  'Transfer-Encoding: chunked\r\n',
  'Transfer-Encoding: gzip\r\n',
  ' \r\n',
  ' HTTP/1.1',
];

interface Seen {
  method: string;
  url: string;
  raw: readonly string[];
  headers: http.IncomingHttpHeaders;
  /** Content-Length as a number, 'chunked', or 'none'. */
  framing: string | number;
}

/**
 * Whether the pipeline would take a request node:http parsed: an HTTP/1.0 or 1.1 version and
 * strict.ts checkFraming (llhttp has no line errors to report: it refuses those).
 */
function framingPasses(req: http.IncomingMessage): boolean {
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 1 && req.httpVersionMinor !== 0)) return false;
  return checkFraming(undefined, req.httpVersionMinor, req.rawHeaders, req.headers) === undefined;
}

function framingOf(h: http.IncomingHttpHeaders): string | number {
  if (h['transfer-encoding'] !== undefined) return 'chunked';
  return h['content-length'] === undefined ? 'none' : Number(h['content-length']);
}

/** The listeners' settings, for the own server. */
const SETTINGS = { maxHeaderSize: 16384, headerTimeout: 5000, requestTimeout: 10000, keepAliveTimeout: 5000, maxRequestsPerConnection: 0 };

/**
 * llhttp (a node:http server with the listeners' options, `onNode` for every request) and the own
 * server (`start` for every request), both listening on 127.0.0.1 port 0.
 */
async function servers(onNode: http.RequestListener, start: (ex: H1Exchange) => void): Promise<{ ports: number[]; close(): void }> {
  const nodeServer = http.createServer({ maxHeaderSize: 16384, insecureHTTPParser: false, requireHostHeader: true, joinDuplicateHeaders: false }, onNode);
  nodeServer.on('checkContinue', onNode);
  nodeServer.on('clientError', (_err, socket) => socket.destroy());
  const host: H1Host = { settings: SETTINGS, start, upgrade: (req) => req.socket.destroy() };
  const own = new H1Connections();
  const ownServer = net.createServer({ allowHalfOpen: true }, (socket) => own.serve(socket, host));
  const ports: number[] = [];
  for (const server of [nodeServer, ownServer]) {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    ports.push((server.address() as net.AddressInfo).port);
  }
  return {
    ports,
    close() {
      nodeServer.close();
      ownServer.close();
      own.closeAll();
    },
  };
}

/** `bytes` on a new connection, then the client's FIN; resolves once the server closed it. */
function send(port: number, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.resume();
    socket.end(Buffer.from(bytes, 'latin1'));
  });
}

test(`the own HTTP/1.1 server takes no request head that llhttp refuses, and reads the ones both take alike (seed ${SEED}, ${N} cases)`, async () => {
  const rnd = seededRandom(SEED);

  // Each server records a head it takes, as the pipeline would take it (its framing checks pass).
  let nodeSeen: Seen | undefined;
  let ownSeen: Seen | undefined;
  const { ports, close } = await servers(
    (req, res) => {
      if (framingPasses(req)) nodeSeen = { method: req.method!, url: req.url!, raw: req.rawHeaders, headers: req.headers, framing: framingOf(req.headers) };
      res.destroy();
    },
    (ex) => {
      if (ex.check() === undefined) ownSeen = { method: ex.method, url: ex.url, raw: ex.fields, headers: ex.headers, framing: framingOf(ex.headers) };
      ex.conn.socket.destroy();
    },
  );

  const wrong: string[] = [];
  let refusedByBoth = 0;
  let takenByBoth = 0;
  try {
    for (let i = 0; i < N; i++) {
      const current = mutate(BASES[rnd(BASES.length)], rnd, INSERTS);
      nodeSeen = undefined;
      ownSeen = undefined;
      await send(ports[0], current);
      await send(ports[1], current);
      const a = nodeSeen as Seen | undefined;
      const b = ownSeen as Seen | undefined;
      if (a === undefined && b === undefined) refusedByBoth++;
      if (b === undefined) continue;
      if (a === undefined) {
        wrong.push(`${JSON.stringify(current)}: llhttp refused, own took ${JSON.stringify(b)}`);
        continue;
      }
      takenByBoth++;
      if (a.method !== b.method || a.url !== b.url || JSON.stringify(a.raw) !== JSON.stringify(b.raw) || a.framing !== b.framing)
        wrong.push(`${JSON.stringify(current)}: llhttp ${JSON.stringify(a)}, own ${JSON.stringify(b)}`);
      else assert.deepEqual({ ...b.headers }, { ...a.headers }, JSON.stringify(current));
    }
  } finally {
    close();
  }
  assert.deepEqual(wrong, [], `reproduce with SEED=${SEED}`);
  // The mutations reach both parsers' refusals and acceptances, or the test would show nothing.
  assert.ok(refusedByBoth > N / 10, `only ${refusedByBoth} of ${N} refused by both`);
  assert.ok(takenByBoth > N / 10, `only ${takenByBoth} of ${N} taken by both`);
});

/** Bases for the framing test: bodies of both kinds, and a request pipelined behind each. */
const FRAMED = [
  'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;e=1\r\n world\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok',
];
const FRAMING_INSERTS = ['\r\n', '\r', '\n', ' ', ';', '0', 'f', '5\r\n', '0\r\n\r\n', 'GET /c HTTP/1.1\r\nHost: x\r\n\r\n', '\t', 'x'];

test(`the own HTTP/1.1 server frames request bodies and what follows them never differently from llhttp (seed ${SEED}, ${FRAMING_N} cases)`, async () => {
  const rnd = seededRandom((SEED ^ 0x5bd1e995) >>> 0);

  // Each server records every request whose body it read whole (`METHOD url body`), and answers it;
  // a request its framing checks refuse is answered 400 and closes the connection, as the pipeline does.
  let nodeSeen: string[] = [];
  let ownSeen: string[] = [];
  const { ports, close } = await servers(
    (req, res) => {
      if (!framingPasses(req)) {
        res.writeHead(400, { connection: 'close', 'content-length': '0' });
        res.end();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', () => undefined);
      req.on('end', () => {
        nodeSeen.push(`${req.method} ${req.url} ${Buffer.concat(chunks).toString('latin1')}`);
        res.writeHead(200, { 'content-length': '0' });
        res.end();
      });
    },
    (ex) => {
      ex.attach({ status: 0, bytesOut: 0, draining: false, closed: () => undefined });
      if (ex.check() !== undefined) {
        ex.closeAfter();
        ex.head(400, undefined, ['content-length', '0']);
        ex.end(undefined);
        return;
      }
      const body = ex.body();
      const chunks: Buffer[] = [];
      body.on('data', (c: Buffer) => chunks.push(c));
      body.on('error', () => undefined);
      body.on('end', () => {
        ownSeen.push(`${ex.method} ${ex.url} ${Buffer.concat(chunks).toString('latin1')}`);
        ex.head(200, undefined, ['content-length', '0']);
        ex.end(undefined);
      });
    },
  );
  // After the bytes, a last request that closes, then FIN: a server still inside a body sees the FIN.
  const END = 'GET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

  const wrong: string[] = [];
  let throughBoth = 0;
  let stopped = 0;
  try {
    for (let i = 0; i < FRAMING_N; i++) {
      const base = FRAMED[rnd(FRAMED.length)];
      // Mutations after the first head only: the test above covers heads.
      const current = mutate(base, rnd, FRAMING_INSERTS, base.indexOf('\r\n\r\n') + 4);
      nodeSeen = [];
      ownSeen = [];
      await send(ports[0], current + END);
      await send(ports[1], current + END);
      // Whatever the own server read, llhttp read too, in the same order (it may stop earlier: stricter).
      const same = ownSeen.every((r, k) => nodeSeen[k] === r);
      if (!same) wrong.push(`${JSON.stringify(current)}: llhttp ${JSON.stringify(nodeSeen)}, own ${JSON.stringify(ownSeen)}`);
      if (ownSeen.at(-1)?.startsWith('GET /end ') && nodeSeen.at(-1)?.startsWith('GET /end ')) throughBoth++;
      else if (!nodeSeen.at(-1)?.startsWith('GET /end ')) stopped++;
    }
  } finally {
    close();
  }
  assert.deepEqual(wrong, [], `reproduce with SEED=${SEED}`);
  // The mutations both keep the framing (both servers read through to /end) and break it (llhttp stops).
  assert.ok(throughBoth > FRAMING_N / 20, `only ${throughBoth} of ${FRAMING_N} read through by both`);
  assert.ok(stopped > FRAMING_N / 20, `only ${stopped} of ${FRAMING_N} stopped by llhttp`);
});
