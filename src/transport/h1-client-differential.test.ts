/**
 * H1Agent against llhttp (node:http's client, strict mode) on seeded mutations of valid responses:
 * whatever H1Agent accepts, llhttp accepts too, with the same status and body. H1Agent may refuse
 * more (it does: control characters and DEL in a reason phrase, a stray CR before the status line,
 * both outside RFC 9112's grammar), never less: a response one parser would frame differently from
 * the other is how request smuggling and response splitting start.
 *
 * `SEED=… N=…` runs other cases; the default seed makes the test repeatable.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { FRAMING_BYTES, mutate, seededRandom } from '../../test/helpers/mutations.ts';
import { H1Agent } from './h1-client.ts';

const SEED = Number(process.env.SEED ?? 20261206) >>> 0 || 1;
const N = Number(process.env.N ?? 400);

const BASES = [
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n',
  'HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nX-T: 1\r\n\r\n',
  'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
];
/** What a mutation inserts: the bytes that matter to framing, and whole framing fields. */
const INSERTS = [...FRAMING_BYTES, ';', '"', 'chunked', 'Content-Length: 1\r\n', 'Transfer-Encoding: chunked\r\n', ' \r\n'];

interface Outcome {
  ok: boolean;
  status?: number;
  body?: string;
  err?: string;
}

test(`H1Agent accepts no response that llhttp refuses, and frames the ones both accept alike (seed ${SEED}, ${N} cases)`, async () => {
  const rnd = seededRandom(SEED);
  let current = '';
  // Each connection gets the current bytes, then the end of the connection.
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(Buffer.from(current, 'latin1')));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const agent = new H1Agent({ keepAliveTimeout: 1000, connectTimeout: 1000 });
  const llhttp = (): Promise<Outcome> =>
    new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve(res.complete ? { ok: true, status: res.statusCode, body: Buffer.concat(chunks).toString('latin1') } : { ok: false, err: 'incomplete' }),
        );
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, err: e.code ?? e.message }));
        res.on('aborted', () => resolve({ ok: false, err: 'aborted' }));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, err: e.code ?? e.message }));
      req.end();
    });
  const own = (): Promise<Outcome> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let status = 0;
      agent.dispatch(
        { origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET', headers: ['host', 'x'], body: null, headersTimeout: 5000, bodyTimeout: 5000 },
        {
          onResponseStart(_c, s) {
            if (s >= 200) status = s;
          },
          onResponseData(_c, c) {
            chunks.push(c);
          },
          onResponseEnd() {
            resolve({ ok: true, status, body: Buffer.concat(chunks).toString('latin1') });
          },
          onResponseError(_c, e) {
            resolve({ ok: false, err: (e as NodeJS.ErrnoException).code ?? e.message });
          },
        },
      );
    });
  const wrong: string[] = [];
  let refusedByBoth = 0;
  try {
    for (let i = 0; i < N; i++) {
      current = mutate(BASES[rnd(BASES.length)], rnd, INSERTS);
      const [a, b] = [await llhttp(), await own()];
      if (!a.ok && !b.ok) refusedByBoth++;
      if (b.ok && (!a.ok || a.status !== b.status || a.body !== b.body))
        wrong.push(`${JSON.stringify(current)}: llhttp ${JSON.stringify(a)}, H1Agent ${JSON.stringify(b)}`);
    }
  } finally {
    server.close();
    await agent.close();
  }
  assert.deepEqual(wrong, [], `reproduce with SEED=${SEED}`);
  // The mutations reach the parsers' refusals, or the test would show nothing.
  assert.ok(refusedByBoth > N / 10, `only ${refusedByBoth} of ${N} refused by both`);
});
