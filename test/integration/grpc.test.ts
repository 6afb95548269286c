/**
 * gRPC through Switchboard with @grpc/grpc-js on both ends: clients speak h2c (prior knowledge) to a
 * plain listener with `h2c: true`, or h2 by ALPN to an https listener; the upstream is
 * `protocol: h2c` to grpc-js servers. Unary and all three streaming kinds, initial and trailing
 * metadata, error statuses, deadlines and cancellation reaching the server, Switchboard's own
 * failures as gRPC statuses, and round robin over two servers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import diagnostics from 'node:diagnostics_channel';
import * as grpc from '@grpc/grpc-js';
import { closedPort } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { createPki, type TestPki } from './helpers/certs.ts';
import type { RequestSession as RequestContext } from '../../src/http/session.ts';
import { echoClient, startGrpcServer, unary, type EchoClient, type EchoReply, type GrpcServer } from './helpers/grpc.ts';

const GUARD_MS = 10_000; // a hang guard: no test waits for it (the answers come in ms), a loaded CI machine may take seconds

/**
 * A gateway config: one listener (plain with h2c unless `listener` replaces it), one route (path
 * prefix `routePath`) to an h2c upstream over `endpoints`.
 */
function grpcConfig(endpoints: string[], opts: { listener?: object; routePath?: string; upstream?: object } = {}): object {
  return {
    listeners: { web: { address: '127.0.0.1:0', ...(opts.listener ?? { protocol: 'http', h2c: true }) } },
    routes: { grpc: { match: { path: opts.routePath ?? '/' }, upstream: 'echo' } },
    upstreams: { echo: { balancer: 'round-robin', protocol: 'h2c', endpoints: endpoints.map((url) => ({ url })), ...opts.upstream } },
  };
}

/** The next request the gateway finishes (its access-log record) whose path ends with `method`. */
function requestEnded(method: string): Promise<RequestContext> {
  const channel = diagnostics.channel('switchboard:request:end');
  let listener!: (m: unknown) => void;
  const ended = new Promise<RequestContext>((resolve) => {
    listener = (m) => {
      if ((m as RequestContext).path.endsWith(`/${method}`)) resolve(m as RequestContext);
    };
    channel.subscribe(listener);
  });
  return guard(ended, `the gateway to finish a ${method} request`, GUARD_MS).finally(() => channel.unsubscribe(listener));
}

/** Collects a server stream until it ends: messages, then the final status. */
function drain(stream: grpc.ClientReadableStream<EchoReply>): Promise<{ messages: EchoReply[]; status: grpc.StatusObject; error: grpc.ServiceError | undefined }> {
  return new Promise((resolve) => {
    const messages: EchoReply[] = [];
    let error: grpc.ServiceError | undefined;
    stream.on('data', (m: EchoReply) => messages.push(m));
    stream.on('error', (e: grpc.ServiceError) => (error = e));
    stream.on('status', (status: grpc.StatusObject) => resolve({ messages, status, error }));
  });
}

/** The ordinary calls, against a client that reaches one Echo server through the gateway. */
function commonCalls(ctx: () => { client: EchoClient; server: GrpcServer }): void {
  test('unary round trip with initial and trailing metadata', async () => {
    const { client, server } = ctx();
    const before = server.calls.length;
    const r = await guard(unary(client.Unary, client, { text: 'hello', count: 0 }), 'unary call', GUARD_MS);
    assert.equal(r.err, null);
    assert.deepEqual(r.res, { text: 'hello', index: 0, server: server.name });
    assert.equal(r.status.code, grpc.status.OK);
    assert.deepEqual(r.metadata?.get('x-initial-thing'), [`hello from ${server.name}`]);
    assert.deepEqual(r.status.metadata.get('x-trailer-thing'), [`bye from ${server.name}`]);
    // The call went through Switchboard: the server saw its forwarding headers. (grpc-js removes
    // `te` before the application sees the metadata, so `te: trailers` is not observable here.)
    const seen = server.calls[before];
    assert.equal(seen.method, 'Unary');
    assert.deepEqual(seen.metadata.get('x-forwarded-for'), ['127.0.0.1']);
    assert.equal(seen.metadata.get('x-request-id').length, 1);
  });

  test('server streaming: 100 messages in order, then the trailers', async () => {
    const { client } = ctx();
    const { messages, status, error } = await guard(drain(client.ServerStream({ text: 'm', count: 100 })), 'server stream', GUARD_MS);
    assert.equal(error, undefined);
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(
      messages.map((m) => [m.index, m.text]),
      Array.from({ length: 100 }, (_, i) => [i, `m-${i}`]),
    );
    assert.deepEqual(status.metadata.get('x-trailer-thing'), ['sent 100']);
  });

  test('client streaming: every message arrives, one reply', async () => {
    const { client } = ctx();
    const res = await guard(
      new Promise<EchoReply>((resolve, reject) => {
        const call = client.ClientStream(new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r!)));
        for (let i = 0; i < 50; i++) call.write({ text: `c${i}`, count: i });
        call.end();
      }),
      'client stream',
      GUARD_MS,
    );
    assert.equal(res.index, 50);
    assert.equal(res.text, Array.from({ length: 50 }, (_, i) => `c${i}`).join(','));
  });

  test('bidi streaming: ping/pong interleaved, each pong before the next ping', async () => {
    const { client } = ctx();
    const call = client.BidiStream();
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    const pongs: string[] = [];
    const next = (): Promise<EchoReply> =>
      guard(
        once(call, 'data').then(([m]) => m as EchoReply),
        'a pong',
        GUARD_MS,
      );
    for (let i = 0; i < 20; i++) {
      // The next ping is written only once the pong to the previous one is back: strictly interleaved.
      call.write({ text: `ping ${i}`, count: i });
      const m = await next();
      assert.equal(m.index, i);
      pongs.push(m.text);
    }
    call.end();
    assert.equal((await guard(status, 'bidi status', GUARD_MS)).code, grpc.status.OK);
    assert.deepEqual(
      pongs,
      Array.from({ length: 20 }, (_, i) => `pong ${i}`),
    );
  });

  test('a server error keeps its status, message and trailing metadata', async () => {
    const { client } = ctx();
    const r = await guard(unary(client.Fail, client, { text: 'no such thing', count: grpc.status.NOT_FOUND }), 'failing call', GUARD_MS);
    assert.ok(r.err);
    assert.equal(r.err.code, grpc.status.NOT_FOUND);
    assert.equal(r.err.details, 'no such thing');
    assert.deepEqual(r.err.metadata.get('x-trailer-thing'), ['failure details']);
    // A message that needs percent-encoding survives too.
    const r2 = await guard(unary(client.Fail, client, { text: 'bad: 100% ünïcode\nline', count: grpc.status.FAILED_PRECONDITION }), 'failing call', GUARD_MS);
    assert.equal(r2.err?.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(r2.err?.details, 'bad: 100% ünïcode\nline');
  });

  test('a deadline shorter than the call: DEADLINE_EXCEEDED, and the server sees the call cancelled', async () => {
    const { client, server } = ctx();
    const cancelled = guard(once(server.events, 'cancelled'), 'the server to see the cancellation', GUARD_MS);
    const r = await guard(unary(client.Slow, client, { text: 'slow', count: 0 }, { deadline: Date.now() + 150 }), 'slow call', GUARD_MS);
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
    assert.deepEqual(await cancelled, ['Slow']);
    // The deadline itself crossed Switchboard (grpc-timeout), so the server can give up on its own too.
    const seen = server.calls.findLast((c) => c.method === 'Slow');
    assert.ok(seen !== undefined && Number.isFinite(Number(seen.deadline)), `the server knew the deadline (${String(seen?.deadline)})`);
  });

  test('a client cancel (RST_STREAM) reaches the server', async () => {
    const { client, server } = ctx();
    const started = guard(once(server.events, 'started'), 'the slow call to start', GUARD_MS);
    const cancelled = guard(once(server.events, 'cancelled'), 'the server to see the cancellation', GUARD_MS);
    const logged = requestEnded('Slow');
    // No deadline: the only way the server can learn of the cancel is the reset relayed by Switchboard.
    let settle!: (err: grpc.ServiceError | null) => void;
    const result = new Promise<grpc.ServiceError | null>((resolve) => (settle = resolve));
    const call = client.Slow({ text: 'slow', count: 0 }, new grpc.Metadata(), {}, (err) => settle(err));
    await started;
    call.cancel();
    assert.equal((await guard(result, 'the cancelled call to settle', GUARD_MS))?.code, grpc.status.CANCELLED);
    assert.deepEqual(await cancelled, ['Slow']);
    const seen = server.calls.findLast((c) => c.method === 'Slow');
    assert.equal(seen?.deadline, Infinity, 'this call had no deadline');
    // The access log tells a client that left from a finished call.
    const record = await logged;
    assert.equal(record.error, 'CLIENT_CLOSED');
    assert.equal(record.status, 499);
  });
}

describe('gRPC over h2c (plain listener with h2c: true)', () => {
  let server: GrpcServer;
  let gw: TestGateway;
  let client: EchoClient;

  before(async () => {
    server = await startGrpcServer('g1');
    gw = await startTestGateway(grpcConfig([server.url]));
    client = echoClient(`127.0.0.1:${gw.port}`);
  });

  after(async () => {
    client.close();
    await gw.stop();
    await server.close();
  });

  commonCalls(() => ({ client, server }));
});

describe('gRPC over h2 by ALPN (https listener)', () => {
  const NAME = 'grpc.switchboard.test';
  let pki: TestPki;
  let server: GrpcServer;
  let gw: TestGateway;
  let client: EchoClient;

  before(async () => {
    pki = await createPki();
    const cert = await pki.issue({ names: [NAME] });
    server = await startGrpcServer('g-tls');
    gw = await startTestGateway(
      grpcConfig([server.url], {
        listener: { protocol: 'https', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] } },
      }),
    );
    client = echoClient(`127.0.0.1:${gw.port}`, grpc.credentials.createSsl(Buffer.from(pki.ca.cert)), { 'grpc.ssl_target_name_override': NAME });
  });

  after(async () => {
    client.close();
    await gw.stop();
    await server.close();
    await pki.cleanup();
  });

  commonCalls(() => ({ client, server }));
});

describe("Switchboard's own failures as gRPC statuses", () => {
  test("upstream refuses the connection: UNAVAILABLE with Switchboard's message", async () => {
    const port = await closedPort();
    const gw = await startTestGateway(grpcConfig([`http://127.0.0.1:${port}`]));
    const client = echoClient(`127.0.0.1:${gw.port}`);
    try {
      const r = await guard(unary(client.Unary, client, { text: 'x', count: 0 }), 'call to a closed port', GUARD_MS);
      assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
      assert.equal(r.err?.details, 'UPSTREAM_CONNECT_REFUSED: the endpoint refused the connection');
      assert.ok(r.err?.metadata.get('x-request-id')[0], 'the error names the request');
    } finally {
      client.close();
      await gw.stop();
    }
  });

  test('no route for the method: UNIMPLEMENTED', async () => {
    const server = await startGrpcServer('g-unrouted');
    const gw = await startTestGateway(grpcConfig([server.url], { routePath: '/other.Service/' }));
    const client = echoClient(`127.0.0.1:${gw.port}`);
    try {
      const r = await guard(unary(client.Unary, client, { text: 'x', count: 0 }), 'unrouted call', GUARD_MS);
      assert.equal(r.err?.code, grpc.status.UNIMPLEMENTED);
      assert.equal(r.err?.details, 'ROUTE_NOT_FOUND: no route matches this request');
      assert.equal(server.calls.length, 0);
    } finally {
      client.close();
      await gw.stop();
      await server.close();
    }
  });

  test("the route's request timeout: DEADLINE_EXCEEDED with Switchboard's message, and the server sees the cancel", async () => {
    const server = await startGrpcServer('g-timeout');
    const gw = await startTestGateway(grpcConfig([server.url], { upstream: { timeouts: { request: '150ms' } } }));
    const client = echoClient(`127.0.0.1:${gw.port}`);
    try {
      const cancelled = guard(once(server.events, 'cancelled'), 'the server to see the cancellation', GUARD_MS);
      // No client deadline: the timeout is Switchboard's alone.
      const r = await guard(unary(client.Slow, client, { text: 'slow', count: 0 }), 'call past the route timeout', GUARD_MS);
      assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.match(r.err?.details ?? '', /^UPSTREAM_TIMEOUT: /);
      assert.deepEqual(await cancelled, ['Slow']);
    } finally {
      client.close();
      await gw.stop();
      await server.close();
    }
  });

  test('the upstream server dies mid-stream: UNAVAILABLE in the trailers after the messages already sent', async () => {
    const server = await startGrpcServer('g-dies');
    const gw = await startTestGateway(grpcConfig([server.url]));
    const client = echoClient(`127.0.0.1:${gw.port}`);
    try {
      const stream = client.Hang({ text: 'h', count: 5 });
      const result = drain(stream);
      let got = 0;
      await guard(
        new Promise<void>((resolve) =>
          stream.on('data', () => {
            if (++got === 5) resolve();
          }),
        ),
        'the first five messages',
        GUARD_MS,
      );
      server.kill();
      const { messages, status, error } = await guard(result, 'the stream to end after the server died', GUARD_MS);
      assert.equal(messages.length, 5);
      // Not OK and not a hang, and not a bare reset either (grpc-js: INTERNAL "Call ended without
      // gRPC status"): Switchboard ends the call with its own error as the status.
      assert.equal(status.code, grpc.status.UNAVAILABLE, `status ${status.code}: ${status.details}`);
      assert.match(status.details, /^UPSTREAM_[A-Z_]+: /);
      assert.equal(error?.code, grpc.status.UNAVAILABLE);
    } finally {
      client.close();
      await gw.stop();
    }
  });
});

test('round robin spreads unary calls over two gRPC servers', async () => {
  const a = await startGrpcServer('a');
  const b = await startGrpcServer('b');
  const gw = await startTestGateway(grpcConfig([a.url, b.url]));
  const client = echoClient(`127.0.0.1:${gw.port}`);
  try {
    const N = 40;
    const answers: string[] = [];
    // One at a time over one client connection: balancing is per request, not per connection.
    for (let i = 0; i < N; i++) {
      const r = await guard(unary(client.Unary, client, { text: `n${i}`, count: 0 }), `call ${i}`, GUARD_MS);
      assert.equal(r.err, null);
      answers.push(r.res!.server);
    }
    assert.equal(a.calls.length, N / 2);
    assert.equal(b.calls.length, N / 2);
    assert.equal(answers.filter((s) => s === 'a').length, N / 2);
    // Round robin alternates.
    for (let i = 1; i < N; i++) assert.notEqual(answers[i], answers[i - 1], `calls ${i - 1} and ${i} went to the same server`);
  } finally {
    client.close();
    await gw.stop();
    await a.close();
    await b.close();
  }
});
