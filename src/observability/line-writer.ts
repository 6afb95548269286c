/**
 * A buffered, asynchronous line sink for the access log. Each line is encoded straight into a
 * preallocated 64 KiB buffer (no string kept alive, nothing joined); a buffer is written out when
 * it is full or FLUSH_MS after its first line, one write in flight at a time, and reused after.
 * Measured in the proxy under load, this costs a fraction of pino's destination (sonic-boom) and
 * of a join-strings-then-write scheme: the difference is mostly garbage collection.
 */
import fs from 'node:fs';
import { dirname } from 'node:path';

export interface LineWriter {
  /** Queues one line (the caller includes its newline). */
  write(line: string): void;
  /** Resolves once every line written so far is out. */
  flush(): Promise<void>;
  /**
   * Flushes, then reopens the file by its path (after logrotate moved it away: SIGUSR1). Lines
   * written meanwhile go to the new file. No-op for stdout.
   */
  reopen(): Promise<void>;
  /** Flushes, then closes the file. */
  close(): Promise<void>;
}

const BUFFER_SIZE = 64 * 1024;
const FLUSH_MS = 20;
const SPARE_BUFFERS = 4;

export function createLineWriter(destination: 'stdout' | string): LineWriter {
  let fd: number | undefined;
  if (destination !== 'stdout') {
    fs.mkdirSync(dirname(destination), { recursive: true });
    fd = fs.openSync(destination, 'a');
  }
  // Opened with O_APPEND ('a'): each write(2) of whole lines lands at the end of the file as one
  // piece, so the workers of a machine can share one access log without interleaving lines (as
  // nginx's workers do). A buffer holds whole lines only; a short write (disk full) is the one
  // case that could split a line.
  let current: Buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  let used = 0;
  const full: Array<{ buf: Buffer; length: number }> = [];
  const spare: Buffer[] = [];
  let writing = false;
  let timer: NodeJS.Timeout | undefined;
  let idle: Array<() => void> = [];

  const sink = (buf: Buffer, length: number, done: () => void): void => {
    if (fd === undefined) {
      process.stdout.write(buf.subarray(0, length), () => done());
      return;
    }
    const from = (offset: number): void => {
      fs.write(fd!, buf, offset, length - offset, null, (err, n) => {
        if (!err && offset + n < length) from(offset + n);
        else done();
      });
    };
    from(0);
  };

  const pump = (): void => {
    if (writing) return;
    const next = full.shift();
    if (next === undefined) {
      const waiting = idle;
      idle = [];
      for (const resolve of waiting) resolve();
      return;
    }
    writing = true;
    sink(next.buf, next.length, () => {
      writing = false;
      if (next.buf.length === BUFFER_SIZE && spare.length < SPARE_BUFFERS) spare.push(next.buf);
      pump();
    });
  };

  /** Hands the current buffer to the writer and starts a fresh one. */
  const rotate = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (used > 0) {
      full.push({ buf: current, length: used });
      current = spare.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
      used = 0;
    }
    pump();
  };

  return {
    write(line) {
      const worst = line.length * 3;
      if (used + worst > BUFFER_SIZE) {
        rotate();
        if (worst > BUFFER_SIZE) {
          full.push({ buf: Buffer.from(line), length: Buffer.byteLength(line) });
          pump();
          return;
        }
      }
      used += current.write(line, used);
      if (timer === undefined) timer = setTimeout(rotate, FLUSH_MS);
    },
    flush() {
      return new Promise((resolve) => {
        idle.push(resolve);
        rotate();
      });
    },
    async reopen() {
      if (fd === undefined) return;
      await this.flush();
      const old = fd;
      fs.mkdirSync(dirname(destination), { recursive: true });
      fd = fs.openSync(destination, 'a');
      fs.closeSync(old);
    },
    async close() {
      await this.flush();
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
    },
  };
}
