/**
 * Tiny parent proxies for tests, on 127.0.0.1 port 0: an HTTP one that answers CONNECT and a SOCKS5
 * one (RFC 1928 CONNECT, RFC 1929 username/password). Each records what it was asked for and with
 * which credentials, then relays bytes to the address it was asked for (127.0.0.1 origins only in
 * tests). `after` bytes are sent in the same write as the success reply, as a parent that pipelines
 * the destination's first bytes would.
 */
import net, { type AddressInfo } from 'node:net';
import { guard } from './guard.ts';

export interface ParentAsk {
  /** `host:port` as asked: the CONNECT authority, or the SOCKS address (IPv6 in brackets, a name as is). */
  target: string;
  /** SOCKS address type (1 IPv4, 3 name, 4 IPv6); 0 for HTTP. */
  atyp: number;
  /** `user:pass` as received (Basic decoded, or RFC 1929), or undefined. */
  credentials: string | undefined;
}

export interface ParentOptions {
  /** Credentials (`user:pass`) to require: HTTP answers 407 without them, SOCKS offers only method 2 and fails wrong ones. */
  require?: string;
  /** Bytes sent right after the success reply, in the same write. */
  after?: Buffer;
  /** Listen on this port (a parent restarted where it was); default 0. */
  port?: number;
}

export interface TestParent {
  port: number;
  url(credentials?: string): string;
  /** Every request, in order. */
  asks: ParentAsk[];
  /** Connections accepted so far (requests, and health checks that only open one). */
  readonly connections: number;
  /** Resolves once `n` connections in all were accepted (bounded: fails saying what it waited for). */
  connected(n: number, ms?: number): Promise<void>;
  /** Stops listening and destroys every connection (a parent that died). */
  close(): Promise<void>;
}

function start(handle: (socket: net.Socket, asks: ParentAsk[]) => void, scheme: string, listenPort = 0): Promise<TestParent> {
  const asks: ParentAsk[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = net.createServer({ noDelay: true }, (socket) => {
    connections++;
    waiters = waiters.filter((w) => {
      if (connections < w.n) return true;
      w.resolve();
      return false;
    });
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    handle(socket, asks);
  });
  return new Promise((resolve) => {
    server.listen(listenPort, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        asks,
        get connections() {
          return connections;
        },
        connected: (n, ms = 10_000) =>
          connections >= n ? Promise.resolve() : guard(new Promise<void>((done) => waiters.push({ n, resolve: done })), `${n} connections at the parent on ${port}`, ms),
        url: (credentials) => `${scheme}://${credentials === undefined ? '' : `${credentials}@`}127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}

/** Connects to `host:port` and relays; `onOpen` writes the reply first. */
function relay(client: net.Socket, host: string, port: number, onOpen: () => void, onFail: () => void): void {
  const dest = net.connect({ host, port });
  let open = false;
  dest.on('error', () => {
    if (open) client.destroy();
    else onFail();
  });
  dest.on('connect', () => {
    open = true;
    onOpen();
    client.pipe(dest);
    dest.pipe(client);
  });
  client.on('close', () => dest.destroy());
}

/** An HTTP parent: reads one CONNECT head, answers 407 / 200 (+ `after`) / 502, then relays. */
export function startHttpParent(options: ParentOptions = {}): Promise<TestParent> {
  return start(
    (socket, asks) => {
      let head = '';
      const onData = (chunk: Buffer): void => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.pause();
        const rest = Buffer.from(head.slice(end + 4), 'latin1');
        const [line, ...fields] = head.slice(0, end).split('\r\n');
        const target = line.split(' ')[1] ?? '';
        const auth = fields.find((f) => f.toLowerCase().startsWith('proxy-authorization:'));
        const basic = auth === undefined ? undefined : /basic\s+(\S+)/i.exec(auth)?.[1];
        const credentials = basic === undefined ? undefined : Buffer.from(basic, 'base64').toString();
        asks.push({ target, atyp: 0, credentials });
        if (options.require !== undefined && credentials !== options.require) {
          socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="parent"\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        const colon = target.lastIndexOf(':');
        const host = target.slice(0, colon).replace(/^\[|\]$/g, '');
        relay(
          socket,
          host,
          Number(target.slice(colon + 1)),
          () => {
            socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n'), options.after ?? Buffer.alloc(0)]));
            if (rest.length > 0) socket.unshift(rest);
            socket.resume();
          },
          () => socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'),
        );
      };
      socket.on('data', onData);
    },
    'http',
    options.port,
  );
}

/** A SOCKS5 parent: method negotiation, RFC 1929 when `require` is set, CONNECT (REP 0, or 5 when the destination refuses), then relays. */
export function startSocksParent(options: ParentOptions = {}): Promise<TestParent> {
  return start(
    (socket, asks) => {
      let bytes = Buffer.alloc(0);
      let stage: 'greeting' | 'auth' | 'request' = 'greeting';
      let credentials: string | undefined;
      const onData = (chunk: Buffer): void => {
        bytes = Buffer.concat([bytes, chunk]);
        if (stage === 'greeting') {
          if (bytes.length < 2 || bytes.length < 2 + bytes[1]) return;
          const methods = [...bytes.subarray(2, 2 + bytes[1])];
          bytes = bytes.subarray(2 + bytes[1]);
          const wanted = options.require === undefined ? 0 : 2;
          if (!methods.includes(wanted)) {
            socket.end(Buffer.from([5, 0xff]));
            return;
          }
          socket.write(Buffer.from([5, wanted]));
          stage = wanted === 2 ? 'auth' : 'request';
        }
        if (stage === 'auth') {
          if (bytes.length < 2) return;
          const ulen = bytes[1];
          if (bytes.length < 3 + ulen) return;
          const plen = bytes[2 + ulen];
          if (bytes.length < 3 + ulen + plen) return;
          credentials = `${bytes.subarray(2, 2 + ulen).toString()}:${bytes.subarray(3 + ulen, 3 + ulen + plen).toString()}`;
          bytes = bytes.subarray(3 + ulen + plen);
          if (credentials !== options.require) {
            asks.push({ target: '', atyp: 0, credentials });
            socket.end(Buffer.from([1, 1]));
            return;
          }
          socket.write(Buffer.from([1, 0]));
          stage = 'request';
        }
        if (bytes.length < 5) return;
        const atyp = bytes[3];
        const length = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + bytes[4];
        if (bytes.length < 6 + length) return;
        let host: string;
        if (atyp === 1) host = [...bytes.subarray(4, 8)].join('.');
        else if (atyp === 4) host = (bytes.subarray(4, 20).toString('hex').match(/.{4}/g) ?? []).join(':');
        else host = bytes.subarray(5, 5 + bytes[4]).toString();
        const port = bytes.readUInt16BE(4 + length);
        const rest = bytes.subarray(6 + length);
        socket.off('data', onData);
        socket.pause();
        asks.push({ target: atyp === 4 ? `[${host}]:${port}` : `${host}:${port}`, atyp, credentials });
        const reply = (rep: number): Buffer => Buffer.from([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
        relay(
          socket,
          host,
          port,
          () => {
            socket.write(Buffer.concat([reply(0), options.after ?? Buffer.alloc(0)]));
            if (rest.length > 0) socket.unshift(rest);
            socket.resume();
          },
          () => socket.end(reply(5)),
        );
      };
      socket.on('data', onData);
    },
    'socks5',
    options.port,
  );
}

/** A parent that accepts connections and never answers. */
export function startSilentParent(): Promise<TestParent> {
  return start(() => {}, 'http');
}

/** A TCP origin that greets each connection with `hello <name>\n`, then echoes what it receives. Counts its connections. */
export async function startEchoOrigin(name: string): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { port: 0, connections: 0, close: (): Promise<void> => Promise.resolve() };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(`hello ${name}\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = (server.address() as AddressInfo).port;
  state.close = () =>
    new Promise<void>((done) => {
      server.close(() => done());
      for (const s of sockets) s.destroy();
    });
  return state;
}
