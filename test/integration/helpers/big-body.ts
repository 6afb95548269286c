/**
 * Reading a large response body in a test without keeping it: its length and SHA-1, and the
 * largest RSS of this process seen while it streamed (sampled every `sampleEvery` bytes), for the
 * tests that show a cache streams big objects with bounded memory.
 */
import { createHash } from 'node:crypto';

export interface DrainedBody {
  bytes: number;
  sha1: string;
  peakRss: number;
}

/** Reads `body` to its end, hashing and dropping each chunk. */
export async function drainBody(body: AsyncIterable<Buffer>, sampleEvery: number): Promise<DrainedBody> {
  const hash = createHash('sha1');
  let bytes = 0;
  let nextSample = 0;
  let peakRss = process.memoryUsage.rss();
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.length;
    if (bytes >= nextSample) {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      nextSample += sampleEvery;
    }
  }
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return { bytes, sha1: hash.digest('hex'), peakRss };
}
