/** Raw sockets for malformed bytes: send exactly these bytes, read everything until close. */
import net from 'node:net';

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
