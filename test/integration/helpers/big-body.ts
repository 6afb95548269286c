/**
 * Reading a large response body in a test without keeping it: its length and SHA-1, and the most
 * memory this process retained while it streamed, for the tests (the gateway, the origin and the
 * client in this process) that show a cache streams big objects with bounded memory.
 *
 * Retained, not resident: each sample is taken after full collections and counts the JS heap in
 * use and the bytes of live ArrayBuffers (every Buffer: chunks in flight, socket write queues, a
 * store's copy), which is where a body held whole would be. RSS also counts garbage not yet
 * collected and freed memory the allocator keeps, so it rose past any fair bound on a busy machine
 * (the collector lagging) while nothing was held.
 *
 * Two collections: one frees the dead ArrayBuffers of the old generation on a background thread
 * (V8's concurrent array buffer sweeping), so right after it `arrayBuffers` may still count them
 * (on a busy machine it did: 16 MiB more per 16 MiB streamed since the last sample, though a heap
 * snapshot found 4 MiB of buffers alive); the next collection first finishes that sweep. (`external`
 * is not used: V8 updates it lazily, so it also counts buffers already freed.)
 */
import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// `gc()` without starting node with --expose-gc: the flag set at run time exposes it to new contexts.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The bytes this process retains: heap used plus live ArrayBuffers, after full collections. */
export function retainedMemory(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export interface DrainedBody {
  bytes: number;
  sha1: string;
  /** The largest `retainedMemory()` sampled while reading (every `sampleEvery` bytes, and at the end). */
  peakRetained: number;
}

/** Reads `body` to its end, hashing and dropping each chunk. */
export async function drainBody(body: AsyncIterable<Buffer>, sampleEvery: number): Promise<DrainedBody> {
  const hash = createHash('sha1');
  let bytes = 0;
  let nextSample = sampleEvery;
  let peakRetained = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.length;
    if (bytes >= nextSample) {
      peakRetained = Math.max(peakRetained, retainedMemory());
      nextSample += sampleEvery;
    }
  }
  peakRetained = Math.max(peakRetained, retainedMemory());
  return { bytes, sha1: hash.digest('hex'), peakRetained };
}
