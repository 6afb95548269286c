// Keep-alive connections that make one request each and then stay open and idle: what the memory
// suite holds against a server to see what an idle connection costs it. Raw sockets (node:net), so
// the client's own cost is a socket per connection and nothing else.
import net from 'node:net';

/** A set of open connections; `close()` ends them all. */
export interface IdleConnections {
  sockets: net.Socket[];
  /** Connections the server (or the network) closed since they were opened. */
  closed(): number;
  close(): void;
}

const HEAD_END = '\r\n\r\n';

/**
 * One keep-alive GET / on a new connection to 127.0.0.1:`port`; resolves with the socket (still
 * open) once the whole response (Content-Length framed) has arrived, rejects on an error, a close,
 * a status other than 200, or `timeoutMs`.
 */
function oneRequest(port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no complete response within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('latin1');
    sock.once('connect', () => sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n'));
    const onData = (d: string): void => {
      got += d;
      const end = got.indexOf(HEAD_END);
      if (end < 0) return;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(got)?.[1];
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(got.slice(0, end))?.[1];
      if (status !== '200' || length === undefined) return fail(new Error(`unexpected response: ${JSON.stringify(got.slice(0, 120))}`));
      if (got.length - end - HEAD_END.length < Number(length)) return;
      done = true;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('error', fail);
      sock.off('close', onClose);
      resolve(sock);
    };
    const onClose = (): void => fail(new Error('closed before the response ended'));
    sock.on('data', onData);
    sock.on('error', fail);
    sock.on('close', onClose);
  });
}

/**
 * Opens `count` keep-alive connections to 127.0.0.1:`port`, `concurrency` at a time, each making one
 * request and then left open and idle. Rejects (closing what it opened) when one fails.
 */
export async function openIdleConnections(port: number, count: number, concurrency = 100, timeoutMs = 10_000): Promise<IdleConnections> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < count && !failed) {
      next++;
      const sock = await oneRequest(port, timeoutMs);
      sockets.push(sock);
      sock.on('error', () => undefined);
      sock.once('close', () => closed++);
      sock.resume();
    }
  };
  const close = (): void => {
    for (const s of sockets) s.destroy();
  };
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(concurrency, count) }, () =>
      worker().catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) {
    close();
    throw failure.reason;
  }
  return { sockets, closed: () => closed, close };
}
