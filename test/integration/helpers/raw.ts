/** Raw sockets for malformed bytes: send exactly these bytes, read everything until close. */
import net, { type Socket } from 'node:net';

export interface RawResult {
  /** Everything the server sent. */
  text: string;
  /** Status code of the first response, or 0 when none came. */
  status: number;
  /** Whether the server closed the connection (rather than our timeout ending the wait). */
  closedByServer: boolean;
}

/**
 * Sends `bytes` (or each chunk of `parts`, one after another) and collects the reply until the
 * server closes, or until `waitMs` passes (then we close: `closedByServer` false).
 */
export function rawRequest(port: number, bytes: string | Buffer, waitMs = 3000): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let byServer = false;
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      byServer = true;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
      else byServer = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : 0, closedByServer: byServer });
    });
    socket.write(bytes);
  });
}

/** Opens a socket for a test to drive by hand. */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with everything received once `pattern` has arrived, or rejects after the guard. */
export function readUntil(socket: Socket, pattern: RegExp, guardMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(text)}`)), guardMs);
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (pattern.test(text)) done();
    };
    const onEnd = (): void => done(new Error(`connection closed before ${pattern}; got ${JSON.stringify(text)}`));
    function done(err?: Error): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (err) reject(err);
      else resolve(text);
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

/** Resolves once the server has closed `socket` (end or reset), with what arrived meanwhile. */
export function untilClosed(socket: Socket, already = '', guardMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = already;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`server did not close the connection; got ${JSON.stringify(text)}`));
    }, guardMs);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.resume();
  });
}
