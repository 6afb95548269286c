/**
 * A writer killed mid-write (file-store.test.ts): starts putting a 4 MiB object into the file store
 * at argv[2], but its temp file's writes stop half way (the file handle's write waits on stdin),
 * then prints `half` and waits to be SIGKILLed.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import CachePolicy from 'http-cache-semantics';
import { FileStore } from './file-store.ts';

const probe = await open(join(process.argv[2], '.probe'), 'w');
const proto = Object.getPrototypeOf(probe) as FileHandle;
await probe.close();
const original = proto.writeFile;
// An object's write (not the small `meta`) writes its first half, then never returns (until the parent kills this process).
proto.writeFile = async function (this: FileHandle, data: Parameters<typeof original>[0]) {
  const buf = data as Buffer;
  if (buf.length < 1024 * 1024) return original.call(this, buf);
  await this.write(buf, 0, Math.floor(buf.length / 2));
  process.stdout.write('half\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  return original.call(this, buf);
};

const store = new FileStore({ path: process.argv[2], maxSize: 100 * 1024 * 1024, durable: true, kind: 'disk' });
await store.ready;
const headers = { 'cache-control': 'max-age=60' };
await store.put({
  key: 'http://h/big',
  url: 'http://h/big',
  vary: undefined,
  policy: new CachePolicy({ url: 'http://h/big', headers: { host: 'h' } }, { status: 200, headers }, { shared: true }),
  status: 200,
  headers,
  body: Buffer.alloc(4 * 1024 * 1024, 'b'),
  mustRevalidate: false,
  tags: [],
});
