/**
 * Real gRPC servers and clients for integration tests: @grpc/grpc-js over the `Echo` service of
 * fixtures/echo.proto, loaded with @grpc/proto-loader at test time. Servers listen insecure (h2c)
 * on 127.0.0.1 port 0 and record what they saw, so tests can assert on both ends of a call.
 */
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('../fixtures/echo.proto', import.meta.url));

export interface EchoRequest {
  text: string;
  count: number;
}

export interface EchoReply {
  text: string;
  index: number;
  server: string;
}

type Unary<Req, Res> = (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

/** The generated client of `switchboard.test.Echo` (typed by hand: proto-loader gives no types). */
export interface EchoClient extends grpc.Client {
  Unary: Unary<EchoRequest, EchoReply>;
  ServerStream(req: EchoRequest, metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<EchoReply>;
  ClientStream(metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: EchoReply) => void): grpc.ClientWritableStream<EchoRequest>;
  BidiStream(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoReply>;
  Fail: Unary<EchoRequest, EchoReply>;
  Slow: Unary<EchoRequest, EchoReply>;
  Hang(req: EchoRequest, metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<EchoReply>;
}

type EchoClientCtor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => EchoClient;

interface EchoPackage {
  Echo: EchoClientCtor & { service: grpc.ServiceDefinition };
}

let loaded: EchoPackage | undefined;

/** The service definition and client constructor, loaded once per process. */
export function echoPackage(): EchoPackage {
  if (loaded === undefined) {
    const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
    const root = grpc.loadPackageDefinition(def) as unknown as { switchboard: { test: EchoPackage } };
    loaded = root.switchboard.test;
  }
  return loaded;
}

/** A client of `address` (`host:port`), plaintext h2c unless credentials are given. */
export function echoClient(address: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): EchoClient {
  // No client-side retries or reconnect backoff surprises: every call goes out once.
  return new (echoPackage().Echo)(address, credentials, { 'grpc.enable_retries': 0, ...options });
}

/** One call as the server saw it. */
export interface SeenCall {
  method: string;
  metadata: grpc.Metadata;
  /** The call's deadline as the server understood it (from `grpc-timeout`); Infinity when none. */
  deadline: grpc.Deadline;
}

export interface GrpcServer {
  name: string;
  port: number;
  /** `http://127.0.0.1:port`, for a Switchboard endpoint with `protocol: h2c`. */
  url: string;
  server: grpc.Server;
  calls: SeenCall[];
  /**
   * Emits `cancelled` (method name) when a call is cancelled before the server answered it: the
   * client reset the stream, or the call's deadline passed.
   */
  events: EventEmitter;
  /** Kills the server now: every connection and stream is destroyed (mid-stream failures). */
  kill(): void;
  /** Teardown: as kill, so that a call left hanging by a failed test cannot hold the file open. */
  close(): Promise<void>;
}

function reply(text: string, index: number, server: string): EchoReply {
  return { text, index, server };
}

/** Starts an Echo server named `name` on 127.0.0.1, port 0, insecure (h2c). */
export async function startGrpcServer(name: string): Promise<GrpcServer> {
  const calls: SeenCall[] = [];
  const events = new EventEmitter();
  const seen = (method: string, call: { metadata: grpc.Metadata; getDeadline(): grpc.Deadline }): void => {
    calls.push({ method, metadata: call.metadata, deadline: call.getDeadline() });
  };
  const onCancel = (method: string, call: EventEmitter): void => {
    call.once('cancelled', () => events.emit('cancelled', method));
  };
  const impl: grpc.UntypedServiceImplementation = {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      seen('Unary', call);
      const initial = new grpc.Metadata();
      initial.set('x-initial-thing', `hello from ${name}`);
      call.sendMetadata(initial);
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer-thing', `bye from ${name}`);
      cb(null, reply(call.request.text, 0, name), trailer);
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      seen('ServerStream', call);
      for (let i = 0; i < call.request.count; i++) call.write(reply(`${call.request.text}-${i}`, i, name));
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer-thing', `sent ${call.request.count}`);
      call.end(trailer);
    },
    ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      seen('ClientStream', call);
      const texts: string[] = [];
      call.on('data', (m: EchoRequest) => texts.push(m.text));
      call.on('end', () => cb(null, reply(texts.join(','), texts.length, name)));
    },
    BidiStream(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      seen('BidiStream', call);
      let n = 0;
      call.on('data', (m: EchoRequest) => call.write(reply(m.text.replace('ping', 'pong'), n++, name)));
      call.on('end', () => call.end());
    },
    Fail(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      seen('Fail', call);
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer-thing', 'failure details');
      cb({ code: call.request.count, details: call.request.text, metadata: trailer }, null);
    },
    Slow(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>) {
      seen('Slow', call);
      onCancel('Slow', call);
      events.emit('started', 'Slow');
    },
    Hang(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      seen('Hang', call);
      onCancel('Hang', call);
      for (let i = 0; i < call.request.count; i++) call.write(reply(`${call.request.text}-${i}`, i, name));
    },
  };
  const server = new grpc.Server();
  server.addService(echoPackage().Echo.service, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    server,
    calls,
    events,
    kill: () => server.forceShutdown(),
    close: async () => server.forceShutdown(),
  };
}

/** Settles a unary call as `{ err, res, metadata, status }` instead of a callback. */
export function unary(
  method: Unary<EchoRequest, EchoReply>,
  client: EchoClient,
  req: EchoRequest,
  options: grpc.CallOptions = {},
): Promise<{ err: grpc.ServiceError | null; res: EchoReply | undefined; metadata: grpc.Metadata | undefined; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    let metadata: grpc.Metadata | undefined;
    let done: { err: grpc.ServiceError | null; res: EchoReply | undefined } | undefined;
    let status: grpc.StatusObject | undefined;
    const settle = (): void => {
      if (done !== undefined && status !== undefined) resolve({ ...done, metadata, status });
    };
    const call = method.call(client, req, new grpc.Metadata(), options, (err, res) => {
      done = { err, res };
      settle();
    });
    call.on('metadata', (m: grpc.Metadata) => (metadata = m));
    call.on('status', (s: grpc.StatusObject) => {
      status = s;
      settle();
    });
  });
}
