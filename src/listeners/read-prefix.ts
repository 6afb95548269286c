/**
 * Reading the first bytes of a connection until a parser can decide what they are: the HTTP/2
 * preface (h2c), a PROXY header, a TLS ClientHello. One shape for all three: the bytes so far are
 * judged after every chunk, `timeout` bounds the whole prefix, and a connection that is judged bad,
 * runs out of time, or ends first is destroyed.
 */
import type { Socket } from 'node:net';

/** `more`: not enough bytes yet; `ok`: decided; `bad`: these bytes can never be what is awaited. */
export type Verdict = 'more' | 'ok' | 'bad';

/**
 * Reads `socket` until `judge(seen)` is `ok`, then pauses it and calls `done(seen)` with every byte
 * read (the caller puts back, or sends on, what is not its own). Never calls `done` otherwise.
 */
export function readPrefix(socket: Socket, timeout: number, judge: (seen: Buffer) => Verdict, done: (seen: Buffer) => void): void {
  let seen: Buffer | undefined;
  const timer = setTimeout(() => finish(undefined), timeout);
  const onData = (chunk: Buffer): void => {
    seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
    const verdict = judge(seen);
    if (verdict !== 'more') finish(verdict === 'ok' ? seen : undefined);
  };
  const onEnd = (): void => finish(undefined);
  function finish(prefix: Buffer | undefined): void {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.pause();
    if (prefix === undefined) socket.destroy();
    else done(prefix);
  }
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
}
