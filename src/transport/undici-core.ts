/**
 * undici's Pool and Client, loaded from their own modules instead of the package's index.
 *
 * The index also loads fetch, WebSocket, EventSource, the cache and the mock agents, none of which
 * the proxy uses: importing it costs an idle process about 10 MB of RSS more than these two
 * modules (measured with Node 24: 67 MB against 57 MB for a bare process plus the import, after a
 * compacting GC). undici has no `exports` map, so the files are reachable; `undici-core.test.ts`
 * checks that they are the very classes the index exports, so an undici upgrade that moves them
 * fails the tests instead of the proxy.
 *
 * The index also adds `request()` and the other convenience methods to every dispatcher's
 * prototype; without it they are missing, so `request` is exported as the function it is, to be
 * called with the dispatcher as `this` (`request.call(client, options)`).
 */
import { createRequire } from 'node:module';
import type * as undici from 'undici';

const require = createRequire(import.meta.url);

export const Pool: typeof undici.Pool = require('undici/lib/dispatcher/pool.js');
export type Pool = undici.Pool;
export declare namespace Pool {
  export type Options = undici.Pool.Options;
}
export const Client: typeof undici.Client = require('undici/lib/dispatcher/client.js');
/** Pools by origin, created on first use and dropped when idle: the forward proxy's destinations (forward/). */
export const Agent: typeof undici.Agent = require('undici/lib/dispatcher/agent.js');
export type Agent = undici.Agent;
export type Client = undici.Client;
export const request: undici.Dispatcher['request'] = require('undici/lib/api/api-request.js');
